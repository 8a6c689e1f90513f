"""Typed settings for the networks and for training, saved with every checkpoint, and the run budget.

Every config checks itself when it is made, so an invalid one cannot exist: a bad value raises
ConfigError (a UserError) naming the field. Hyper-parameters (TrainConfig) belong to a run for
good; the budget (Budget) says how long to train and may differ from one `Trainer.run` to the next.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from . import validate
from .errors import UserError

ARCHES = ("seed", "fast", "small")
OBJECTIVES = ("gan-cls", "plain", "seed")
LOSSES = ("lsgan", "bce")
PRECISIONS = ("fp32", "bf16")
LEGACY_BUDGET_KEYS = ("epochs", "max_steps", "max_seconds")  # in TrainConfig before the Budget existed

ConfigError = UserError  # the name callers and tests know; one error type for every bad setting


@dataclass(frozen=True)
class ModelCost:
    """What one G + D pair costs to hold and to run, per image: counted from the widths, nothing built."""

    params: int  # weights of G and D together
    activations: int  # floats one image's forward pass through G and then D keeps for backward
    macs: int  # multiply-accumulates of that forward pass

    @classmethod
    def of(cls, *, num_classes: int, noise_dim: int, g_fc: int, g_ch: int, g_deconv: int,
           d_conv1: int, d_conv2: int, d_fc: int, **_: Any) -> ModelCost:
        """The cost of the networks in gancls.models for these widths (k4/s2 convolutions, 28x28 images)."""
        k, m7, m14, m28 = num_classes, 7 * 7, 14 * 14, 28 * 28
        g_in = k + noise_dim
        # (MACs, weights, activations) per layer; activations count a layer's output and its norm/act copies
        layers = [
            (g_in * g_fc, g_in * g_fc + 2 * g_fc, 3 * g_fc),  # G fc1 -> BN -> ReLU  [g_fc]
            (g_fc * m7 * g_ch, (g_fc + 2) * m7 * g_ch, 3 * m7 * g_ch),  # G fc2 -> BN -> ReLU  [7*7*g_ch]
            (m7 * g_ch * 16 * g_deconv, 16 * g_ch * g_deconv + 2 * g_deconv, 3 * m14 * g_deconv),  # G up1 [g_deconv,14,14]
            (m14 * g_deconv * 16, 16 * g_deconv + 1, 2 * m28),  # G up2 -> sigmoid  [1, 28, 28]
            (k * m28, (k + 1) * m28, 2 * m28),  # D label map -> leaky  [784]
            (m14 * 2 * 16 * d_conv1, 32 * d_conv1 + d_conv1, 2 * m28 + 2 * m14 * d_conv1),  # D conv1 (input [2,28,28])
            (m7 * d_conv1 * 16 * d_conv2, 16 * d_conv1 * d_conv2 + d_conv2, 2 * m7 * d_conv2),  # D conv2 [d_conv2,7,7]
            (m7 * d_conv2 * d_fc, (m7 * d_conv2 + 1) * d_fc, 2 * d_fc),  # D fc [d_fc]
            (d_fc, d_fc + 1, 1),  # D out
        ]
        return cls(params=sum(w for _, w, _ in layers), activations=sum(a for _, _, a in layers),
                   macs=sum(m for m, _, _ in layers))


@dataclass(frozen=True)
class ModelConfig:
    """Shapes of G and D. `arch="seed"` is the TF-1 textbook example, layer for layer."""

    arch: str = "fast"
    num_classes: int = 10
    noise_dim: int = 38  # z = concat(one_hot(y), noise): 48 dims in the seed
    g_fc: int = 1024  # G: fc width before the 7x7 map
    g_ch: int = 128  # G: channels of the 7x7 map
    g_deconv: int = 64  # G: channels after the first transposed conv (14x14)
    d_conv1: int = 64  # D: channels after the first conv (14x14)
    d_conv2: int = 128  # D: channels after the second conv (7x7)
    d_fc: int = 1024  # D: hidden fc width
    leak: float = 0.01  # the seed's leaky_relu slope
    # The seed's quirks, kept only by arch="seed" (see models.py for what each means).
    seed_fc_relu: bool = False  # slim.fully_connected adds a ReLU before the batch norm
    batch_stats_always: bool = False  # slim batch norm: never uses running statistics

    def __post_init__(self) -> None:
        if self.arch not in ARCHES:
            raise ConfigError(f"unknown arch {self.arch!r}: choose one of {', '.join(ARCHES)}")
        for name in ("num_classes", "noise_dim", "g_fc", "g_ch", "g_deconv", "d_conv1", "d_conv2", "d_fc"):
            v = getattr(self, name)
            if type(v) is not int or not 0 < v <= 2**16:  # layer widths: whole numbers, not 64.0
                raise ConfigError(f"model {name} must be a whole number from 1 to {2**16} (got {v!r})")
        if not (type(self.leak) in (int, float) and 0 <= self.leak < 1):
            raise ConfigError(f"model leak must be a number in [0, 1) (got {self.leak!r})")
        for name in ("seed_fc_relu", "batch_stats_always"):
            if type(getattr(self, name)) is not bool:
                raise ConfigError(f"model {name} must be true or false (got {getattr(self, name)!r})")
        cost = self.cost
        for what, got, limit in (("weights", cost.params, MAX_COST.params),
                                 ("activations per image", cost.activations, MAX_COST.activations),
                                 ("multiply-adds per image", cost.macs, MAX_COST.macs)):
            if got > limit:
                raise ConfigError(f"model too large to run here: {got:,} {what}, the limit is {limit:,} "
                                  f"(twice the seed preset's)")

    @property
    def cost(self) -> ModelCost:
        """What this G + D pair costs to hold and run (gancls.config.ModelCost)."""
        return ModelCost.of(**dataclasses.asdict(self))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        return _from_dict(cls, d)


# The most a model may cost: twice the largest preset (the seed's widths, ModelConfig's defaults) on each
# measure. Widths beyond that are no model this app trains or ships; a forged file asking for them is
# refused before anything is built, so Generate, Probe or training on it cannot exhaust the server's memory.
SEED_COST = ModelCost.of(**{f.name: f.default for f in dataclasses.fields(ModelConfig)})
MAX_COST = ModelCost(params=2 * SEED_COST.params, activations=2 * SEED_COST.activations, macs=2 * SEED_COST.macs)


@dataclass(frozen=True)
class TrainConfig:
    """How to train: objective, optimiser, and how often to report and save. Fixed for a run's life."""

    objective: str = "gan-cls"  # gan-cls | plain | seed (wrong labels from a second batch)
    loss: str = "lsgan"  # lsgan (the seed's) | bce (Reed et al.)
    batch_size: int = 64
    lr_d: float = 1e-4
    lr_g: float = 1e-3
    beta1: float = 0.9  # TF's AdamOptimizer defaults
    beta2: float = 0.999
    eps: float = 1e-8
    holdout: int = 0  # training images left out at the start (the seed held out 5,000)
    seed: int = 0
    metrics_every: int = 20  # steps between host reads of the metrics ...
    metrics_seconds: float = 0.5  # ... or this many seconds, whichever comes first
    sample_seconds: float = 1.0  # fixed-noise grid at most this often (0 = every metrics event)
    sample_cols: int = 8  # fixed-noise grid columns (one row per label)
    autosave_seconds: float = 60.0  # 0 = only at the end
    precision: str = "fp32"  # fp32 | bf16 (autocast: matmuls and convs in bfloat16, weights and Adam in fp32)
    ema_decay: float = 0.0  # sample from a moving average of G's weights (gancls.ema); 0 = the live G
    d_ema_decay: float = 0.0  # judge (probe, D's view, AUC) with a moving average of D's weights; 0 = the live D
    mode_seeking: float = 0.0  # weight of G's mode-seeking term (Mao et al. 2019, GANCLS.mode_seeking_loss); 0 = off
    mode_seeking_after: int = 0  # images seen after which mode_seeking_late replaces it; 0 = never
    mode_seeking_late: float = 0.0

    def __post_init__(self) -> None:
        validate.choice("objective", self.objective, OBJECTIVES)
        validate.choice("loss", self.loss, LOSSES)
        validate.choice("precision", self.precision, PRECISIONS)
        validate.whole("batch size", self.batch_size, 2, 8192)  # batch norm needs two images to normalise
        validate.number("D learning rate", self.lr_d, 0, 1, low_open=True)
        validate.number("G learning rate", self.lr_g, 0, 1, low_open=True)
        for name in ("beta1", "beta2"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1):
                raise ConfigError(f"{name} must be in [0, 1) (got {v!r})")
        validate.number("eps", self.eps, 0, 1, low_open=True)
        for name in ("ema_decay", "d_ema_decay"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1):
                raise ConfigError(f"{name} must be in [0, 1) (got {v!r}); 0 = no average")
        validate.number("mode_seeking", self.mode_seeking, 0, 100)
        validate.number("mode_seeking_late", self.mode_seeking_late, 0, 100)
        validate.whole("mode_seeking_after", self.mode_seeking_after, 0, 10**12)
        validate.whole("holdout", self.holdout, 0, 10**7)
        validate.seed("seed", self.seed)
        validate.whole("metrics_every", self.metrics_every, 1, 10**6)
        validate.whole("sample_cols", self.sample_cols, 1, 64)
        for name in ("metrics_seconds", "sample_seconds", "autosave_seconds"):
            validate.number(name, getattr(self, name), 0, 10**9)

    def mode_seeking_at(self, images_seen: int) -> float:
        """The mode-seeking weight for the step that starts after `images_seen` images."""
        late = self.mode_seeking_after and images_seen >= self.mode_seeking_after
        return self.mode_seeking_late if late else self.mode_seeking

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        # Checkpoints written before the Budget existed carry the budget in their train config.
        return _from_dict(cls, {k: v for k, v in d.items() if k not in LEGACY_BUDGET_KEYS})


