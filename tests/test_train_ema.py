"""The engine's moving average of G (TrainConfig.ema_decay): what samples and saves use, exact resume."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from gancls.checkpoint import load_checkpoint, save_checkpoint
from gancls.config import Budget, ConfigError, TrainConfig, model_preset, train_preset
from gancls.data import load_embedded
from gancls.sampling import to_uint8
from gancls.train import BN_BATCH, BN_BATCHES, Metrics, Samples, Trainer


@pytest.fixture(scope="module")
def data():
    return load_embedded()


def _cfg(**kw):
    base = {"metrics_every": 1, "metrics_seconds": 1e9, "sample_seconds": 1e9, "autosave_seconds": 0,
            "batch_size": 32, "ema_decay": 0.9}
    return train_preset("small", **{**base, **kw})


def _tensors(t: Trainer) -> dict[str, torch.Tensor]:
    return {**{f"model.{k}": v for k, v in t.model.state_dict().items()},
            **{f"train.{k}": v for k, v in t.train_state().items()}}


def test_ema_decay_is_checked() -> None:
    for bad in (1.0, -0.1, True, float("nan"), "0.9"):
        with pytest.raises(ConfigError, match="ema_decay"):
            TrainConfig(ema_decay=bad)
    assert TrainConfig().ema_decay == 0.0  # off unless a preset or a flag asks for it
    assert train_preset("seed").ema_decay == 0.0  # the reference stays faithful by default


def test_model_g_is_the_average_with_its_own_batch_norm_statistics(data, tmp_path: Path) -> None:
    t = Trainer(model_preset("small"), _cfg(), data, device="cpu", run_dir=tmp_path)
    live0 = copy.deepcopy(t.train_state())
    list(t.run(Budget(steps=30)))
    live = {k[len("live_g."):]: v for k, v in t.train_state().items() if k.startswith("live_g.")}
    assert live and {k for k in live} == set(t.model.G.state_dict())
    avg = dict(t.model.G.named_parameters())
    assert all(not torch.equal(avg[k], live[k]) for k in avg)  # averaged, not the trained weights
    assert any(not torch.equal(live[k], live0[f"live_g.{k}"]) for k in live)  # and G did train
    assert not t.model.G.training and all(not p.requires_grad for p in t.model.G.parameters())
    # BN statistics: the ones the averaged weights produce on the fixed batches, not averaged ones
    check = copy.deepcopy(t.model.G)
    gen = torch.Generator().manual_seed(t.cfg.seed + 4)
    labels = torch.arange(10).repeat(BN_BATCH // 10 + 1)[:BN_BATCH]
    for m in check.modules():
        if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d) and m.track_running_stats:
            m.reset_running_stats()
            m.momentum = None
    check.train()
    with torch.no_grad():
        for _ in range(BN_BATCHES):
            check(t.model.noise(BN_BATCH, gen), labels)
    for k, v in check.named_buffers():
        assert torch.allclose(v.float(), t.model.G.get_buffer(k).float(), rtol=1e-5, atol=1e-6), k
    # the checkpoint's G is the average (what `gancls sample` and the app load), D the trained D
    ckpt = load_checkpoint(tmp_path)
    for k, v in t.model.state_dict().items():
        assert torch.equal(ckpt.model.state_dict()[k], v), k
    grid = t.samples().images  # the fixed-noise grid comes from the average too
    assert torch.equal(grid, to_uint8(ckpt.model.sample(t.fixed_labels, noise=t.fixed_noise)))


def test_grids_do_not_change_training(data) -> None:
    # Re-estimating BN statistics for a grid happens at wall-clock times; training must not see it.
    runs = []
    for sample_seconds in (0.0, 1e9):
        t = Trainer(model_preset("small"), _cfg(sample_seconds=sample_seconds), data, device="cpu")
        events = list(t.run(Budget(steps=25)))
        runs.append((t, sum(isinstance(e, Samples) for e in events)))
    (a, n_a), (b, n_b) = runs
    assert n_a > n_b
    for k, v in _tensors(a).items():
        assert torch.equal(v, _tensors(b)[k]), k


def test_resume_with_an_average_continues_exactly(data, tmp_path: Path) -> None:
    whole = Trainer(model_preset("small"), _cfg(), data, device="cpu")
    expected = [(m.step, m.loss_d, m.loss_g) for m in whole.run(Budget(steps=40)) if isinstance(m, Metrics)]

    first = Trainer(model_preset("small"), _cfg(), data, device="cpu", run_dir=tmp_path)
    got = [(m.step, m.loss_d, m.loss_g) for m in first.run(Budget(steps=20)) if isinstance(m, Metrics)]
    resumed = Trainer.resume(tmp_path, data, device="cpu")
    assert resumed.ema is not None and resumed.cfg.ema_decay == 0.9
    got += [(m.step, m.loss_d, m.loss_g) for m in resumed.run(Budget(steps=40)) if isinstance(m, Metrics)]
    assert got == expected
    for k, v in _tensors(whole).items():  # the average and its statistics too, bit for bit
        assert torch.equal(v, _tensors(resumed)[k]), k


def test_a_checkpoint_from_before_the_average_loads_and_resumes(data, tmp_path: Path) -> None:
    t = Trainer(model_preset("small"), _cfg(ema_decay=0.0), data, device="cpu")
    list(t.run(Budget(steps=10)))
    meta = t.meta()
    del meta["train_config"]["ema_decay"]  # as written before the field existed
    save_checkpoint(tmp_path, t.model, meta, t.train_state())
    assert not any(k.startswith("live_g.") for k in load_checkpoint(tmp_path).train_state)
    resumed = Trainer.resume(tmp_path, data, device="cpu")
    assert resumed.ema is None and not any(k.startswith("live_g.") for k in resumed.train_state())
    assert list(resumed.run(Budget(steps=12)))[-1].step == 12


def test_averaged_run_needs_the_trained_g_to_resume(data, tmp_path: Path) -> None:
    from gancls.checkpoint import CheckpointError

    t = Trainer(model_preset("small"), _cfg(), data, device="cpu")
    list(t.run(Budget(steps=5)))
    state = {k: v for k, v in t.train_state().items() if not k.startswith("live_g.")}
    save_checkpoint(tmp_path, t.model, t.meta(), state)
    with pytest.raises(CheckpointError, match="trained G"):
        Trainer.resume(tmp_path, data, device="cpu")
