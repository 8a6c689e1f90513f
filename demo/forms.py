"""The Train tab's form: its fields read into a budget and the run's settings, with UserError naming a bad field."""

from __future__ import annotations

from typing import Any

from gancls import validate
from gancls.config import Budget, ModelConfig, TrainConfig, model_preset, train_preset
from gancls.errors import UserError


def read_budget(seconds: Any, epochs: Any, max_steps: Any) -> Budget:
    """The budget fields (empty or 0 = no limit); at least one must be set. The server's cap per click
    is applied by `capped_budget` (`--max-run-seconds`)."""
    budget = Budget(seconds=validate.limit("Time budget", seconds, 7 * 24 * 3600),
                    epochs=validate.limit("Epochs", epochs, 1000),
                    steps=validate.limit("Max steps", max_steps, 10**9, integer=True))
    if budget.unlimited:
        raise UserError("no budget: set a time budget, a number of epochs or a step limit so training can end")
    return budget


def capped_budget(seconds: Any, epochs: Any, max_steps: Any, cap: float) -> tuple[Budget, str]:
    """The budget fields within this server's time per click `cap` (a budget in steps or epochs gets it too),
    and a note saying so when the cap is what limits the run's time."""
    budget = read_budget(seconds, epochs, max_steps)
    if budget.seconds is not None and budget.seconds > cap:
        raise UserError(f"Time budget must be at most {cap:g} s per run on this server (got {budget.seconds:g}); "
                        "press Resume to train longer")
    if budget.seconds is not None:
        return budget, ""
    note = (f"This server caps each run at {cap:g} s (--max-run-seconds): the run stops then at the latest; "
            "press Resume to go on.")
    return Budget(seconds=cap, epochs=budget.epochs, steps=budget.steps), note


def read_settings(*, arch: Any, objective: Any, loss: Any, batch_size: Any, lr_d: Any, lr_g: Any,
                  seed: Any, max_batch: int = 8192, **intervals: Any) -> tuple[ModelConfig, TrainConfig]:
    """(ModelConfig, TrainConfig) for a new run from the form; UserError names the bad field.

    `max_batch`: this server's limit (demo/limits.py); `intervals`: e.g. the app's autosave_seconds.
    """
    for name, value in (("Model size", arch), ("Objective", objective), ("Loss", loss), ("D learning rate", lr_d),
                        ("G learning rate", lr_g)):
        if value is None or value == "":
            raise UserError(f"{name} is empty: enter a value")
    return model_preset(arch), train_preset(
        arch, objective=objective, loss=loss, batch_size=validate.whole("Batch size", batch_size, 2, max_batch),
        lr_d=lr_d, lr_g=lr_g, seed=validate.seed("Seed", seed), **intervals)


def wait_text(seconds: float) -> str:
    """'45 s' or '3 min' for an estimated wait."""
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