@dataclass(frozen=True)
class Budget:
    """How long `Trainer.run` trains; None = no limit, and the first limit reached ends the run.

    `steps` and `epochs` count the model's whole training (resumes included); `seconds` counts the
    training time of this run, however many slices it is run in.
    """

    steps: int | None = None
    epochs: float | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.steps is not None:
            validate.whole("max steps", self.steps, 1, 10**9)
        if self.epochs is not None:
            validate.number("epochs", self.epochs, 0, 1000, low_open=True)
        if self.seconds is not None:
            validate.number("time budget (seconds)", self.seconds, 0, 7 * 24 * 3600, low_open=True)

    @property
    def unlimited(self) -> bool:
        return self.steps is None and self.epochs is None and self.seconds is None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Presets: the seed, a laptop-CPU default, and a very small one for tests and quick demos.
# fast's training settings (issue 15) were chosen by images seen to good digits, 3 seeds, in
# bench/sample_efficiency.py: batch 32, a faster D (2e-3) with a shorter second-moment memory
# (beta2 0.99), samples from an average of G's weights (decay 0.98, gancls.ema), and a light
# mode-seeking term (0.005: digits of one label stay more varied; 0.0075 and up slowed learning to read),
# four times stronger once G reads labels (after 25,600 images: digits sharpen without losing variety).
# D's average (decay 0.98) changes nothing in training: the D that is probed and evaluated reads labels
# better than the one that trains, which swings from step to step (mismatch AUC, same script).
MODEL_PRESETS: dict[str, ModelConfig] = {
    "seed": ModelConfig(arch="seed", seed_fc_relu=True, batch_stats_always=True),
    "fast": ModelConfig(arch="fast", g_fc=256, g_ch=64, g_deconv=32, d_conv1=32, d_conv2=64, d_fc=256, leak=0.2),
    "small": ModelConfig(arch="small", g_fc=64, g_ch=16, g_deconv=8, d_conv1=8, d_conv2=16, d_fc=64, leak=0.2),
}

