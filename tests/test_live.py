"""The live-update loop and the plot tables: how often the page is updated, and how much it is sent."""

from __future__ import annotations

import itertools

import pytest

from demo.live import live
from demo.ui import D_CURVES, DASHES, LOSS_CURVES, PLOT_POINTS, UPDATE_EVERY, curves, d_plot, loss_plot


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
    # Colour-blind viewers: every pair of curves in one plot differs in dash pattern, not only in colour,
    # on the canvas and in the legend's keys.
    for plot in (loss_plot(None), d_plot(None)):
        legend = plot.props["legend"]  # [name, colour, legend key's border style, canvas dash pattern]
        assert len({tuple(dash) for *_, dash in legend}) == len(legend), legend
        assert len({border for _, _, border, _ in legend}) == len(legend), legend
        for _, colour, border, dash in legend:
            assert dash == [int(n) for n in DASHES.get(colour, "").split()]
            assert (border == "solid") == (colour not in DASHES)


def test_a_plot_is_sent_the_table_in_lineplots_shape():
    # API clients read the plots as they did gr.LinePlot's: {"columns", "data": [[step, value, curve]], ...}.
    history = [dict(step=s, loss_d=1.0 + s, loss_g=2.0) for s in (0, 10)]
    sent = loss_plot(None).postprocess(curves(history, LOSS_CURVES))
    assert sent["columns"] == ["step", "value", "curve"] and sent["mark"] == "line"
    assert sent["data"] == [[0, 1.0, "D loss"], [0, 2.0, "G loss"], [10, 11.0, "D loss"], [10, 2.0, "G loss"]]
    assert loss_plot(None).postprocess(None) is None
