"""Turn the Train tab's fields into engine configs, with one clear message per bad value."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from gancls.config import ConfigError, ModelConfig, TrainConfig, model_preset, train_preset, validate_train

MAX_SECONDS_PER_RUN = 3600.0  # one Train/Resume click may hold the shared trainer queue this long at most


def _optional(name: str, value: Any) -> float | None:
    """A budget field: empty or 0 means 'no limit'."""
    if value is None or value == "" or value == 0:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name} must be a number >= 0, where 0 means no limit (got {value!r})")
    return value


def _required(name: str, value: Any) -> Any:
    if value is None or value == "":
        raise ConfigError(f"{name} is empty: enter a value")
    return value


def _whole(name: str, value: Any) -> int:
    """An integer field that may arrive as a float (gr.Number, JSON)."""
    value = _required(name, value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{name} must be a whole number (got {value!r})")
    return value


def budget(seconds: Any, epochs: Any, max_steps: Any) -> tuple[float | None, float | None, int | None]:
    """(max_seconds, epochs, max_steps) from the budget fields; at least one must be set."""
    seconds, epochs = _optional("Time budget", seconds), _optional("Epochs", epochs)
    steps = _optional("Max steps", max_steps)
    if steps is not None:
        steps = _whole("Max steps", steps)
    if seconds is None and epochs is None and steps is None:
        raise ConfigError("no budget: set a time budget, a number of epochs or a step limit so training can end")
    if seconds is not None and seconds > MAX_SECONDS_PER_RUN:
        raise ConfigError(f"Time budget must be at most {MAX_SECONDS_PER_RUN:g} s per run on this server "
                          f"(got {seconds:g}); press Resume to train longer")
    return seconds, epochs, steps


def train_configs(*, arch: Any, objective: Any, loss: Any, batch_size: Any, lr_d: Any, lr_g: Any, seed: Any,
                  seconds: Any, epochs: Any, max_steps: Any) -> tuple[ModelConfig, TrainConfig]:
    """Validated (ModelConfig, TrainConfig) for a new run; raises ConfigError naming the bad field."""
    max_seconds, epochs, steps = budget(seconds, epochs, max_steps)
    model_cfg = model_preset(_required("Model size", arch))
    cfg = train_preset(
        arch, objective=_required("Objective", objective), loss=_required("Loss", loss),
        batch_size=_whole("Batch size", batch_size), lr_d=_required("D learning rate", lr_d),
        lr_g=_required("G learning rate", lr_g), seed=_whole("Seed", seed),
        max_seconds=max_seconds, max_steps=steps,
    )
    # An empty epochs field means "no epoch limit", not the preset's default.
    return model_cfg, validate_train(dataclasses.replace(cfg, epochs=epochs))


def resume_config(cfg: TrainConfig, seconds: Any, epochs: Any, max_steps: Any) -> tuple[TrainConfig, float | None]:
    """The run's config with a new budget (epochs and steps count over the whole run) and this call's seconds."""
    max_seconds, epochs, steps = budget(seconds, epochs, max_steps)
    new = dataclasses.replace(cfg, epochs=epochs, max_steps=steps, max_seconds=max_seconds)
    return validate_train(new), max_seconds


def preset_fields(arch: str) -> dict[str, Any]:
    """The batch size and learning rates an arch trains with by default (to refill the form)."""
    cfg = train_preset(arch)
    return {"batch_size": cfg.batch_size, "lr_d": cfg.lr_d, "lr_g": cfg.lr_g}
