"""The engine's moving average of D (TrainConfig.d_ema_decay): what Probe, D's view and the evaluation ask."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gancls.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from gancls.config import Budget, ConfigError, TrainConfig, model_preset, train_preset
from gancls.data import load_embedded
from gancls.evaluate import mismatch_auc
from gancls.probe import match_scores
from gancls.train import Metrics, Trainer


@pytest.fixture(scope="module")
def data():
    return load_embedded()


def _cfg(**kw):
    base = {"metrics_every": 1, "metrics_seconds": 1e9, "sample_seconds": 1e9, "autosave_seconds": 0,
            "batch_size": 32, "ema_decay": 0.9, "d_ema_decay": 0.9}
    return train_preset("small", **{**base, **kw})


def _tensors(t: Trainer) -> dict[str, torch.Tensor]:
    return {**{f"model.{k}": v for k, v in t.model.state_dict().items()},
            **{f"train.{k}": v for k, v in t.train_state().items()}}


def _curves(t: Trainer, steps: int) -> list[tuple]:
    return [(m.step, m.loss_d, m.loss_g, m.d_real, m.d_fake, m.d_wrong)
            for m in t.run(Budget(steps=steps)) if isinstance(m, Metrics)]


def test_d_ema_decay_is_checked_and_only_the_fast_preset_uses_it() -> None:
    for bad in (1.0, -0.1, True, float("nan"), "0.9"):
        with pytest.raises(ConfigError, match="d_ema_decay"):
            TrainConfig(d_ema_decay=bad)
    assert TrainConfig().d_ema_decay == 0.0
    assert train_preset("seed").d_ema_decay == 0.0  # the reference stays faithful by default
    assert train_preset("fast").d_ema_decay == 0.98


def test_the_average_changes_nothing_in_training(data) -> None:
    plain = Trainer(model_preset("small"), _cfg(d_ema_decay=0.0), data, device="cpu")
    averaged = Trainer(model_preset("small"), _cfg(), data, device="cpu")
    assert _curves(plain, 30) == _curves(averaged, 30)
    live = {k[len("live_d."):]: v for k, v in averaged.train_state().items() if k.startswith("live_d.")}
    assert live.keys() == plain.model.D.state_dict().keys()
    for k, v in plain.model.D.state_dict().items():  # the D that trained is the same in both runs ...
        assert torch.equal(live[k], v), k
    for k, v in averaged.model.D.state_dict().items():  # ... and the model's D is its average, not it
        assert not torch.equal(live[k], v), k
    assert not averaged.model.D.training and all(not p.requires_grad for p in averaged.model.D.parameters())


def test_probe_and_evaluation_ask_the_averaged_d(data) -> None:
    t = Trainer(model_preset("small"), _cfg(), data, device="cpu")
    list(t.run(Budget(steps=20)))
    x, y = data.test_images[:64], data.test_labels[:64]
    got = match_scores(t.model, x, y)
    with torch.no_grad():
        expected = torch.sigmoid(t.d_ema.model(x.unsqueeze(1).float() / 255, y))
        live = torch.sigmoid(t.live_d(x.unsqueeze(1).float() / 255, y))
    assert torch.allclose(got, expected, atol=1e-6) and not torch.allclose(got, live, atol=1e-4)
    auc = mismatch_auc(lambda a, b: match_scores(t.model, a, b), x, y, torch.Generator().manual_seed(0))
    assert 0.0 <= auc <= 1.0


def test_checkpoint_holds_the_average_as_d_and_resumes_exactly(data, tmp_path: Path) -> None:
    whole = Trainer(model_preset("small"), _cfg(), data, device="cpu")
    expected = _curves(whole, 40)
    first = Trainer(model_preset("small"), _cfg(), data, device="cpu", run_dir=tmp_path)
    got = _curves(first, 20)
    ckpt = load_checkpoint(tmp_path)
    for k, v in first.model.D.state_dict().items():  # `gancls probe` and the app load the average
        assert torch.equal(ckpt.model.D.state_dict()[k], v), k
    resumed = Trainer.resume(tmp_path, data, device="cpu")
    assert resumed.d_ema is not None and resumed.cfg.d_ema_decay == 0.9
    got += _curves(resumed, 40)
    assert got == expected
    for k, v in _tensors(whole).items():  # both averages and the trained networks, bit for bit
        assert torch.equal(v, _tensors(resumed)[k]), k


def test_a_checkpoint_from_before_the_d_average_resumes_without_one(data, tmp_path: Path) -> None:
    t = Trainer(model_preset("small"), _cfg(d_ema_decay=0.0), data, device="cpu")
    list(t.run(Budget(steps=10)))
    meta = t.meta()
    del meta["train_config"]["d_ema_decay"]  # as written before the field existed
    save_checkpoint(tmp_path, t.model, meta, t.train_state())
    resumed = Trainer.resume(tmp_path, data, device="cpu")
    assert resumed.d_ema is None and resumed.model.D is resumed.live_d
    assert list(resumed.run(Budget(steps=12)))[-1].step == 12


def test_averaged_run_needs_the_trained_d_to_resume(data, tmp_path: Path) -> None:
    t = Trainer(model_preset("small"), _cfg(), data, device="cpu")
    list(t.run(Budget(steps=5)))
    state = {k: v for k, v in t.train_state().items() if not k.startswith("live_d.")}
    save_checkpoint(tmp_path, t.model, t.meta(), state)
    with pytest.raises(CheckpointError, match="trained D"):
        Trainer.resume(tmp_path, data, device="cpu")
