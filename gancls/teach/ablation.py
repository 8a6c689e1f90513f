"""Ablation: train objectives side by side (same seed, same budget), interleaved in short slices.

    ab = Ablation(data, ["gan-cls", "plain"], seconds=60, seed=0)
    for arm, event in ab.run(stop_event):      # engine events, tagged with their arm, then
        ...                                     # one Evaluated per arm at the end
    ab.results["plain"]["mismatch_auc"]

Fairness: every arm starts from the same weights (same seed), sees the same data order and
fixed noise, and gets the same budget. The time budget counts the wall time spent inside the
arm's own training code (steps, metric reads, its sample grid), not the time the consumer takes
to draw events, and the arms take turns slice by slice, so both see the same machine load.
Each arm stops at its budget to within one step; a stop request ends every arm within one slice.
A step budget (`steps=`) gives exactly equal steps instead.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch

from .. import validate
from ..config import OBJECTIVES, Budget, model_preset, train_preset
from ..device import resolve_device
from ..errors import UserError
from ..judge import JudgeError, load_judge
from ..models import GANCLS
from ..report import evaluate_model
from ..train import Finished, Paused, Trainer


@dataclass
class Evaluated:
    """The end-of-ablation evaluation of one arm (see evaluate_model for the keys)."""

    arm: str
    results: dict[str, Any]


def _objectives(objectives: Sequence[str] | str) -> list[str]:
    names = [s.strip() for s in objectives.split(",")] if isinstance(objectives, str) else list(objectives)
    if not names or len(set(names)) != len(names):
        raise UserError("choose one or more different objectives to compare (e.g. gan-cls and plain)")
    for name in names:
        if name not in OBJECTIVES:
            raise UserError(f"unknown objective {name!r}: choose from {', '.join(OBJECTIVES)}")
    return names


def _seconds(name: str, value: Any, low: float, high: float) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
        raise UserError(f"{name} must be a number of seconds from {low:g} to {high:g} (got {value!r})")
    return float(value)


class Ablation:
    """Trains one Trainer per objective with the same preset, seed and budget, taking turns."""

    def __init__(self, data: Any, objectives: Sequence[str] | str = ("gan-cls", "plain"), *,
                 arch: str = "fast", seconds: float | None = None, steps: int | None = None, seed: int = 0,
                 slice_seconds: float = 0.25, sample_seconds: float = 1.0, loss: str | None = None,
                 device: str | torch.device = "auto", evaluate: bool = True, samples_per_label: int = 100,
                 eval_digits: int = 2000, judge: Any = None):
        self.objectives = _objectives(objectives)
        if seconds is not None and steps is not None:
            raise UserError("give the budget as seconds or as steps per arm, not both")
        self.steps = validate.whole("steps per arm", steps, 1, 10**7) if steps is not None else None
        self.seconds = _seconds("time per arm", seconds if seconds is not None else 60.0, 0.01, 24 * 3600) \
            if self.steps is None else None
        self.slice_seconds = _seconds("slice length", slice_seconds, 0.01, 10.0)
        self.sample_seconds = _seconds("time between sample grids", sample_seconds, 0.0, 3600.0)
        self.seed = validate.seed("seed", seed)
        self.evaluate = bool(evaluate)
        self.samples_per_label = validate.whole("samples per label", samples_per_label, 1, 1000)
        self.eval_digits = validate.whole("test digits for evaluation", eval_digits, 10, 10**6)
        self.data = data
        self.device = resolve_device(device)
        model_cfg = model_preset(arch)
        self.trainers: dict[str, Trainer] = {}
        for name in self.objectives:
            cfg = train_preset(arch, objective=name, seed=self.seed, loss=loss, sample_seconds=sample_seconds)
            self.trainers[name] = Trainer(model_cfg, cfg, data, device=self.device)
        self.budget = Budget(steps=self.steps, seconds=self.seconds)  # per arm, over the arm's whole run
        self.finish_reason: dict[str, str | None] = {name: None for name in self.objectives}
        self.results: dict[str, dict[str, Any]] = {}
        self.judge, self.judge_error = judge, None
        if self.evaluate and judge is None:
            try:
                self.judge = load_judge()
            except JudgeError as err:  # still worth running: D's own metrics need no judge
                self.judge_error = str(err)
        self._warm = False

    # ------------------------------------------------------------------ run
    def run(self, stop: threading.Event | Callable[[], bool] | None = None) -> Iterator[tuple[str, Any]]:
        """Yield (arm, event) while the arms take turns; then (arm, Evaluated) per arm if evaluating."""
        stopped = (stop.is_set if isinstance(stop, threading.Event) else stop) or (lambda: False)
        active = [n for n in self.objectives if self.finish_reason[n] is None]
        if active and not self._warm:
            self._warm_up()
        while active and not stopped():
            for name in list(active):
                if stopped():
                    break
                yield from self._slice(name, stopped)
                if self.finish_reason[name] is not None:
                    active.remove(name)
        for name in active:  # stopped: each unfinished arm ends (no steps) with its own Finished
            yield from self._slice(name, lambda: True)
        if self.evaluate:
            for name in self.objectives:
                self.results[name] = self.evaluate_arm(name)
                yield name, Evaluated(name, self.results[name])

    def _warm_up(self) -> None:
        """A few throwaway D and G passes at training shapes, untimed, so the first arm does not pay
        torch's one-time start-up costs (kernel selection, allocator growth: seconds on a CPU)."""
        tr = self.trainers[self.objectives[0]]
        b, k = tr.cfg.batch_size, tr.model_cfg.num_classes
        with torch.random.fork_rng(devices=[]):  # leaves the global RNG as it was
            torch.manual_seed(0)
            scratch = GANCLS(tr.model_cfg).to(self.device)
            y = torch.randint(k, (b,), device=self.device)
            x = torch.rand(3 * b, 1, 28, 28, device=self.device)
            for _ in range(3):
                fake = scratch.G(scratch.noise(b, device=self.device), y)  # [B, 1, 28, 28]
                loss = scratch.D(torch.cat([x[:2 * b], fake]), torch.cat([y, y, y])).sum()
                loss.backward()
        self._warm = True

    def _slice(self, name: str, stopped: Callable[[], bool]) -> Iterator[tuple[str, Any]]:
        """One turn of one arm: at most `slice_seconds` of its run (the engine keeps the arm's clock)."""
        tr = self.trainers[name]
        for event in tr.run(self.budget, stopped, slice_seconds=self.slice_seconds):
            if isinstance(event, Paused):
                continue
            if isinstance(event, Finished):
                self.finish_reason[name] = event.reason
            yield name, event

    @property
    def used_seconds(self) -> dict[str, float]:
        """Seconds of training each arm has had."""
        return {name: tr.train_seconds for name, tr in self.trainers.items()}

    # ------------------------------------------------------------- results
    def evaluate_arm(self, name: str) -> dict[str, Any]:
        """Evaluate one arm's model now (judge metrics, mismatch AUC, D as classifier, match matrix)."""
        tr = self.trainers[name]
        res = evaluate_model(tr.model, self.data, judge=self.judge, per_label=self.samples_per_label,
                             eval_digits=self.eval_digits, seed=self.seed)
        if self.judge is None and self.judge_error:
            res["judge_error"] = self.judge_error
        return {"objective": name, "steps": tr.step_count, "train_seconds": round(tr.train_seconds, 3),
                "images_seen": tr.images_seen, "finish_reason": self.finish_reason[name], **res}


TABLE_COLUMNS = ("objective", "steps", "seconds", "label accuracy", "mismatch AUC", "D-as-classifier acc.",
                 "FD", "diversity", "diag - off-diag")


def results_table(results: dict[str, dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """(headers, rows) of the ablation's headline numbers, one row per arm, for printing or a table view."""
    def num(v: Any, digits: int = 3) -> Any:
        return None if v is None else round(float(v), digits)

    rows = [[r.get("objective", arm), r.get("steps"), num(r.get("train_seconds"), 1), num(r.get("label_accuracy")),
             num(r.get("mismatch_auc")), num(r.get("d_classifier_accuracy")), num(r.get("frechet_distance"), 2),
             num(r.get("diversity")), num(r.get("gap"))] for arm, r in results.items()]
    return list(TABLE_COLUMNS), rows
