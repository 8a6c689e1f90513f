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

import dataclasses
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch

from ..config import OBJECTIVES, model_preset, train_preset, validate_train
from ..device import resolve_device
from ..judge import JudgeError, load_judge
from ..models import GANCLS
from ..train import Finished, Metrics, Samples, Started, Trainer
from ._common import TeachError, check_int, check_seed
from .evaluation import evaluate_model


@dataclass
class Evaluated:
    """The end-of-ablation evaluation of one arm (see evaluate_model for the keys)."""

    arm: str
    results: dict[str, Any]


def _objectives(objectives: Sequence[str] | str) -> list[str]:
    names = [s.strip() for s in objectives.split(",")] if isinstance(objectives, str) else list(objectives)
    if not names or len(set(names)) != len(names):
        raise TeachError("choose one or more different objectives to compare (e.g. gan-cls and plain)")
    for name in names:
        if name not in OBJECTIVES:
            raise TeachError(f"unknown objective {name!r}: choose from {', '.join(OBJECTIVES)}")
    return names


def _seconds(name: str, value: Any, low: float, high: float) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
        raise TeachError(f"{name} must be a number of seconds from {low:g} to {high:g} (got {value!r})")
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
            raise TeachError("give the budget as seconds or as steps per arm, not both")
        self.steps = check_int("steps per arm", steps, 1, 10**7) if steps is not None else None
        self.seconds = _seconds("time per arm", seconds if seconds is not None else 60.0, 0.01, 24 * 3600) \
            if self.steps is None else None
        self.slice_seconds = _seconds("slice length", slice_seconds, 0.01, 10.0)
        self.sample_seconds = _seconds("time between sample grids", sample_seconds, 0.0, 3600.0)
        self.seed = check_seed("seed", seed)
        self.evaluate = bool(evaluate)
        self.samples_per_label = check_int("samples per label", samples_per_label, 1, 1000)
        self.eval_digits = check_int("test digits for evaluation", eval_digits, 10, 10**6)
        self.data = data
        self.device = resolve_device(device)
        model_cfg = model_preset(arch)
        self.trainers: dict[str, Trainer] = {}
        for name in self.objectives:
            cfg = train_preset(arch, objective=name, seed=self.seed, loss=loss)
            # Only this budget counts: no epoch limit, a step limit when one is asked for.
            cfg = validate_train(dataclasses.replace(cfg, epochs=None, max_steps=self.steps, max_seconds=None))
            self.trainers[name] = Trainer(model_cfg, cfg, data, device=self.device)
        self.used_seconds = {name: 0.0 for name in self.objectives}
        self.finish_reason: dict[str, str | None] = {name: None for name in self.objectives}
        self.results: dict[str, dict[str, Any]] = {}
        self.judge, self.judge_error = judge, None
        if self.evaluate and judge is None:
            try:
                self.judge = load_judge()
            except JudgeError as err:  # still worth running: D's own metrics need no judge
                self.judge_error = str(err)
        self._started: set[str] = set()
        self._warm = False
        self._shown_at: dict[str, float] = {}  # arm time of the last Samples passed on
        self._pending: dict[str, tuple[int, torch.Tensor] | None] = {n: None for n in self.objectives}

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
        """One turn of one arm: trainer.run for at most one slice, its events tidied for the caller."""
        tr = self.trainers[name]
        budget = self.slice_seconds
        if self.seconds is not None:
            budget = min(budget, max(self.seconds - self.used_seconds[name], 0.0))
        it = tr.run(stop=stopped, max_seconds=budget)
        try:
            while True:
                t0 = time.perf_counter()
                try:
                    event = next(it)
                except StopIteration:
                    return
                finally:
                    self.used_seconds[name] += time.perf_counter() - t0
                yield from self._tidy(name, tr, event)
        finally:
            it.close()

    def _tidy(self, name: str, tr: Trainer, event: Any) -> Iterator[tuple[str, Any]]:
        """Pass on what a viewer of the whole ablation needs; drop the per-slice noise."""
        if isinstance(event, Started):
            if name not in self._started:
                self._started.add(name)
                yield name, dataclasses.replace(event, total_steps=self.steps)
        elif isinstance(event, Metrics):
            # The engine reports time and progress of this slice; report them for the whole arm.
            used = self.used_seconds[name]
            progress = min(1.0, used / self.seconds if self.seconds else event.step / (self.steps or 1))
            if tr.history and tr.history[-1].get("step") == event.step:
                tr.history[-1].update(elapsed=used, progress=progress)
            yield name, dataclasses.replace(event, elapsed=used, progress=progress)
        elif isinstance(event, Samples):
            yield from self._thin_samples(name, tr, event)
        elif isinstance(event, Finished):
            done = event.reason != "time" or (self.seconds is not None and self.used_seconds[name] >= self.seconds)
            if done:
                self.finish_reason[name] = event.reason
                pending = self._pending[name]
                if pending is not None:  # the last grid is the final state: always show it
                    self._pending[name] = None
                    yield name, Samples(pending[0], pending[1], tr.cfg.sample_cols)
                yield name, event
        else:
            yield name, event

    def _thin_samples(self, name: str, tr: Trainer, event: Samples) -> Iterator[tuple[str, Any]]:
        # Every slice ends with a grid; keep one per `sample_seconds` of arm time (in the
        # trainer's samples_history too), but hold back the newest so the next slice need not redraw it.
        latest = tr.samples_history[-1]
        previous = self._pending[name]
        if previous is not None:
            tr.samples_history[:] = [s for s in tr.samples_history if s is not previous]
        used = self.used_seconds[name]
        if name not in self._shown_at or used - self._shown_at[name] >= self.sample_seconds:
            self._shown_at[name] = used
            self._pending[name] = None
            yield name, event
        else:
            self._pending[name] = latest

    # ------------------------------------------------------------- results
    def evaluate_arm(self, name: str) -> dict[str, Any]:
        """Evaluate one arm's model now (judge metrics, mismatch AUC, D as classifier, match matrix)."""
        tr = self.trainers[name]
        res = evaluate_model(tr.model, self.data, judge=self.judge, samples_per_label=self.samples_per_label,
                             eval_digits=self.eval_digits, seed=self.seed)
        if self.judge is None and self.judge_error:
            res["judge_error"] = self.judge_error
        return {"objective": name, "steps": tr.step_count, "train_seconds": round(self.used_seconds[name], 3),
                "images_seen": tr.images_seen, "finish_reason": self.finish_reason[name], **res}
