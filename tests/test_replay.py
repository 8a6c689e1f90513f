"""The recorded-training file: a round trip, and clear refusals of damaged or foreign files."""

from __future__ import annotations

import pytest
import torch

from gancls.replay import ReplayError, load_replay, replay_path, save_replay


def _grids(n: int = 3) -> list[tuple[int, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [(10 * i, torch.randint(0, 256, (20, 28, 28), generator=g, dtype=torch.uint8)) for i in range(n)]


def test_a_replay_round_trips(tmp_path):
    grids = _grids()
    metrics = [{"step": 1.0, "d_real": 0.5}, {"step": 2.0, "d_real": 0.6}]
    save_replay(tmp_path, grids=grids, cols=2, metrics=metrics, evals=[{"step": 20, "label_accuracy": 0.9}],
                meta={"how": "test"})
    r = load_replay(tmp_path)
    assert r.steps == [0, 10, 20] and r.cols == 2 and r.metrics == metrics and r.meta == {"how": "test"}
    assert r.evals == [{"step": 20, "label_accuracy": 0.9}]
    for (_, want), got in zip(grids, r.grids):
        assert got.dtype == torch.uint8 and torch.equal(got, want)


def test_no_replay_is_none_and_bad_input_is_refused(tmp_path):
    assert load_replay(tmp_path) is None
    with pytest.raises(ValueError):
        save_replay(tmp_path, grids=[], cols=2, metrics=[])
    with pytest.raises(ValueError):
        save_replay(tmp_path, grids=list(reversed(_grids())), cols=2, metrics=[])
    replay_path(tmp_path).write_bytes(b"not a zip")
    with pytest.raises(ReplayError, match="not a readable replay"):
        load_replay(tmp_path)
