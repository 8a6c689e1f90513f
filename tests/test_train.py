"""The training engine end to end on tiny settings: events, learning, checkpoints, resume."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest
import torch

from gancls.checkpoint import load_checkpoint
from gancls.config import model_preset, train_preset
from gancls.data import load_embedded
from gancls.sampling import label_grid
from gancls.train import CheckpointSaved, Finished, Metrics, Samples, Started, Trainer


@pytest.fixture(scope="module")
def data():
    return load_embedded()  # 10,000 real MNIST digits shipped in the repo


def _cfg(**kw):
    base = dict(max_steps=60, epochs=None, metrics_every=10, metrics_seconds=1e9, sample_seconds=1e9, autosave_seconds=0, batch_size=32)
    return train_preset("small", **{**base, **kw})


def test_short_run_emits_every_event_and_learns(data, tmp_path: Path) -> None:
    t = Trainer(model_preset("small"), _cfg(max_steps=150, sample_seconds=0.0), data, device="cpu", run_dir=tmp_path)
    events = list(t.run())
    kinds = {type(e) for e in events}
    assert {Started, Metrics, Samples, CheckpointSaved, Finished} <= kinds
    assert isinstance(events[0], Started) and isinstance(events[-1], Finished)
    assert events[-1].reason == "steps" and events[-1].step == 150
    metrics = [e for e in events if isinstance(e, Metrics)]
    assert [m.step for m in metrics] == sorted(m.step for m in metrics)
    assert metrics[-1].loss_d < metrics[0].loss_d  # D learns to tell the three cases apart
    assert metrics[-1].d_real > metrics[-1].d_wrong  # ... including real digits with wrong labels
    grids = [e for e in events if isinstance(e, Samples)]
    assert grids[0].images.shape == (80, 28, 28) and grids[0].images.dtype == torch.uint8
    assert not torch.equal(grids[0].images, grids[-1].images)  # the fixed-noise grid evolves
    assert (tmp_path / "gancls.safetensors").is_file() and (tmp_path / "gancls.json").is_file()


def test_same_seed_same_run(data) -> None:
    runs = []
    for _ in range(2):
        t = Trainer(model_preset("small"), _cfg(max_steps=20), data, device="cpu")
        runs.append([(m.loss_d, m.loss_g) for m in t.run() if isinstance(m, Metrics)])
    assert runs[0] == runs[1]


def test_checkpoint_round_trip_gives_identical_samples(data, tmp_path: Path) -> None:
    t = Trainer(model_preset("small"), _cfg(max_steps=30), data, device="cpu", run_dir=tmp_path)
    list(t.run())
    t.model.eval()
    before, _ = label_grid(t.model, range(10), 3, seed=7)
    ckpt = load_checkpoint(tmp_path)
    after, _ = label_grid(ckpt.model, range(10), 3, seed=7)
    assert torch.equal(before, after)
    assert ckpt.step == 30 and ckpt.meta["train_config"]["batch_size"] == 32
    assert ckpt.meta["data"].startswith("embedded subset")


def test_resume_continues_exactly(data, tmp_path: Path) -> None:
    whole = Trainer(model_preset("small"), _cfg(max_steps=40, metrics_every=1), data, device="cpu")
    expected = [(m.step, m.loss_d, m.loss_g) for m in whole.run() if isinstance(m, Metrics)]

    first = Trainer(model_preset("small"), _cfg(max_steps=20, metrics_every=1), data, device="cpu", run_dir=tmp_path)
    got = [(m.step, m.loss_d, m.loss_g) for m in first.run() if isinstance(m, Metrics)]
    resumed = Trainer.resume(tmp_path, data, device="cpu", max_steps=40)
    events = list(resumed.run())
    assert isinstance(events[0], Started) and events[0].resumed and events[0].step == 20
    got += [(m.step, m.loss_d, m.loss_g) for m in events if isinstance(m, Metrics)]
    assert got == expected
    assert load_checkpoint(tmp_path).step == 40


def test_stop_request_keeps_the_model(data, tmp_path: Path) -> None:
    stop = threading.Event()
    t = Trainer(model_preset("small"), _cfg(max_steps=10_000), data, device="cpu", run_dir=tmp_path)
    for e in t.run(stop):
        if isinstance(e, Metrics) and e.step >= 30:
            stop.set()
    assert isinstance(e, Finished) and e.reason == "stopped"
    assert load_checkpoint(tmp_path).step == t.step_count
    # ... and run() again continues the same run
    more = list(t.run(max_seconds=0.3))
    assert more[0].step == e.step and more[-1].step > e.step


def test_time_budget(data) -> None:
    t = Trainer(model_preset("small"), _cfg(max_steps=None, max_seconds=1.0), data, device="cpu")
    events = list(t.run())
    assert events[-1].reason == "time" and 0 < events[-1].step


def test_abandoned_iterator_still_saves(data, tmp_path: Path) -> None:
    t = Trainer(model_preset("small"), _cfg(max_steps=10_000), data, device="cpu", run_dir=tmp_path)
    it = t.run()
    for e in it:
        if isinstance(e, Metrics) and e.step >= 20:
            break
    it.close()  # what a closed browser tab does to a Gradio generator
    assert load_checkpoint(tmp_path).step == t.step_count >= 20


def test_seed_preset_holds_out_5000_and_uses_batch_10(data) -> None:
    cfg = dataclasses.replace(train_preset("seed"), max_steps=2, epochs=None, objective="seed")
    t = Trainer(model_preset("seed"), cfg, data, device="cpu")
    assert len(t.images) == len(data.train_images) - 5000 and cfg.batch_size == 10
    assert t.steps_per_epoch == (len(data.train_images) - 5000) // 10
    assert list(t.run())[-1].step == 2
