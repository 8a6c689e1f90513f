"""The live-update loop and the plot tables: how often the page is updated, and how much it is sent."""

from __future__ import annotations

import itertools

import pytest

from demo.live import live
from demo.ui import D_COLOURS, D_CURVES, DASHES, LOSS_COLOURS, PLOT_POINTS, UPDATE_EVERY, curve_css, curves


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_live(gaps: list[float], every: float, urgent_at: set[int] = frozenset()) -> list[float]:
    """The (fake) times of the updates live() yields for events that come after these gaps."""
    clock, times = FakeClock(), []

    def events():
        for gap in gaps:
            clock.now += gap
            yield clock.now

    for _ in live(events(), lambda t: round(t / 0.01) in urgent_at, every, clock=clock):
        times.append(clock.now)
    return times


@pytest.mark.parametrize("event_gap", [0.03, 0.25, 0.5])
def test_training_gets_more_than_one_update_a_second(event_gap):
    # The engine reports at least every 0.5 s (TrainConfig.metrics_seconds); a 60 s run must show the
    # curves move more than once a second, however its events fall between the update slots.
    seconds = 60.0
    times = run_live([event_gap] * int(seconds / event_gap), UPDATE_EVERY)
    assert len(times) >= seconds, f"{len(times)} updates in {seconds:g} s"
    assert len(times) <= seconds / UPDATE_EVERY + 1  # and no more than the cadence: each costs the browser
    assert max(b - a for a, b in itertools.pairwise([0.0, *times])) <= UPDATE_EVERY + event_gap + 1e-9


def test_the_cadence_does_not_drift_with_the_events():
    # Events every 0.3 s and an update every 0.8 s: restarting the interval at each update would give one
    # update per 0.9 s; the fixed cadence gives one per 0.8 s on average.
    times = run_live([0.3] * 400, 0.8)
    assert len(times) == pytest.approx(120 / 0.8, abs=1)


def test_a_slow_step_restarts_the_cadence_instead_of_bursting():
    times = run_live([0.1] * 10 + [5.0] + [0.1] * 10, 0.5)
    after = [t for t in times if t > 5.9]
    assert len(after) <= 3  # one at the slow event, then one per 0.5 s: no catch-up burst of missed slots


def test_start_and_end_are_shown_at_once():
    # Events at 0.01, 0.02, ...: the first (a run started) and the 5th (it ended) are urgent.
    times = run_live([0.01] * 10, 10.0, urgent_at={1, 5})
    assert times == pytest.approx([0.01, 0.05])


def test_live_closes_the_events_when_the_consumer_stops():
    closed = []

    def events():
        try:
            while True:
                yield 1
        finally:
            closed.append(True)

    stream = live(events(), lambda e: True, 1.0)
    next(stream)
    stream.close()
    assert closed == [True]


def test_plots_are_sent_a_bounded_number_of_points_with_the_last_one():
    history = [dict(step=s, d_real=0.9, d_fake=0.1, d_wrong=0.2) for s in range(5000)]
    table = curves(history, D_CURVES)
    steps = sorted(set(table["step"]))
    assert len(steps) <= PLOT_POINTS + 1 and steps[-1] == 4999 and steps[0] == 0
    assert set(table["curve"]) == set(D_CURVES.values())


def test_curves_that_may_overlap_differ_in_line_style_too():
    # Colour-blind viewers: every pair of curves in one plot differs in dash pattern, not only in colour.
    css = curve_css()
    for colours in (D_COLOURS, LOSS_COLOURS):
        styles = [DASHES.get(c, "solid") for c in colours.values()]
        assert len(set(styles)) == len(styles), colours
    for colour, dash in DASHES.items():
        assert f'path[stroke="{colour}" i]' in css and dash in css
