"""An exponential moving average (EMA) of a network's weights, for sampling from a GAN's generator.

    ema = EMA(model.G, decay=0.99, warmup=10)
    for step in ...:
        trainer.step()
        ema.update(model.G)
    ema.recompute_batch_norm(batches)  # optional: BN statistics that belong to the averaged weights
    images = ema.model(noise, labels)  # ema.model is an eval-mode copy; it never trains

Averaging G's weights over the last few hundred steps smooths out the oscillation of adversarial
training, so the averaged G makes better digits sooner than the live one (Yazıcı et al. 2019,
"The unusual effectiveness of averaging in GAN training"; Karras et al. 2018, ProGAN).

The engine keeps one when TrainConfig.ema_decay > 0 (the fast preset: 0.98): `Trainer.model.G`
is the average, which grids, checkpoints, Generate, Probe and `gancls eval` then use; it averages
parameters only (buffers=False) and re-estimates the statistics before each use (gancls.train).
With TrainConfig.d_ema_decay > 0 (fast: 0.98) it keeps one of D too: `Trainer.model.D`, the D
that Probe and the evaluation ask (D has no batch norm, so nothing to re-estimate).

Batch-norm statistics. A BN layer's running mean and variance describe the activations of the
weights that produced them; the averaged weights have activations of their own. Two ways:
  * update() averages the running buffers like the weights. Costs nothing per step, and with
    decay 0 the copy equals the live network exactly (buffers included), but the averaged
    statistics belong to no single set of weights.
  * recompute_batch_norm(batches) re-estimates every BN layer's statistics with forward passes of
    the averaged weights (cumulative average over the batches given): exact for the averaged
    weights, and G's input is only noise and labels, so no data is needed. Recommended before
    sampling or saving: in bench/sample_efficiency.py (fast preset, full MNIST; 225 paired
    evaluations = 3 decays x 75 checkpoints from 25,600 images on, 9 runs) it raised the
    nearest-neighbour diversity at 225/225 (mean +0.006 to +0.019 by decay) and the judge's
    diversity at 223/225 (mean +0.005 to +0.016), with label accuracy unchanged (mean -0.0002 to
    -0.0005).
    Costs (fast preset, 1 thread): update() about 0.5 % of a training step; recomputing with
    8 batches of 256 about 4 training steps.
"""

from __future__ import annotations

import copy
from typing import Iterable, Sequence

import torch
from torch import nn

_BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


class EMA:
    """Moving average of `module`'s parameters and floating-point buffers, kept in a private copy.

    decay:  weight of the old average at each update, in [0, 1); 0 = a copy of the live weights.
    buffers: also average the buffers (BN running statistics). False: update() reads parameters
            only and the copy's buffers change only in recompute_batch_norm(), so the average never
            depends on when (or whether) statistics were recomputed (the Trainer's choice).
    warmup: if > 0, the decay used at update t (counted from 0) is min(decay, (1 + t) / (warmup + t)),
            so early, random weights are forgotten quickly (warmup=10 is TensorFlow's num_updates
            rule; the average then spans roughly the last 1 / (warmup - 1) of the updates until
            `decay` takes over). 0 = always `decay`.
    """

    def __init__(self, module: nn.Module, decay: float = 0.99, warmup: int = 0, *, buffers: bool = True):
        if not isinstance(decay, (int, float)) or isinstance(decay, bool) or not 0 <= decay < 1:
            raise ValueError(f"EMA decay must be a number in [0, 1) (got {decay!r})")
        if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 0:
            raise ValueError(f"EMA warmup must be a whole number >= 0 (got {warmup!r})")
        self.decay, self.warmup, self.buffers = float(decay), warmup, buffers
        self.num_updates = 0
        self.model = copy.deepcopy(module).eval().requires_grad_(False)

    def current_decay(self) -> float:
        """The decay the next update() will use."""
        if self.warmup <= 0:
            return self.decay
        t = self.num_updates
        return min(self.decay, (1 + t) / (self.warmup + t))

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        """Fold `module`'s current weights (same architecture as the copy) into the average."""
        d = self.current_decay()
        live = dict(module.named_parameters())
        live.update(module.named_buffers())
        averaged = self._tensors() if self.buffers else dict(self.model.named_parameters())
        for name, avg in averaged.items():
            src = live.get(name)
            if src is None or src.shape != avg.shape:
                raise ValueError(f"EMA.update: the module does not match the averaged copy at {name!r}")
            if avg.is_floating_point():
                avg.lerp_(src.detach().to(avg.dtype), 1.0 - d)  # avg = d * avg + (1 - d) * src
            else:
                avg.copy_(src)  # e.g. BN's num_batches_tracked
        self.num_updates += 1

    @torch.no_grad()
    def recompute_batch_norm(self, batches: Iterable[Sequence[torch.Tensor]]) -> int:
        """Re-estimate the copy's BN running statistics: forward each batch (positional args) in train mode.

        Uses a cumulative average over all batches (momentum None), then restores each layer's
        momentum and leaves the copy in eval mode. Returns the number of batches used.
        """
        layers = [m for m in self.model.modules() if isinstance(m, _BN_TYPES) and m.track_running_stats]
        momenta = [m.momentum for m in layers]
        for m in layers:
            m.reset_running_stats()
            m.momentum = None  # cumulative moving average: every batch counts equally
        n = 0
        try:
            self.model.train()
            for args in batches:
                self.model(*args)
                n += 1
        finally:
            for m, mom in zip(layers, momenta):
                m.momentum = mom
            self.model.eval()
        if n == 0 and layers:
            raise ValueError("recompute_batch_norm needs at least one batch")
        return n

    @torch.no_grad()
    def copy_to(self, module: nn.Module) -> None:
        """Load the averaged weights and buffers into `module` (e.g. to save or sample with it)."""
        module.load_state_dict(self.model.state_dict())

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The average and its settings as tensors (fits a safetensors or torch checkpoint)."""
        state = {f"model.{k}": v.detach().clone() for k, v in self.model.state_dict().items()}
        state["decay"] = torch.tensor(self.decay, dtype=torch.float64)
        state["warmup"] = torch.tensor(self.warmup, dtype=torch.int64)
        state["num_updates"] = torch.tensor(self.num_updates, dtype=torch.int64)
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what state_dict() returned; raises ValueError if it does not fit this network."""
        try:
            weights = {k[6:]: v for k, v in state.items() if k.startswith("model.")}
            self.model.load_state_dict(weights, strict=True)
            decay, warmup, n = float(state["decay"]), int(state["warmup"]), int(state["num_updates"])
        except (KeyError, RuntimeError) as err:
            raise ValueError(f"EMA state does not fit this network ({err})") from None
        if not 0 <= decay < 1 or warmup < 0 or n < 0:
            raise ValueError(f"EMA state has bad settings (decay {decay}, warmup {warmup}, updates {n})")
        self.decay, self.warmup, self.num_updates = decay, warmup, n

    def _tensors(self) -> dict[str, torch.Tensor]:
        out = dict(self.model.named_parameters())
        out.update(self.model.named_buffers())
        return out


__all__ = ["EMA"]
