"""A real recorded training for the replay tests: a short run, its grids, curves and judge figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gancls.config import Budget, model_preset, train_preset
from gancls.replay import save_replay
from gancls.train import Trainer


def record_replay(out: Path, data: Any, *, arch: str = "small", steps: int = 120, eval_every: int = 40,
                  judge: Any = None, eval_per_label: int = 10) -> Trainer:
    """Train `arch` for `steps` steps into `out` (a checkpoint) and write `out/replay.npz` beside it.

    A grid at every metrics read; judge figures (gancls.report.evaluate_model, small) every `eval_every` steps.
    """
    from gancls.report import evaluate_model

    cfg = train_preset(arch, autosave_seconds=0, sample_seconds=0, metrics_every=10, metrics_seconds=1e9)
    trainer = Trainer(model_preset(arch), cfg, data, device="cpu", run_dir=out)
    evals = []
    while trainer.step_count < steps:
        for _ in trainer.run(Budget(steps=min(steps, trainer.step_count + eval_every))):
            pass
        figures = evaluate_model(trainer.model, data, judge, per_label=eval_per_label, eval_digits=100, seed=1)
        evals.append({"step": trainer.step_count, "label_accuracy": figures["label_accuracy"],
                      "mismatch_auc": figures["mismatch_auc"]})
    save_replay(out, grids=trainer.samples_history, cols=cfg.sample_cols, metrics=trainer.history, evals=evals,
                meta={"how": f"demo/harness/replay.py: {arch}, {steps} steps"})
    return trainer