# Training defaults that belong with each architecture (flags override them) ...
TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "seed": dict(batch_size=10, lr_d=1e-4, lr_g=1e-3, holdout=5000),
    "fast": dict(batch_size=32, lr_d=2e-3, lr_g=1e-3, beta1=0.5, beta2=0.99, ema_decay=0.98,
                 d_ema_decay=0.98, mode_seeking=0.005, mode_seeking_after=25_600, mode_seeking_late=0.02),
    "small": dict(batch_size=64, lr_d=4e-4, lr_g=1e-3, beta1=0.5),
}
# ... and how long each trains when nobody says: the seed's 3 epochs; fast's 1.5 epochs at batch 32
# are as many steps as its 3 epochs at batch 64 were, and 90,000 images, past where its judge
# label accuracy passes 99 % (bench/sample_efficiency.py).
DEFAULT_EPOCHS: dict[str, float] = {"seed": 3.0, "fast": 1.5, "small": 1.0}


def model_preset(arch: str) -> ModelConfig:
    """The ModelConfig of a named preset."""
    if arch not in MODEL_PRESETS:
        raise ConfigError(f"unknown arch {arch!r}: choose one of {', '.join(ARCHES)}")
    return MODEL_PRESETS[arch]


def train_preset(arch: str, **overrides: Any) -> TrainConfig:
    """A TrainConfig with the arch's defaults, then `overrides` (None values mean 'the preset's')."""
    unknown = set(overrides) - {f.name for f in dataclasses.fields(TrainConfig)}
    if unknown:
        raise ConfigError(f"unknown training settings: {', '.join(sorted(unknown))}")
    model_preset(arch)
    return TrainConfig(**{**TRAIN_PRESETS[arch], **{k: v for k, v in overrides.items() if v is not None}})


def constant_mode_seeking(weight: float | None) -> dict[str, Any]:
    """train_preset overrides for a mode-seeking weight given by hand: that weight for the whole run
    (the preset's later, stronger weight would surprise whoever asked for one); None = the preset's."""
    return {} if weight is None else {"mode_seeking": weight, "mode_seeking_after": 0}


def default_budget(arch: str) -> Budget:
    """The budget a run of this preset gets when none is given: its epochs."""
    return Budget(epochs=DEFAULT_EPOCHS[model_preset(arch).arch])


def _from_dict(cls: type, d: dict[str, Any]) -> Any:
    if not isinstance(d, dict):
        raise ConfigError(f"{cls.__name__} must be a mapping of settings (got {type(d).__name__})")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} fields: {', '.join(sorted(unknown))}")
    return cls(**d)


__all__ = [
    "ARCHES", "OBJECTIVES", "LOSSES", "PRECISIONS", "ConfigError", "ModelCost", "MAX_COST", "ModelConfig", "TrainConfig", "Budget",
    "MODEL_PRESETS", "TRAIN_PRESETS", "DEFAULT_EPOCHS", "model_preset", "train_preset", "default_budget",
]
