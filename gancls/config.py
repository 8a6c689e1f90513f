"""Typed settings for the networks and for training, saved with every checkpoint."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

ARCHES = ("seed", "fast", "small")
OBJECTIVES = ("gan-cls", "plain", "seed")
LOSSES = ("lsgan", "bce")
PRECISIONS = ("fp32", "bf16")


class ConfigError(ValueError):
    """A setting is out of range or of the wrong kind."""


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

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        return _from_dict(cls, d)


# Presets: the seed, a laptop-CPU default, and a very small one for tests and quick demos.
MODEL_PRESETS: dict[str, ModelConfig] = {
    "seed": ModelConfig(arch="seed", seed_fc_relu=True, batch_stats_always=True),
    "fast": ModelConfig(arch="fast", g_fc=256, g_ch=64, g_deconv=32, d_conv1=32, d_conv2=64, d_fc=256, leak=0.2),
    "small": ModelConfig(arch="small", g_fc=64, g_ch=16, g_deconv=8, d_conv1=8, d_conv2=16, d_fc=64, leak=0.2),
}


@dataclass(frozen=True)
class TrainConfig:
    """How to train: objective, optimiser, budget, and how often to report and save."""

    objective: str = "gan-cls"  # gan-cls | plain | seed (wrong labels from a second batch)
    loss: str = "lsgan"  # lsgan (the seed's) | bce (Reed et al.)
    batch_size: int = 64
    lr_d: float = 1e-4
    lr_g: float = 1e-3
    beta1: float = 0.9  # TF's AdamOptimizer defaults
    beta2: float = 0.999
    eps: float = 1e-8
    epochs: float | None = 3.0
    max_steps: int | None = None
    max_seconds: float | None = None
    holdout: int = 0  # training images left out at the start (the seed held out 5,000)
    seed: int = 0
    metrics_every: int = 20  # steps between host reads of the metrics ...
    metrics_seconds: float = 0.5  # ... or this many seconds, whichever comes first
    sample_seconds: float = 1.0  # fixed-noise grid at most this often (0 = every metrics event)
    sample_cols: int = 8  # fixed-noise grid columns (one row per label)
    autosave_seconds: float = 60.0  # 0 = only at the end
    precision: str = "fp32"  # fp32 | bf16 (autocast: matmuls and convs in bfloat16, weights and Adam in fp32)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        return _from_dict(cls, d)


# Training defaults that belong with each architecture (flags override them).
TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "seed": dict(batch_size=10, lr_d=1e-4, lr_g=1e-3, epochs=3.0, holdout=5000),
    "fast": dict(batch_size=64, lr_d=4e-4, lr_g=1e-3, beta1=0.5, epochs=3.0),
    "small": dict(batch_size=64, lr_d=4e-4, lr_g=1e-3, beta1=0.5, epochs=1.0),
}


def model_preset(arch: str) -> ModelConfig:
    """The ModelConfig of a named preset."""
    if arch not in MODEL_PRESETS:
        raise ConfigError(f"unknown arch {arch!r}: choose one of {', '.join(ARCHES)}")
    return MODEL_PRESETS[arch]


def train_preset(arch: str, **overrides: Any) -> TrainConfig:
    """A TrainConfig with the arch's defaults, then `overrides` (None values are ignored)."""
    model_preset(arch)
    values = {**TRAIN_PRESETS[arch], **{k: v for k, v in overrides.items() if v is not None}}
    return validate_train(TrainConfig(**values))


def _positive(name: str, value: Any, *, integer: bool, upper: float) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and integer:
        ok = float(value).is_integer()
    if not ok or not (0 < value <= upper):
        kind = "a whole number" if integer else "a number"
        raise ConfigError(f"{name} must be {kind} greater than 0 and at most {upper:g} (got {value!r})")


def validate_model(cfg: ModelConfig) -> ModelConfig:
    """Check the network settings (e.g. read from a checkpoint); raise ConfigError naming the first bad one."""
    model_preset(cfg.arch)
    for name in ("num_classes", "noise_dim", "g_fc", "g_ch", "g_deconv", "d_conv1", "d_conv2", "d_fc"):
        v = getattr(cfg, name)
        if type(v) is not int or not 0 < v <= 2**16:  # layer widths: whole numbers, not 64.0
            raise ConfigError(f"model {name} must be a whole number from 1 to {2**16} (got {v!r})")
    if not (type(cfg.leak) in (int, float) and 0 <= cfg.leak < 1):
        raise ConfigError(f"model leak must be a number in [0, 1) (got {cfg.leak!r})")
    for name in ("seed_fc_relu", "batch_stats_always"):
        if type(getattr(cfg, name)) is not bool:
            raise ConfigError(f"model {name} must be true or false (got {getattr(cfg, name)!r})")
    return cfg


def validate_train(cfg: TrainConfig) -> TrainConfig:
    """Check every training setting; raise ConfigError naming the first bad one."""
    if cfg.objective not in OBJECTIVES:
        raise ConfigError(f"objective must be one of {', '.join(OBJECTIVES)} (got {cfg.objective!r})")
    if cfg.loss not in LOSSES:
        raise ConfigError(f"loss must be one of {', '.join(LOSSES)} (got {cfg.loss!r})")
    if cfg.precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)} (got {cfg.precision!r})")
    _positive("batch size", cfg.batch_size, integer=True, upper=8192)
    _positive("D learning rate", cfg.lr_d, integer=False, upper=1.0)
    _positive("G learning rate", cfg.lr_g, integer=False, upper=1.0)
    for name, beta in (("beta1", cfg.beta1), ("beta2", cfg.beta2)):
        if not (isinstance(beta, (int, float)) and 0 <= beta < 1):
            raise ConfigError(f"{name} must be in [0, 1) (got {beta!r})")
    _positive("eps", cfg.eps, integer=False, upper=1.0)
    if cfg.epochs is not None:
        _positive("epochs", cfg.epochs, integer=False, upper=1000)
    if cfg.max_steps is not None:
        _positive("max steps", cfg.max_steps, integer=True, upper=10**9)
    if cfg.max_seconds is not None:
        _positive("time budget (seconds)", cfg.max_seconds, integer=False, upper=7 * 24 * 3600)
    if not (isinstance(cfg.seed, int) and not isinstance(cfg.seed, bool) and 0 <= cfg.seed < 2**63):
        raise ConfigError(f"seed must be a whole number from 0 to 2**63-1 (got {cfg.seed!r})")
    if not (isinstance(cfg.holdout, int) and cfg.holdout >= 0):
        raise ConfigError(f"holdout must be a whole number >= 0 (got {cfg.holdout!r})")
    _positive("metrics_every", cfg.metrics_every, integer=True, upper=10**6)
    _positive("sample_cols", cfg.sample_cols, integer=True, upper=64)
    for name in ("metrics_seconds", "sample_seconds", "autosave_seconds"):
        v = getattr(cfg, name)
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise ConfigError(f"{name} must be a number >= 0 (got {v!r})")
    return cfg


def _from_dict(cls: type, d: dict[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} fields: {', '.join(sorted(unknown))}")
    return cls(**d)


__all__ = [
    "ARCHES", "OBJECTIVES", "LOSSES", "PRECISIONS", "ConfigError", "ModelConfig", "TrainConfig",
    "MODEL_PRESETS", "TRAIN_PRESETS", "model_preset", "train_preset", "validate_model", "validate_train",
]
