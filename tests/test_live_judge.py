"""The live grid's judge reading: made beside the run's events, shown with the grid it read."""

from __future__ import annotations

from pathlib import Path

import torch

from demo.tabs.train import GridJudged, RunView, judged
from gancls.config import Budget
from gancls.judge import load_judge
from gancls.train import Metrics, Samples


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
    out = list(judged(iter(source), judge))
    readings = [e for e in out if isinstance(e, GridJudged)]
    assert [type(e) for e in out if not isinstance(e, GridJudged)] == [type(e) for e in source]
    assert [out[out.index(r) + 1] for r in readings] == [right, wrong]  # each reading just before its grid
    assert [r.step for r in readings] == [20, 40]
    assert readings[0].accuracy >= 0.9  # real digits in their own rows
    assert readings[1].accuracy <= 0.1  # every row labelled one digit off


def test_without_a_judge_the_events_pass_unchanged(mnist) -> None:
    grid = real_grid(mnist, 2, step=5)
    assert list(judged(iter([grid]), None)) == [grid]


def test_closing_it_closes_the_run() -> None:
    closed = []

    def run():
        try:
            while True:
                yield Samples(1, torch.zeros(10, 28, 28, dtype=torch.uint8), 1)
        finally:
            closed.append(True)  # where the engine saves

    events = judged(run(), None)
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
