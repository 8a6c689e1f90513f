"""Generator, matching-aware discriminator, and the GAN-CLS wrapper that owns loss and sampling.

Layer for layer this follows the seed (a TF-1 + slim textbook example):
  G: z = [one_hot(y), noise] -> fc -> BN -> ReLU -> fc 7*7*C -> BN -> ReLU -> 7x7xC
     -> deconv(k4, s2) -> BN -> ReLU -> 14x14 -> deconv(k4, s2) -> sigmoid -> 28x28
  D: one_hot(y) -> fc 784 -> leaky -> 28x28 map, stacked with x as a 2nd channel
     -> conv(k4, s2) -> leaky -> conv(k4, s2) -> leaky -> fc -> leaky -> fc 1
Where the seed and we differ on purpose (only for arches other than "seed"):
  * slim's fully_connected applies ReLU by default, so the seed's G fc layers are
    fc -> ReLU -> BN -> ReLU; with `seed_fc_relu=False` we drop the first ReLU.
  * slim's batch norm ran in training mode with its moving averages never updated, so the
    seed's G always normalises with the current batch's statistics, sampling included
    (a sample then depends on what else is in its batch). With `batch_stats_always=False`
    we keep running statistics and sample in eval mode, so a digit depends only on (y, z).
Kept everywhere: slim's batch norm has a learned shift but no scale (scale=False, eps=1e-3),
Xavier-uniform weights and zero biases (slim's initialisers), k4/s2 "SAME" padding (= 1 here).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ModelConfig, TrainConfig
from .linear import Linear


class ShiftBatchNorm(nn.Module):
    """slim.batch_norm with its defaults: normalise, then add a learned shift (no scale)."""

    def __init__(self, n: int, dims: int, batch_stats_always: bool):
        super().__init__()
        bn = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
        self.norm = bn(n, eps=1e-3, momentum=0.05, affine=False, track_running_stats=not batch_stats_always)
        self.shift = nn.Parameter(torch.zeros(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return self.norm(x) + self.shift.view(shape)


class Generator(nn.Module):
    """G(z | y): label-conditioned generator, 28x28 images in [0, 1]."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        k, stats = cfg.num_classes, cfg.batch_stats_always
        self.fc1 = Linear(k + cfg.noise_dim, cfg.g_fc)
        self.bn1 = ShiftBatchNorm(cfg.g_fc, 1, stats)
        self.fc2 = Linear(cfg.g_fc, 7 * 7 * cfg.g_ch)
        self.bn2 = ShiftBatchNorm(7 * 7 * cfg.g_ch, 1, stats)
        self.up1 = nn.ConvTranspose2d(cfg.g_ch, cfg.g_deconv, 4, stride=2, padding=1)
        self.bn3 = ShiftBatchNorm(cfg.g_deconv, 2, stats)
        self.up2 = nn.ConvTranspose2d(cfg.g_deconv, 1, 4, stride=2, padding=1)

    def _fc(self, fc: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        x = fc(x)
        return F.relu(x) if self.cfg.seed_fc_relu else x

    def forward(self, noise: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # noise [B, noise_dim], y [B] int64 -> images [B, 1, 28, 28] in [0, 1]
        z = torch.cat([F.one_hot(y, self.cfg.num_classes).to(noise.dtype), noise], dim=1)  # [B, 48]
        return self.decode(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """G from a ready input z = [label code, noise]: the label code may be a soft mix."""
        h = F.relu(self.bn1(self._fc(self.fc1, z)))  # [B, g_fc]
        h = F.relu(self.bn2(self._fc(self.fc2, h)))  # [B, 7*7*g_ch]
        # The seed reshapes NHWC [B, 7, 7, C]; a channels-first view is the same layer up to a
        # fixed permutation of fc2's (randomly initialised) outputs.
        h = h.view(-1, self.cfg.g_ch, 7, 7)  # [B, g_ch, 7, 7]
        h = F.relu(self.bn3(self.up1(h)))  # [B, g_deconv, 14, 14]
        return torch.sigmoid(self.up2(h).float())  # [B, 1, 28, 28]; fp32 under bf16 autocast too


class Discriminator(nn.Module):
    """D(x, y): one logit per (image, label) pair; high = a real image that matches its label."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.label_map = Linear(cfg.num_classes, 28 * 28)
        self.conv1 = nn.Conv2d(2, cfg.d_conv1, 4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(cfg.d_conv1, cfg.d_conv2, 4, stride=2, padding=1)
        self.fc = Linear(7 * 7 * cfg.d_conv2, cfg.d_fc)
        self.out = Linear(cfg.d_fc, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # x [B, 1, 28, 28] in [0, 1]; y [B] int64 or a soft code [B, 10] -> logits [B]
        code = F.one_hot(y, self.cfg.num_classes).to(x.dtype) if y.dim() == 1 else y.to(x.dtype)
        act = lambda t: F.leaky_relu(t, self.cfg.leak)  # noqa: E731
        ymap = act(self.label_map(code)).view(-1, 1, 28, 28)  # [B, 1, 28, 28]
        h = torch.cat([x, ymap], dim=1)  # [B, 2, 28, 28]
        h = act(self.conv1(h))  # [B, d_conv1, 14, 14]
        h = act(self.conv2(h))  # [B, d_conv2, 7, 7]
        h = act(self.fc(h.flatten(1)))  # [B, d_fc]
        return self.out(h).squeeze(1).float()  # [B]; losses in fp32 under bf16 autocast too


def _init(module: nn.Module) -> None:
    # slim's defaults: Xavier (Glorot) uniform weights, zero biases.
    if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.xavier_uniform_(module.weight)
        nn.init.zeros_(module.bias)


def wrong_labels(y: torch.Tensor, num_classes: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A label different from each y, uniform over the other num_classes - 1."""
    shift = torch.randint(1, num_classes, y.shape, generator=generator, device=y.device)
    return (y + shift) % num_classes


class GANCLS(nn.Module):
    """G and D together: the matching-aware objective (Reed et al. 2016, Alg. 1) and sampling."""

    def __init__(self, cfg: ModelConfig, G: Generator | None = None, D: Discriminator | None = None):
        """A new pair, initialised as the seed did; or one made of existing networks (shared, not copied)."""
        super().__init__()
        self.cfg = cfg
        self.G = G if G is not None else Generator(cfg)
        self.D = D if D is not None else Discriminator(cfg)
        for net, given in ((self.G, G), (self.D, D)):  # after both exist: the seed's order of random draws
            if given is None:
                net.apply(_init)

    def noise(self, n: int, generator: torch.Generator | None = None, device: torch.device | None = None) -> torch.Tensor:
        """Standard normal noise [n, noise_dim], drawn on the generator's device, moved to `device`."""
        gen_device = generator.device if generator is not None else device
        z = torch.randn(n, self.cfg.noise_dim, generator=generator, device=gen_device)
        return z.to(device) if device is not None else z

    def d_loss(self, x: torch.Tensor, y: torch.Tensor, y_wrong: torch.Tensor, fake: torch.Tensor,
               tcfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
        """D's loss over one pass on the stacked (real,right), (fake,right), (real,wrong) batches.

        Returns (loss, scores [3, B]) where scores are sigmoid(D) for the three cases.
        """
        logits = self.D(torch.cat([x, fake, x]), torch.cat([y, y, y_wrong])).view(3, -1)  # [3, B]
        real, fake_, mis = logits
        matching = tcfg.objective != "plain"  # the plain conditional GAN has no real/wrong term
        if tcfg.loss == "lsgan":
            s = torch.sigmoid(logits)
            # The seed: sum[(d_real - 1)^2 + (d_fake^2 + d_mis^2) / 2] / 2
            neg = (s[1] ** 2 + s[2] ** 2) / 2 if matching else s[1] ** 2
            loss = ((s[0] - 1) ** 2 + neg).sum() / 2
        else:
            # Reed et al.: log(s_r) + (log(1 - s_w) + log(1 - s_f)) / 2, as a sum of BCE terms.
            bce = lambda t, target: F.binary_cross_entropy_with_logits(t, torch.full_like(t, target), reduction="sum")  # noqa: E731
            neg = (bce(fake_, 0.0) + bce(mis, 0.0)) / 2 if matching else bce(fake_, 0.0)
            loss = bce(real, 1.0) + neg
        return loss, torch.sigmoid(logits.detach())

    def g_loss(self, fake: torch.Tensor, y: torch.Tensor, tcfg: TrainConfig) -> torch.Tensor:
        """G's loss on its own samples: the seed's sum(d_fake - 1)^2 / 2, or non-saturating BCE."""
        logits = self.D(fake, y)
        if tcfg.loss == "lsgan":
            return ((torch.sigmoid(logits) - 1) ** 2).sum() / 2
        return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), reduction="sum")

    @staticmethod
    def mode_seeking_loss(fake: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Mao et al. 2019 (MSGAN): 1 / (image distance / noise distance) over pairs of one label.

        fake [2P, ...] and noise [2P, noise_dim] hold P pairs, row i and row P + i drawn for the same
        label; the loss falls as G maps different noise to more different digits.
        """
        p = len(fake) // 2
        ratio = (fake[:p] - fake[p:]).abs().mean() / (noise[:p] - noise[p:]).abs().mean()
        return 1 / (ratio + 1e-5)

    @torch.no_grad()
    def sample(self, labels: torch.Tensor, generator: torch.Generator | None = None,
               noise: torch.Tensor | None = None) -> torch.Tensor:
        """Images [N, 1, 28, 28] in [0, 1] for int64 labels [N] (eval mode; see module doc)."""
        device = next(self.parameters()).device
        if noise is None:
            noise = self.noise(len(labels), generator, device)
        was_training = self.G.training
        self.G.eval()
        try:
            return self.G(noise.to(device), labels.to(device))
        finally:
            self.G.train(was_training)

    @torch.no_grad()
    def match_scores(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """sigmoid(D(x, y)) [N] for images [N, 1, 28, 28] in [0, 1] and labels [N] (or codes [N, 10])."""
        device = next(self.parameters()).device
        return torch.sigmoid(self.D(images.to(device), labels.to(device)))
