"""The live grid's judge reading: made beside the run's events, shown with the grid it read."""

from __future__ import annotations

from pathlib import Path

import torch

import demo.live_judge as live_judge
from demo.live_judge import GridJudged, LiveJudge
from demo.pipeline import run_events
from demo.tabs.train import RunView
from gancls.config import Budget
from gancls.judge import load_judge
from gancls.train import CheckpointSaved, Finished, Metrics, Samples


def real_grid(mnist, cols: int, step: int, shift: int = 0) -> Samples:
    """Real test digits in the grid's layout: row r holds `cols` digits of label (r + shift) % 10."""
    images, labels = mnist.data.test_images, mnist.data.test_labels
    rows = [images[labels == (r + shift) % 10][:cols] for r in range(10)]
    return Samples(step, torch.cat(rows), cols)  # [10 * cols, 28, 28] uint8


def test_each_grid_is_preceded_by_the_judges_reading_of_it(mnist) -> None:
    judge = load_judge()
    right, wrong = real_grid(mnist, 8, step=20), real_grid(mnist, 8, step=40, shift=1)
    metrics = Metrics(step=20, epoch=0.1, images_seen=1280, loss_d=1.0, loss_g=1.0, d_real=0.5, d_fake=0.5,
                      d_wrong=0.5, images_per_s=100.0, elapsed=1.0, progress=0.1)
    source = [metrics, right, wrong]
    # share 1: a grid that comes after a reading ends is read
    out = list(run_events(iter(source), [LiveJudge(judge, share=1.0)]))
    readings = [e for e in out if isinstance(e, GridJudged)]
    assert [type(e) for e in out if not isinstance(e, GridJudged)] == [type(e) for e in source]
    assert [out[out.index(r) + 1] for r in readings] == [right, wrong]  # each reading just before its grid
    assert [r.step for r in readings] == [20, 40]
    assert readings[0].accuracy >= 0.9  # real digits in their own rows
    assert readings[1].accuracy <= 0.1  # every row labelled one digit off


class Clock:
    """A clock the test moves: each grid arrives at its own time, and each reading takes `cost` s."""

    def __init__(self, cost: float):
        self.t, self.cost = 0.0, cost

    def __call__(self) -> float:
        return self.t


def test_grids_are_read_only_within_the_share_and_the_last_grid_always(mnist, monkeypatch) -> None:
    clock, judge = Clock(cost=0.05), load_judge()
    real_predict = live_judge.judge_predict

    def slow_predict(*args, **kwargs):
        clock.t += clock.cost
        return real_predict(*args, **kwargs)

    monkeypatch.setattr(live_judge, "judge_predict", slow_predict)
    grids = [real_grid(mnist, 2, step=10 * (i + 1)) for i in range(8)]  # one a second, at t = 0 .. 7

    def run():
        for i, grid in enumerate(grids):
            clock.t = float(i)
            yield grid
        yield CheckpointSaved(80, Path("ckpt"))
        yield Finished(80, "time", "used the time budget", None)

    out = list(run_events(run(), [LiveJudge(judge, share=0.02, clock=clock)]))
    # A 0.05 s reading at a 2 % share is due 2.5 s after it starts: the grids at t = 0, 3 and 6 ...
    readings = [e for e in out if isinstance(e, GridJudged)]
    assert [r.step for r in readings] == [10, 40, 70, 80]
    assert [out[out.index(r) + 1] for r in readings[:3]] == [grids[0], grids[3], grids[6]]  # each before its grid
    # ... and the run's last grid, left unread, is read just before Finished, after its save.
    assert [type(e) for e in out[-4:]] == [Samples, CheckpointSaved, GridJudged, Finished]
    assert all(r.accuracy >= 0.9 for r in readings)
    assert [e for e in out if not isinstance(e, GridJudged)] == [*grids, out[-3], out[-1]]


def test_without_a_judge_the_events_pass_unchanged(mnist) -> None:
    grid = real_grid(mnist, 2, step=5)
    assert list(run_events(iter([grid]), [LiveJudge(None)])) == [grid]


def test_closing_it_closes_the_run() -> None:
    closed = []

    def run():
        try:
            while True:
                yield Samples(1, torch.zeros(10, 28, 28, dtype=torch.uint8), 1)
        finally:
            closed.append(True)  # where the engine saves

    events = run_events(run(), [LiveJudge(None)])
    next(events)
    events.close()
    assert closed == [True]


class _Trainer:
    history: list = []
    step_count, last_metrics, data_description = 40, None, "MNIST"

    @staticmethod
    def describe_device() -> str:
        return "CPU (2 threads)"


def test_the_status_shows_the_reading_of_the_grid_it_shows(mnist, tmp_path: Path) -> None:
    view = RunView(_Trainer(), Budget(seconds=10), tmp_path / "grid.png")
    first, second = real_grid(mnist, 2, step=20), real_grid(mnist, 2, step=40)
    view.feed(GridJudged(20, 0.75))
    view.feed(first)
    view.values()
    assert view.grid_accuracy == 0.75 and "75 %" in view.status()
    view.feed(GridJudged(40, 0.5))  # the reading of a grid that has not arrived yet
    assert view.grid_accuracy == 0.75
    view.feed(second)
    view.values()
    assert view.grid_accuracy == 0.5 and (tmp_path / "grid.png").is_file()
    assert "50 %" in view.status() and "grid of step" not in view.status()
    view.feed(real_grid(mnist, 2, step=60))  # a grid the judge left unread: the reading says which grid it is
    view.values()
    assert view.grid_accuracy == 0.5 and "50 % (grid of step 40)" in view.status()
    view.feed(GridJudged(60, 0.25))  # its reading, come later (the run's last grid, read before Finished)
    view.values()
    assert view.grid_accuracy == 0.25 and "25 %" in view.status() and "grid of step" not in view.status()
