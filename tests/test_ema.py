"""The moving average of G's weights: the arithmetic, batch-norm statistics, checkpointing, and a real run."""

from __future__ import annotations

import pytest
import torch

from gancls.config import model_preset, train_preset
from gancls.ema import EMA
from gancls.models import GANCLS, Generator


def _generator(seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    return GANCLS(model_preset("small")).G


def _inputs(n: int = 64, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, model_preset("small").noise_dim, generator=g), torch.arange(n) % 10


def _perturb(module: torch.nn.Module, seed: int) -> None:
    """Change every parameter and BN buffer, as a training step would."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in list(module.parameters()) + [b for b in module.buffers() if b.is_floating_point()]:
            t.add_(torch.rand(t.shape, generator=g) * 0.1)


def test_decay_zero_is_the_live_network():
    live = _generator()
    ema = EMA(live, decay=0.0)
    _perturb(live, 1)
    ema.update(live)
    for (name, a), b in zip(live.state_dict().items(), ema.model.state_dict().values()):
        assert torch.equal(a, b), name
    noise, labels = _inputs()
    live.eval()
    assert torch.equal(live(noise, labels), ema.model(noise, labels))


def test_update_is_the_exponential_average_of_weights_and_buffers():
    live = _generator()
    w0 = live.fc1.weight.detach().clone()
    m0 = live.bn1.norm.running_mean.clone()
    ema = EMA(live, decay=0.9)
    _perturb(live, 1)
    w1, m1 = live.fc1.weight.detach().clone(), live.bn1.norm.running_mean.clone()
    ema.update(live)
    _perturb(live, 2)
    w2 = live.fc1.weight.detach().clone()
    ema.update(live)
    expected = 0.9 * (0.9 * w0 + 0.1 * w1) + 0.1 * w2
    assert torch.allclose(ema.model.fc1.weight, expected, atol=1e-6)
    assert not torch.allclose(ema.model.fc1.weight, w2)
    _ = m0, m1  # buffers follow the same rule:
    live2 = _generator()
    ema2 = EMA(live2, decay=0.5)
    _perturb(live2, 3)
    ema2.update(live2)
    assert torch.allclose(ema2.model.bn1.norm.running_mean, 0.5 * m0 + 0.5 * live2.bn1.norm.running_mean)
    assert ema.num_updates == 2 and not ema.model.training
    assert all(not p.requires_grad for p in ema.model.parameters())


def test_warmup_forgets_the_start_quickly():
    ema = EMA(_generator(), decay=0.99, warmup=10)
    decays = []
    for _ in range(2000):
        decays.append(ema.current_decay())
        ema.num_updates += 1
    assert decays[0] == pytest.approx(0.1)
    assert decays[90] == pytest.approx(91 / 100)
    assert decays == sorted(decays) and decays[-1] == 0.99 and decays[889] < 0.99
    assert EMA(_generator(), decay=0.999).current_decay() == 0.999


def test_recomputed_batch_norm_statistics_belong_to_the_averaged_weights():
    live = _generator()
    ema = EMA(live, decay=0.5)
    _perturb(live, 1)
    ema.update(live)
    batches = [_inputs(64, seed) for seed in (1, 2, 3)]
    momentum = ema.model.bn1.norm.momentum
    assert ema.recompute_batch_norm(batches) == 3
    # bn1 normalises fc1's output: its running mean must be the mean of that output over all batches.
    g = ema.model
    z = torch.cat([torch.cat([torch.nn.functional.one_hot(y, 10).float(), n], 1) for n, y in batches])
    pre = g.fc1(z).detach()
    assert torch.allclose(g.bn1.norm.running_mean, pre.mean(0), atol=1e-5)
    # ... and its running variance the average of the batches' (unbiased) variances, as BN's own
    # cumulative average defines it.
    per_batch_var = torch.stack([p.var(0, unbiased=True) for p in pre.split(64)]).mean(0)
    assert torch.allclose(g.bn1.norm.running_var, per_batch_var, rtol=1e-4, atol=1e-6)
    assert g.bn1.norm.momentum == momentum and not g.training
    out = g(*_inputs())
    assert torch.isfinite(out).all() and 0 <= out.min() and out.max() <= 1
    with pytest.raises(ValueError, match="at least one batch"):
        ema.recompute_batch_norm([])


def test_state_dict_round_trip_and_copy_to():
    live = _generator()
    ema = EMA(live, decay=0.9, warmup=5)
    for seed in range(3):
        _perturb(live, seed)
        ema.update(live)
    other = EMA(_generator(seed=7), decay=0.5)
    other.load_state_dict(ema.state_dict())
    assert (other.decay, other.warmup, other.num_updates) == (0.9, 5, 3)
    noise, labels = _inputs()
    assert torch.equal(other.model(noise, labels), ema.model(noise, labels))
    target = _generator(seed=9).eval()
    ema.copy_to(target)
    assert torch.equal(target(noise, labels), ema.model(noise, labels))
    wide = GANCLS(model_preset("fast")).G
    with pytest.raises(ValueError, match="does not fit"):
        EMA(wide).load_state_dict(ema.state_dict())
    with pytest.raises(ValueError, match="does not match"):
        ema.update(wide)


@pytest.mark.parametrize("decay, warmup", [(1.0, 0), (-0.1, 0), ("0.9", 0), (0.9, -1), (0.9, 2.5)])
def test_bad_settings_are_refused(decay, warmup):
    with pytest.raises(ValueError, match="EMA"):
        EMA(_generator(), decay=decay, warmup=warmup)


def test_average_of_a_training_generator_samples_sensible_digits(mnist):
    from gancls.train import Trainer

    trainer = Trainer(model_preset("small"), train_preset("small", seed=0), mnist.data, device="cpu")
    G = trainer.model.G
    ema = EMA(G, decay=0.9, warmup=10)
    for _ in range(15):
        trainer.step()
        ema.update(G)
    assert ema.num_updates == 15
    assert not torch.equal(ema.model.fc1.weight, G.fc1.weight)
    noise, labels = _inputs(100)
    averaged = ema.model(noise, labels)
    ema.recompute_batch_norm([_inputs(100, s) for s in range(4)])
    recomputed = ema.model(noise, labels)
    for out in (averaged, recomputed):
        assert out.shape == (100, 1, 28, 28) and torch.isfinite(out).all()
        assert 0 <= out.min() and out.max() <= 1 and out.std() > 0.01  # not a blank or constant image
    assert trainer.model.G is G and G.training  # the live G is untouched
