"""Shapes, the seed's quirks, the wrong-label samplers and the loss formulas on hand-made inputs."""

from __future__ import annotations

import pytest
import torch

from gancls.config import TrainConfig, model_preset
from gancls.models import GANCLS, wrong_labels
from gancls.train import IndexStream


@pytest.mark.parametrize("arch", ["seed", "fast", "small"])
def test_shapes(arch: str) -> None:
    m = GANCLS(model_preset(arch))
    y = torch.tensor([0, 3, 9])
    x = m.G(m.noise(3, torch.Generator().manual_seed(0)), y)
    assert x.shape == (3, 1, 28, 28) and 0 <= x.min() and x.max() <= 1
    assert m.D(x, y).shape == (3,)
    assert m.D(x, torch.eye(10)[y]).shape == (3,)  # soft label codes work too


def test_seed_architecture_matches_the_reference() -> None:
    m = GANCLS(model_preset("seed"))
    g = sum(p.numel() for p in m.G.parameters())
    d = sum(p.numel() for p in m.D.parameters())
    # Counted from slim's variables in the reference graph (BN has a shift, no scale):
    # G 50176+1024+6428800+6272+131136+64+1025, D 8624+2112+131200+6423552+1025.
    assert (g, d) == (6618497, 6566513)
    assert m.cfg.noise_dim + m.cfg.num_classes == 48
    # slim batch norm never uses moving averages: eval mode must still use batch statistics.
    m.eval()
    z, y = m.noise(4, torch.Generator().manual_seed(1)), torch.tensor([1, 2, 3, 4])
    one = m.G(z[:2], y[:2])
    both = m.G(z, y)[:2]
    assert not torch.allclose(one, both), "seed G output should depend on the rest of the batch"


def test_fast_arch_samples_do_not_depend_on_batch() -> None:
    m = GANCLS(model_preset("fast"))
    g = torch.Generator().manual_seed(0)
    z, y = m.noise(4, g), torch.tensor([1, 2, 3, 4])
    assert torch.allclose(m.sample(y[:2], noise=z[:2]), m.sample(y, noise=z)[:2], atol=1e-6)


def test_wrong_labels_are_always_wrong_and_uniform() -> None:
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (20000,), generator=g)
    w = wrong_labels(y, 10, g)
    assert (w != y).all() and w.min() >= 0 and w.max() <= 9
    counts = torch.bincount((w - y) % 10, minlength=10)
    assert counts[0] == 0 and counts[1:].min() > 0.8 * 20000 / 9


def test_seed_objective_draws_wrong_labels_from_a_second_batch() -> None:
    # The seed's misy = labels of another next_batch: about 1 in 10 equals the true label.
    labels = torch.randint(0, 10, (5000,), generator=torch.Generator().manual_seed(0))
    stream = IndexStream(len(labels), torch.Generator().manual_seed(1), torch.device("cpu"))
    same = []
    for _ in range(200):
        y, mis = labels[stream.next(10)], labels[stream.next(10)]
        same.append((y == mis).float().mean())
    assert 0.05 < float(torch.stack(same).mean()) < 0.15


def test_index_stream_follows_next_batch() -> None:
    # Every pass is a permutation; a batch crossing the end takes the rest, then a new shuffle.
    s = IndexStream(25, torch.Generator().manual_seed(0), torch.device("cpu"))
    first = torch.cat([s.next(10), s.next(10)])
    crossing = s.next(10)
    assert len(set(first.tolist())) == 20
    assert set(first.tolist()) | set(crossing[:5].tolist()) == set(range(25))
    assert len(set(crossing[5:].tolist())) == 5


