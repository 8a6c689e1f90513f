"""The live plots in a real browser: every legend key fits a phone, overlapping curves differ in dash too,
and a text alternative says each curve's newest value."""

from __future__ import annotations

import re
from typing import Iterator

import pytest

from demo.harness.browser import open_app
from demo.harness.marks import needs_chromium
from demo.ui import D_CURVES, LOSS_CURVES


pytestmark = [pytest.mark.slow, needs_chromium]

# Each legend key's box and line style, [name, left, right, top, style], and the plot's [left, right].
LEGEND_JS = """(sel) => {
  const s = document.querySelector(sel + ' figure').getBoundingClientRect();
  const keys = [...document.querySelectorAll(sel + ' .gc-live-legend span')].map(k => {
    const r = k.getBoundingClientRect();
    return [k.textContent, r.left, r.right, r.top, getComputedStyle(k.querySelector('i')).borderTopStyle]; });
  return {plot: [s.left, s.right], keys};
}"""


@pytest.fixture(scope="module")
def phone(browser, app_url: str) -> Iterator:
    page = open_app(browser, app_url, 390, 844, ready="#d-plot canvas[aria-label*='at step']")
    yield page
    page.context.close()


@pytest.mark.parametrize("plot, names", [("#d-plot", D_CURVES), ("#loss-plot", LOSS_CURVES)])
def test_every_legend_key_fits_at_390_px(phone, plot, names) -> None:
    got = phone.evaluate(LEGEND_JS, plot)
    (left, right), keys = got["plot"], got["keys"]  # page pixels
    assert sorted(k[0] for k in keys) == sorted(names.values())
    for name, k_left, k_right, _, _ in keys:
        assert left <= k_left and k_right <= right, f"{name}: {k_left:.0f}-{k_right:.0f}, plot {left:.0f}-{right:.0f}"
    for a in keys:  # no two keys on top of each other
        for b in keys:
            if a is not b and abs(a[3] - b[3]) < 5:
                assert a[2] <= b[1] or b[2] <= a[1], f"{a[0]} overlaps {b[0]}"


@pytest.mark.parametrize("plot", ["#d-plot", "#loss-plot"])
def test_curves_differ_in_dash_not_only_in_colour(phone, plot) -> None:
    styles = [k[4] for k in phone.evaluate(LEGEND_JS, plot)["keys"]]
    assert len(set(styles)) == len(styles) and set(styles) <= {"solid", "dashed", "dotted"}, styles


def test_a_text_alternative_says_each_curves_newest_value(phone) -> None:
    # Before any run the plots show the shipped model's recorded curves (the tests' tiny model: a few points;
    # tests/test_browser.py checks the lines drawn during a run).
    said = phone.get_attribute("#d-plot canvas", "aria-label")
    assert said.startswith("Discriminator outputs at step ")
    for name in D_CURVES.values():
        assert re.search(re.escape(name) + r" [01](\.\d+)?\b", said), said
