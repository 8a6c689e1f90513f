"""The live plots in a real browser: on a phone every legend key fits, and overlapping curves differ in dash too."""

from __future__ import annotations

from typing import Iterator

import pytest
from conftest import needs_chromium, open_app

from demo.ui import D_CURVES, DASHES, LOSS_CURVES


pytestmark = [pytest.mark.slow, needs_chromium]

# Each legend label's box and the plot's: [name, left, right, top] and the svg's [left, right].
LEGEND_JS = """(sel) => {
  const svg = document.querySelector(sel + ' svg'); const s = svg.getBoundingClientRect();
  const keys = [...svg.querySelectorAll('.role-legend-label text')].map(t => {
    const r = t.getBoundingClientRect(); return [t.textContent, r.left, r.right, r.top]; });
  return {svg: [s.left, s.right], keys};
}"""


@pytest.fixture(scope="module")
def phone(browser, app_url: str) -> Iterator:
    page = open_app(browser, app_url, 390, 844, ready="#d-plot svg .role-legend-label")
    yield page
    page.context.close()


@pytest.mark.parametrize("plot, names", [("#d-plot", D_CURVES), ("#loss-plot", LOSS_CURVES)])
def test_every_legend_key_fits_at_390_px(phone, plot, names) -> None:
    got = phone.evaluate(LEGEND_JS, plot)
    (left, right), keys = got["svg"], got["keys"]  # page pixels
    assert sorted(k[0] for k in keys) == sorted(names.values())
    for name, k_left, k_right, _ in keys:
        assert left <= k_left and k_right <= right, f"{name}: {k_left:.0f}-{k_right:.0f}, plot {left:.0f}-{right:.0f}"
    for a in keys:  # no two keys on top of each other
        for b in keys:
            if a is not b and abs(a[3] - b[3]) < 5:
                assert a[2] <= b[1] or b[2] <= a[1], f"{a[0]} overlaps {b[0]}"


def test_curves_differ_in_dash_not_only_in_colour(phone) -> None:
    dashes = phone.evaluate("""(colours) => colours.map(c => {
      const p = document.querySelector(`#d-plot svg .role-legend-symbol path[stroke="${c}" i]`);
      return p ? getComputedStyle(p).strokeDasharray : null; })""", list(DASHES))
    assert all(d not in (None, "none") for d in dashes), dashes