def _hand_made(model: GANCLS, s_real: float, s_fake: float, s_mis: float):
    # A D whose sigmoid outputs are fixed per case: logits = logit(s).
    logit = lambda p: torch.logit(torch.tensor(p))  # noqa: E731
    values = {0: logit(s_real), 1: logit(s_fake), 2: logit(s_mis)}

    def fake_d(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        b = len(x) // 3
        return torch.cat([values[i].expand(b) for i in range(3)])

    model.D.forward = fake_d  # type: ignore[method-assign]


def test_lsgan_losses_equal_the_seed_formulas() -> None:
    m = GANCLS(model_preset("small"))
    b, sr, sf, sm = 4, 0.7, 0.2, 0.4
    _hand_made(m, sr, sf, sm)
    x = torch.zeros(b, 1, 28, 28)
    y = torch.zeros(b, dtype=torch.long)
    loss, scores = m.d_loss(x, y, y, x, TrainConfig())
    expected = b * ((sr - 1) ** 2 + (sf ** 2 + sm ** 2) / 2) / 2  # sum[(d_real-1)^2 + (d_fake^2+d_mis^2)/2]/2
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert scores.mean(1).tolist() == pytest.approx([sr, sf, sm], rel=1e-5)
    plain, _ = m.d_loss(x, y, y, x, TrainConfig(objective="plain"))
    assert plain.item() == pytest.approx(b * ((sr - 1) ** 2 + sf ** 2) / 2, rel=1e-5)
    m2 = GANCLS(model_preset("small"))
    m2.D.forward = lambda x, y: torch.logit(torch.tensor(sf)).expand(len(x))  # type: ignore[method-assign]
    assert m2.g_loss(x, y, TrainConfig()).item() == pytest.approx(b * (sf - 1) ** 2 / 2, rel=1e-5)


def test_bce_losses_follow_reed_et_al() -> None:
    import math

    m = GANCLS(model_preset("small"))
    b, sr, sf, sm = 3, 0.9, 0.3, 0.1
    _hand_made(m, sr, sf, sm)
    x = torch.zeros(b, 1, 28, 28)
    y = torch.zeros(b, dtype=torch.long)
    loss, _ = m.d_loss(x, y, y, x, TrainConfig(loss="bce"))
    expected = -b * (math.log(sr) + (math.log(1 - sf) + math.log(1 - sm)) / 2)
    assert loss.item() == pytest.approx(expected, rel=1e-4)


def test_mode_seeking_loss_is_noise_distance_over_image_distance() -> None:
    # Two pairs: rows 0-1 against rows 2-3. Images differ by 0.5 per pixel, noise by 2 per dimension.
    fake = torch.cat([torch.zeros(2, 1, 28, 28), torch.full((2, 1, 28, 28), 0.5)])
    noise = torch.cat([torch.zeros(2, 38), torch.full((2, 38), 2.0)])
    assert GANCLS.mode_seeking_loss(fake, noise).item() == pytest.approx(1 / (0.5 / 2 + 1e-5))
    # G lowers it by making different noise give more different digits.
    same = torch.zeros(4, 1, 28, 28)
    assert GANCLS.mode_seeking_loss(same, noise) > GANCLS.mode_seeking_loss(fake, noise)


def test_mode_seeking_weight_is_checked() -> None:
    assert TrainConfig().mode_seeking == 0.0  # off unless a preset or a setting asks for it
    for bad in (-0.1, 101, float("nan"), "0.1", True):
        with pytest.raises(ValueError, match="mode_seeking"):
            TrainConfig(mode_seeking=bad)
        with pytest.raises(ValueError, match="mode_seeking_late"):
            TrainConfig(mode_seeking_late=bad)
    for bad in (-1, 2.5, "100", True):
        with pytest.raises(ValueError, match="mode_seeking_after"):
            TrainConfig(mode_seeking_after=bad)


def test_mode_seeking_schedule_switches_once_after_its_images() -> None:
    never = TrainConfig(mode_seeking=0.1, mode_seeking_late=0.5)  # mode_seeking_after 0: no switch
    assert [never.mode_seeking_at(n) for n in (0, 10**6)] == [0.1, 0.1]
    switch = TrainConfig(mode_seeking=0.1, mode_seeking_after=640, mode_seeking_late=0.5)
    assert [switch.mode_seeking_at(n) for n in (0, 639, 640, 10**6)] == [0.1, 0.1, 0.5, 0.5]
    assert TrainConfig(mode_seeking=0.1, mode_seeking_after=64).mode_seeking_at(64) == 0.0  # late 0 turns it off
    from gancls.config import train_preset

    fast = train_preset("fast")
    assert (fast.mode_seeking, fast.mode_seeking_after, fast.mode_seeking_late) == (0.005, 25_600, 0.02)
    assert train_preset("seed").mode_seeking_at(10**6) == 0.0  # the reference: no term, ever
