"""axe-core in a real browser on every tab: no critical or serious accessibility violations.

axe-core 4.14.1 (MPL-2.0, Deque Systems) is vendored in tests/assets/ so the test needs no download;
its licence is beside it. Each tab is checked as a visitor sees it when they open it.
"""

from __future__ import annotations

import json
from typing import Iterator

import pytest

from demo.harness.browser import open_app, serious_violations
from demo.harness.marks import needs_chromium

TABS = ["1 · Train", "2 · Generate", "3 · Probe", "4 · Ablation", "5 · D's view", "6 · Style vs label",
        "7 · Timeline & export", "8 · Your handwriting", "9 · Class"]
READY = {"2 · Generate": "#gen-btn", "5 · D's view": "#dview-heat img"}  # wait for what each tab draws first

pytestmark = [pytest.mark.slow, needs_chromium]


@pytest.fixture(scope="module")
def page(browser, app_url: str) -> Iterator:
    page = open_app(browser, app_url, 1400, 1000)
    yield page
    page.context.close()


@pytest.mark.parametrize("tab", TABS)
def test_no_serious_accessibility_violations(page, tab: str) -> None:
    page.get_by_role("tab", name=tab).click()
    if tab in READY:
        page.wait_for_selector(READY[tab])
    page.wait_for_timeout(500)  # let the tab's plots render (axe reads the page as drawn)
    found = serious_violations(page)
    assert found == [], json.dumps(found, indent=1)
