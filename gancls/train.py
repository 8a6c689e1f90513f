"""The training engine: a per-step API and an iterator of events that a CLI prints and a UI draws.

    trainer = Trainer(model_preset("fast"), train_preset("fast"), data, run_dir="run")
    for event in trainer.run(Budget(seconds=60)):
        print(event)            # Started, Metrics, Samples, CheckpointSaved, Finished

A *run* goes from Started to Finished. It may be driven in slices (`run(budget, slice_seconds=…)`
ends a slice with Paused; the next `run()` call goes on where it stopped), so ablations and GPU
chunks need not touch the trainer's state. Only this module writes a Trainer's fields.

The engine never prints. One iteration = one D step on the three stacked batches, then one G
step on fresh noise (as the seed's two sess.run calls did).
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from . import __version__
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import Budget, ModelConfig, TrainConfig
from .device import describe_device, fast_bf16, resolve_device
from .ema import EMA
from .errors import UserError
from .models import GANCLS, wrong_labels
from .sampling import to_uint8

INTERVAL_FIELDS = ("autosave_seconds", "metrics_every", "metrics_seconds", "sample_seconds")  # may change on resume
MAX_HISTORY = 10_000  # metric entries kept; beyond, older ones are thinned (curves and CSV still span the run)
MAX_GRIDS = 160  # fixed-noise grids kept (~63 KB each); beyond, older ones are thinned (the GIF still spans the run)
BN_BATCHES, BN_BATCH = 4, 256  # fixed (noise, label) batches that re-estimate the averaged G's batch-norm statistics
SYNC_SHARE = 0.1  # live grids re-estimate them only while that costs at most this share of the time

StopFlag = threading.Event | Callable[[], bool] | None


@dataclass
class Started:
    step: int
    total_steps: int | None
    device: str
    data: str
    resumed: bool
    message: str = ""


@dataclass
class Metrics:
    step: int
    epoch: float
    images_seen: int
    loss_d: float
    loss_g: float
    d_real: float  # mean D(real image, right label)
    d_fake: float  # mean D(generated image, right label)
    d_wrong: float  # mean D(real image, wrong label)
    images_per_s: float
    elapsed: float  # seconds of training in this run (all its slices)
    progress: float  # 0..1 of the budget, as far as one is set

    def to_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


@dataclass
class Samples:
    step: int
    images: torch.Tensor  # uint8 [10 * cols, 28, 28], one row of `cols` per label 0..9
    cols: int


@dataclass
class CheckpointSaved:
    step: int
    path: Path


@dataclass
class Paused:
    """A slice of the run ended; call `run()` again to go on (the run's budget and clock carry over)."""

    step: int
    elapsed: float


@dataclass
class Finished:
    step: int
    reason: str  # "steps" | "epochs" | "time" | "stopped" | "diverged"
    message: str
    path: Path | None = None


Event = Started | Metrics | Samples | CheckpointSaved | Paused | Finished


class IndexStream:
    """Shuffled passes over range(n), batch by batch, with the seed's next_batch semantics:
    a batch that crosses the end of a pass takes the rest of it and the start of a new shuffle."""

    def __init__(self, n: int, generator: torch.Generator, device: torch.device):
        self.n, self.generator, self.device = n, generator, device
        self.perm = self._shuffle()
        self.pos = 0

    def _shuffle(self) -> torch.Tensor:
        return torch.randperm(self.n, generator=self.generator).to(self.device)

    def next(self, b: int) -> torch.Tensor:
        if self.pos + b <= self.n:
            self.pos += b
            return self.perm[self.pos - b:self.pos]
        rest = self.perm[self.pos:]
        self.perm = self._shuffle()
        self.pos = b - len(rest)
        if self.pos > self.n:  # a batch larger than the data set: sample with repeats
            extra = torch.randint(self.n, (self.pos - self.n,), generator=self.generator).to(self.device)
            self.pos = self.n
            return torch.cat([rest, self.perm, extra])
        return torch.cat([rest, self.perm[:self.pos]])


class _Clock:
    """Seconds of training: runs while the engine works, stands still while a consumer holds an event."""

    def __init__(self, seconds: float = 0.0):
        self._base, self._since = seconds, None

    def start(self) -> None:
        if self._since is None:
            self._since = time.perf_counter()

    def stop(self) -> None:
        if self._since is not None:
            self._base += time.perf_counter() - self._since
            self._since = None

    @property
    def seconds(self) -> float:
        return self._base + (time.perf_counter() - self._since if self._since is not None else 0.0)


@dataclass
class _Run:
    """One run's budget and clocks (run-clock seconds), kept between slices."""

    budget: Budget
    clock: _Clock = field(default_factory=_Clock)
    last_sample: float = 0.0
    last_save: float = 0.0
    window_sums: torch.Tensor | None = None  # metric sums kept on the device between host reads
    window_steps: int = 0
    window_t0: float = 0.0

    def add(self, values: torch.Tensor) -> None:
        self.window_sums = values if self.window_sums is None else self.window_sums + values
        self.window_steps += 1

    def clear_window(self) -> None:
        self.window_sums, self.window_steps, self.window_t0 = None, 0, self.clock.seconds

    def to_dict(self) -> dict[str, Any]:
        return {"budget": self.budget.to_dict(), "seconds": self.clock.seconds,
                "last_sample": self.last_sample, "last_save": self.last_save}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _Run:
        run = cls(Budget(**d["budget"]), _Clock(d["seconds"]), d["last_sample"], d["last_save"])
        run.window_t0 = d["seconds"]
        return run


def _thinned(items: list, cap: int) -> list:
    """`items` with every other old entry dropped once it holds more than `cap` (first and last kept)."""
    return items if len(items) <= cap else items[:-1][::2] + items[-1:]


def _stop_flag(stop: StopFlag) -> Callable[[], bool]:
    return (stop.is_set if isinstance(stop, threading.Event) else stop) or (lambda: False)


class Trainer:
    """Owns the model, optimisers, data on the device, RNG streams, the run's budget and the run directory.

    `model` is the model to sample from and to save. With `ema_decay` > 0 its G is an exponential
    moving average of the G that trains (gancls.ema; the trained G is private and saved in the
    training state, so resuming is exact), and its batch-norm statistics are re-estimated for the
    averaged weights from fixed noise before each save, `samples()` call and the end of each run
    (`sync_model()` does it on demand), and before live grids while that costs under SYNC_SHARE
    of the time. Likewise with `d_ema_decay` > 0 its D is an average of the D that trains (it has
    no batch norm): what Probe, D's view and the evaluation ask; the training curves show the live D.
    """

    def __init__(self, model_cfg: ModelConfig, train_cfg: TrainConfig, data: Any, *,
                 device: str | torch.device = "auto", run_dir: str | os.PathLike | None = None,
                 model: GANCLS | None = None):
        self.model_cfg, self.cfg = model_cfg, train_cfg
        self.device = resolve_device(device)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.data_description = getattr(data, "description", "custom data")
        if model is None:
            with torch.random.fork_rng(devices=[]):  # init from the seed, leaving the global RNG alone
                torch.manual_seed(train_cfg.seed)
                model = GANCLS(model_cfg)
        self.model = model.to(self.device).train()
        # The G that trains; with an average, model.G becomes the averaged copy (resumed from model.G,
        # the live weights then come from the training state).
        self._live_g, self._live_d = self.model.G, self.model.D
        self.ema: EMA | None = None
        if train_cfg.ema_decay:
            self.ema = EMA(self._live_g, train_cfg.ema_decay, buffers=False)
            self.model.G = self.ema.model
        self.d_ema: EMA | None = None
        if train_cfg.d_ema_decay:
            self.d_ema = EMA(self._live_d, train_cfg.d_ema_decay)
            self.model.D = self.d_ema.model
        self._net = GANCLS(model_cfg, self._live_g, self._live_d)  # the pair that trains (shares, no copies)
        self._bn_step: int | None = None  # the step whose averaged weights the BN statistics describe
        self._sync_seconds, self._synced_at = 0.0, 0.0  # cost and end (perf_counter) of the last re-estimate
        # The whole training set lives on the device as uint8; batches are gathered by index.
        self.images = data.train_images[train_cfg.holdout:].to(self.device)  # uint8 [N, 28, 28]
        self.labels = data.train_labels[train_cfg.holdout:].to(self.device)  # int64 [N]
        if len(self.images) < 1:
            raise UserError(f"no training images left after holding out {train_cfg.holdout}")
        c = self.cfg
        # The fused kernel updates each tensor in one pass; the default makes 25 MB temporaries per
        # big layer per step, which dominated arch="seed" at batch 10.
        adam = dict(betas=(c.beta1, c.beta2), eps=c.eps, fused=self.device.type in ("cpu", "cuda"))
        self.opt_d = torch.optim.Adam(self._live_d.parameters(), lr=c.lr_d, **adam)
        self.opt_g = torch.optim.Adam(self._live_g.parameters(), lr=c.lr_g, **adam)
        self.data_gen = torch.Generator().manual_seed(c.seed + 1)  # shuffles (CPU)
        self.noise_gen = torch.Generator(device=self.device).manual_seed(c.seed + 2)  # z and wrong labels
        self.stream = IndexStream(len(self.images), self.data_gen, self.device)
        k, cols = model_cfg.num_classes, c.sample_cols
        self.fixed_noise = model.noise(k * cols, torch.Generator().manual_seed(c.seed + 3))  # [k*cols, noise_dim]
        self.fixed_labels = torch.arange(k).repeat_interleave(cols)  # row r = label r
        self.step_count = 0
        self.images_seen = 0
        self._seconds_before = 0.0  # training seconds of earlier runs (resumes included)
        self.last_metrics: dict[str, float] = {}
        self.history: list[dict[str, float]] = []  # Metrics events, for curves and CSV (thinned past MAX_HISTORY)
        self.samples_history: list[tuple[int, torch.Tensor]] = []  # (step, grid) for the timeline (thinned)
        self._run: _Run | None = None  # the run in progress (between Started and Finished)
        self._good_state: dict[str, torch.Tensor] | None = None
        self._good_step = 0
        self.resumed = False

    def to(self, device: str | torch.device) -> Trainer:
        """Move model, data, optimiser moments and data stream to `device`, in place (e.g. GPU chunks).

        The noise generator cannot carry its state across device kinds, so it is re-seeded from the
        run's seed and step (as `load_train_state` does for a checkpoint saved on another device).
        """
        device = resolve_device(device)
        self.device = device
        self.model.to(device)
        self._net.to(device)
        self.images, self.labels = self.images.to(device), self.labels.to(device)
        for opt in (self.opt_d, self.opt_g):
            for state in opt.state.values():
                for key, value in state.items():
                    if torch.is_tensor(value) and key != "step":  # Adam keeps `step` on the CPU
                        state[key] = value.to(device)
        self.stream.device, self.stream.perm = device, self.stream.perm.to(device)
        if self.noise_gen.device != device:
            self.noise_gen = torch.Generator(device=device).manual_seed(self.cfg.seed + 2 + self.step_count)
        self._good_state = None  # re-snapshotted on the new device at the next run()
        if self._run is not None:
            self._run.window_sums = None  # a partial window on the old device is dropped, not moved
            self._run.window_steps = 0
        return self

    @property
    def live_g(self) -> torch.nn.Module:
        """The G that trains (`model.G` itself when there is no average); read it, do not sample the app from it."""
        return self._live_g

    @property
    def net(self) -> GANCLS:
        """The pair that trains: `live_g` and `live_d` with the model's loss (shares them, no copies)."""
        return self._net

    @property
    def live_d(self) -> torch.nn.Module:
        """The D that trains (`model.D` itself when there is no average); the training curves are its outputs."""
        return self._live_d

    # ----------------------------------------------------------------- budget
    @property
    def steps_per_epoch(self) -> int:
        # As the seed: int(num_examples / batch_size) iterations make an epoch.
        return max(1, len(self.images) // self.cfg.batch_size)

    def total_steps(self, budget: Budget | None = None) -> int | None:
        """The step at which `budget` (default: the running one's) ends the run, if it sets one."""
        budget = budget if budget is not None else (self._run.budget if self._run else Budget())
        limits = [budget.steps] if budget.steps else []
        if budget.epochs:
            limits.append(math.ceil(budget.epochs * self.steps_per_epoch))
        return min(limits) if limits else None

    @property
    def train_seconds(self) -> float:
        """Seconds of training over every run of this model, the one in progress included."""
        return self._seconds_before + (self._run.clock.seconds if self._run is not None else 0.0)

    @property
    def running(self) -> bool:
        """True between a run's Started and its Finished (also while paused between slices)."""
        return self._run is not None

    # ------------------------------------------------------------------- step
    def step(self) -> torch.Tensor:
        """One iteration (D step, then G step). Returns [loss_d, loss_g, d_real, d_fake, d_wrong] on the device."""
        c, m, b = self.cfg, self._net, self.cfg.batch_size
        idx = self.stream.next(b)
        x = self.images[idx].unsqueeze(1).float().div_(255)  # [B, 1, 28, 28]
        y = self.labels[idx]  # [B]
        if c.objective == "seed":
            y_wrong = self.labels[self.stream.next(b)]  # the seed: labels of a 2nd batch (~10 % equal y)
        else:
            y_wrong = wrong_labels(y, self.model_cfg.num_classes, self.noise_gen)

        # --- D step: real/right -> 1, fake/right -> 0, real/wrong -> 0
        g = m.G
        with torch.no_grad(), self._autocast():
            fake = g(m.noise(b, self.noise_gen), y)  # [B, 1, 28, 28]
        with self._autocast():
            loss_d, scores = m.d_loss(x, y, y_wrong, fake, c)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        # --- G step on fresh noise; gradients only for G's parameters. D's are frozen while its
        # graph is built (not just left out of backward) so no layer computes D's weight grads.
        # A separate autocast block: its cache of bf16 weights must not outlive D's update.
        # With mode seeking, rows i and pairs + i share a label (a last odd row stays unpaired).
        seeking = c.mode_seeking_at(self.images_seen)
        pairs = b // 2 if seeking else 0
        y_g = torch.cat([y[:pairs], y[:pairs], y[2 * pairs:]]) if pairs else y
        noise = m.noise(b, self.noise_gen)
        with self._autocast():
            fake = g(noise, y_g)
            m.D.requires_grad_(False)
            try:
                loss_g = m.g_loss(fake, y_g, c)
            finally:
                m.D.requires_grad_(True)
            total_g = loss_g  # the reported loss_g stays the adversarial one the curves explain
            if pairs:  # a mean-form term; G's loss is a sum over the batch, hence * b
                total_g = loss_g + seeking * b * m.mode_seeking_loss(fake[:2 * pairs], noise[:2 * pairs])
        self.opt_g.zero_grad(set_to_none=True)
        total_g.backward()
        self.opt_g.step()
        if self.ema is not None:
            self.ema.update(g)
        if self.d_ema is not None:
            self.d_ema.update(m.D)

        self.step_count += 1
        self.images_seen += b
        return torch.stack([loss_d.detach(), loss_g.detach(), *scores.mean(dim=1)])

    def describe_device(self) -> str:
        """e.g. 'CPU (2 threads)', or 'GPU: NVIDIA H200, bf16 autocast'."""
        text = describe_device(self.device)
        if self.cfg.precision == "bf16":
            text += ", bf16 autocast" + ("" if fast_bf16(self.device) else " (emulated here: slower than fp32)")
        return text

    def _autocast(self) -> torch.autocast:
        # bf16: matmuls and convs in bfloat16; weights, Adam and the losses stay fp32.
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.precision == "bf16")

    # -------------------------------------------------------------------- run
    def run(self, budget: Budget | None = None, stop: StopFlag = None, *,
            slice_seconds: float | None = None) -> Iterator[Event]:
        """Train until `budget` is spent or `stop` is set, yielding events; saves when the run ends.

        A new run starts with Started and keeps `budget` (None: no limit) until Finished. With
        `slice_seconds`, the call returns after that much training with Paused, and the next call
        (its `budget` left out) goes on with the same run. A consumer that abandons the iterator
        still gets the state saved (when there is a run dir); the run then stays open.
        """
        stopped = _stop_flag(stop)
        fresh = self._run is None
        if fresh:
            self._run = _Run(budget if budget is not None else Budget())
        elif budget is not None and budget != self._run.budget:
            raise UserError("a run is in progress with another budget: finish it (or stop it) first")
        run = self._run
        slice_end = None if slice_seconds is None else run.clock.seconds + slice_seconds
        self._net.train()
        run.clock.start()
        run.clear_window()
        events: list[Event] = []
        if fresh:
            events.append(Started(self.step_count, self.total_steps(), self.describe_device(),
                                  self.data_description, self.resumed))
        if self._good_state is None:
            self._snapshot()
        if fresh and self._grid_is_stale():
            events.append(self._grid(run))
        done = False
        try:
            while True:
                run.clock.stop()
                for event in events:
                    yield event
                run.clock.start()
                if done:
                    return
                events, done = self._advance(run, stopped, slice_end)
                if done and self._run is None:
                    self.sync_model()  # what a caller samples from after a run is ready
        finally:
            run.clock.stop()
            if not done and self._run is run:  # the consumer went away (tab closed, cancelled): end the run
                self._seconds_before += run.clock.seconds
                self._run = None
                if self._finite():
                    self.save()  # and keep the work anyway

    def _advance(self, run: _Run, stopped: Callable[[], bool], slice_end: float | None) -> tuple[list[Event], bool]:
        """Train until there is something to report: (events, whether this call is over)."""
        c, total = self.cfg, self.total_steps()
        while True:
            reason = self._stop_reason(run, total, stopped)
            if reason is not None:
                return self._finish(run, reason), True
            if slice_end is not None and run.clock.seconds >= slice_end:
                events = self._flush(run)
                if events is None:
                    return self._finish(run, "diverged"), True
                return [*events, Paused(self.step_count, run.clock.seconds)], True
            run.add(self.step())
            now = run.clock.seconds
            # An autosave that is due forces a read (which checks the state is finite), so the
            # save interval does not stretch to the metrics interval.
            save_due = bool(c.autosave_seconds) and now - run.last_save >= c.autosave_seconds
            if not save_due and run.window_steps < c.metrics_every and now - run.window_t0 < c.metrics_seconds:
                continue
            metrics = self._read(run)
            if metrics is None:
                return self._finish(run, "diverged"), True
            events: list[Event] = [metrics]
            if now - run.last_sample >= c.sample_seconds:
                events.append(self._grid(run))
            if save_due:
                run.last_save = now
                saved = self.save()
                if saved:
                    events.append(saved)
                else:
                    self._snapshot()
            return events, False

    def _finish(self, run: _Run, reason: str) -> list[Event]:
        """End the run: last metrics and grid, a save, Finished."""
        events: list[Event] = []
        path = None
        if reason != "diverged":
            flushed = self._flush(run)
            if flushed is None:
                reason = "diverged"
            else:
                events += flushed
        if reason == "diverged":
            bad_step = self.step_count
            self._restore()
            message = (f"training diverged (a loss or weight became NaN or Inf) near step {bad_step}; "
                       f"the model was put back to its last good state, step {self._good_step}")
        else:
            if self._grid_is_stale():
                events.append(self._grid(run, exact=True))
            saved = self.save()
            if saved:
                path = saved.path
                events.append(saved)
            message = {"steps": "reached the step limit", "epochs": "finished the epochs",
                       "time": "used the time budget", "stopped": "stopped on request"}[reason]
        self._seconds_before += run.clock.seconds
        self._run = None
        events.append(Finished(self.step_count, reason, message, path))
        return events

    def _flush(self, run: _Run) -> list[Event] | None:
        """The metrics of steps not yet reported ([] if none); None if the state went non-finite."""
        if not run.window_steps:
            return []
        metrics = self._read(run)
        return None if metrics is None else [metrics]

    def _stop_reason(self, run: _Run, total: int | None, stopped: Callable[[], bool]) -> str | None:
        if total is not None and self.step_count >= total:
            return "steps" if run.budget.steps and self.step_count >= run.budget.steps else "epochs"
        if run.budget.seconds is not None and run.clock.seconds >= run.budget.seconds:
            return "time"
        return "stopped" if stopped() else None

    def _read(self, run: _Run) -> Metrics | None:
        loss_d, loss_g, d_real, d_fake, d_wrong = (run.window_sums / run.window_steps).tolist()  # one host sync
        # The last update can turn weights NaN after a finite loss: check them too, before any save.
        if not all(map(math.isfinite, (loss_d, loss_g))) or not self._finite():
            return None
        now, total, seconds = run.clock.seconds, self.total_steps(), run.budget.seconds
        progress = max([self.step_count / total if total else 0.0, now / seconds if seconds else 0.0])
        m = Metrics(self.step_count, self.step_count / self.steps_per_epoch, self.images_seen, loss_d, loss_g,
                    d_real, d_fake, d_wrong, run.window_steps * self.cfg.batch_size / max(now - run.window_t0, 1e-9),
                    now, min(1.0, progress))
        self.last_metrics = m.to_dict()
        self.history.append(self.last_metrics)
        if len(self.history) > MAX_HISTORY:
            self.history = _thinned(self.history, MAX_HISTORY)
        run.clear_window()
        return m

    def _grid_is_stale(self) -> bool:
        return not self.samples_history or self.samples_history[-1][0] != self.step_count

    def _grid(self, run: _Run, exact: bool = False) -> Samples:
        # A live grid re-estimates the averaged G's BN statistics only while that stays a small share
        # of the time (on a busy CPU it can cost many steps); otherwise it uses the last estimate.
        run.last_sample = run.clock.seconds
        if exact or time.perf_counter() - self._synced_at >= self._sync_seconds / SYNC_SHARE:
            self.sync_model()
        return self._take_grid()

    def sync_model(self) -> None:
        """Re-estimate the averaged G's batch-norm statistics if it changed since (no-op without an average).

        A cumulative average over BN_BATCHES fixed batches of noise with every label equally often:
        a function of the averaged weights alone, so it never changes what training does.
        """
        if self.ema is None or self._bn_step == self.step_count:
            return
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(self.cfg.seed + 4)
        k = self.model_cfg.num_classes
        labels = torch.arange(k).repeat(BN_BATCH // k + 1)[:BN_BATCH].to(self.device)
        batches = [(self.model.noise(BN_BATCH, gen).to(self.device), labels) for _ in range(BN_BATCHES)]
        with self._autocast():
            self.ema.recompute_batch_norm(batches)
        self._bn_step = self.step_count
        self._synced_at = time.perf_counter()
        self._sync_seconds = self._synced_at - t0

    def samples(self) -> Samples:
        """The fixed-noise grid now (same noise every time, one row per label), kept for the timeline."""
        self.sync_model()
        return self._take_grid()

    def _take_grid(self) -> Samples:
        images = to_uint8(self.model.sample(self.fixed_labels, noise=self.fixed_noise))
        self.samples_history.append((self.step_count, images))
        if len(self.samples_history) > MAX_GRIDS:
            self.samples_history = _thinned(self.samples_history, MAX_GRIDS)
        return Samples(self.step_count, images, self.cfg.sample_cols)

    # ------------------------------------------------------- last good state
    def _finite(self) -> bool:
        # Weights and BN statistics (the trained G's too), one host sync.
        tensors = list(self.model.state_dict().values())
        if self.ema is not None:
            tensors += self._live_g.state_dict().values()
        if self.d_ema is not None:
            tensors += self._live_d.state_dict().values()
        flags = [torch.isfinite(t).all() for t in tensors if t.is_floating_point()]
        return bool(torch.stack(flags).all())

    def _snapshot(self) -> None:
        if self._finite():
            self._good_state = {k: v.detach().clone() for k, v in self._full_state().items()}
            self._good_step = self.step_count

    def _restore(self) -> None:
        if self._good_state is not None:
            self._load_full_state(self._good_state)
            self.step_count = self._good_step
            self._bn_step = None

    # ------------------------------------------------------------ checkpoints
    def _full_state(self) -> dict[str, torch.Tensor]:
        state = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        state.update({f"train.{k}": v for k, v in self.train_state().items()})
        return state

    def _load_full_state(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("model.")})
        self.load_train_state({k[6:]: v for k, v in state.items() if k.startswith("train.")})

    def train_state(self) -> dict[str, torch.Tensor]:
        """Optimiser moments, RNG states, the data stream position and (with an average) the trained G."""
        state: dict[str, torch.Tensor] = {
            "rng.data": self.data_gen.get_state(),
            "rng.noise": self.noise_gen.get_state(),
            "stream.perm": self.stream.perm,
            "stream.pos": torch.tensor(self.stream.pos),
        }
        if self.ema is not None:
            state.update({f"live_g.{k}": v for k, v in self._live_g.state_dict().items()})
        if self.d_ema is not None:
            state.update({f"live_d.{k}": v for k, v in self._live_d.state_dict().items()})
        for name, opt in (("opt_d", self.opt_d), ("opt_g", self.opt_g)):
            for i, s in opt.state_dict()["state"].items():
                for key, t in s.items():
                    state[f"{name}.{i}.{key}"] = torch.as_tensor(t)
        return state

    def load_train_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what train_state() returned; raises ValueError if it does not fit."""
        if self.ema is not None:
            live = {k[len("live_g."):]: v for k, v in state.items() if k.startswith("live_g.")}
            if not live:
                raise ValueError("the run averages G but the training state holds no trained G (live_g.*)")
            self._live_g.load_state_dict(live)
            self._bn_step = None
        if self.d_ema is not None:
            live = {k[len("live_d."):]: v for k, v in state.items() if k.startswith("live_d.")}
            if not live:
                raise ValueError("the run averages D but the training state holds no trained D (live_d.*)")
            self._live_d.load_state_dict(live)
        for name, opt in (("opt_d", self.opt_d), ("opt_g", self.opt_g)):
            sd = opt.state_dict()
            per_param: dict[int, dict[str, torch.Tensor]] = {}
            for k, v in state.items():
                if k.startswith(name + "."):
                    _, i, key = k.split(".", 2)
                    per_param.setdefault(int(i), {})[key] = v.clone()
            sd["state"] = per_param
            opt.load_state_dict(sd)
        self.data_gen.set_state(state["rng.data"].clone())
        try:
            self.noise_gen.set_state(state["rng.noise"].clone())
        except RuntimeError:  # saved on another kind of device: continue on a derived stream
            self.noise_gen.manual_seed(self.cfg.seed + 2 + self.step_count)
        perm = state["stream.perm"]
        if len(perm) == len(self.images):
            self.stream.perm, self.stream.pos = perm.to(self.device).clone(), int(state["stream.pos"])

    def state_dict(self) -> dict[str, Any]:
        """Everything that training changes, on the CPU and picklable (e.g. to hand back from a GPU chunk)."""
        return {
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "train": {k: v.detach().cpu() for k, v in self.train_state().items()},
            "counters": {"step": self.step_count, "images_seen": self.images_seen,
                         "seconds_before": self._seconds_before},
            "history": list(self.history), "samples_history": list(self.samples_history),
            "last_metrics": dict(self.last_metrics),
            "run": self._run.to_dict() if self._run is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take over what `state_dict()` returned (from this trainer or a copy of it in another process)."""
        self.model.load_state_dict(state["model"])
        counters = state["counters"]
        self.step_count, self.images_seen = counters["step"], counters["images_seen"]
        self._seconds_before = counters["seconds_before"]
        self.load_train_state(state["train"])
        self.history, self.samples_history = list(state["history"]), list(state["samples_history"])
        self.last_metrics = dict(state["last_metrics"])
        self._run = _Run.from_dict(state["run"]) if state["run"] is not None else None
        self._good_state = None

    def meta(self) -> dict[str, Any]:
        """What the checkpoint says about this run (JSON-able)."""
        return {
            "train_config": self.cfg.to_dict(), "step": self.step_count, "images_seen": self.images_seen,
            "train_seconds": round(self.train_seconds, 3), "data": self.data_description,
            "n_train": len(self.images), "device": self.describe_device(), "last_metrics": self.last_metrics,
            "history": self.history[-5000:], "gancls_version": __version__, "torch_version": torch.__version__,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }

    def save(self, path: str | os.PathLike | None = None) -> CheckpointSaved | None:
        """Write an atomic checkpoint to `path` (default: the run dir); None if there is nowhere to save."""
        target = Path(path) if path is not None else self.run_dir
        if target is None:
            return None
        self.sync_model()
        p = save_checkpoint(target, self.model, self.meta(), self.train_state())
        self._snapshot()
        return CheckpointSaved(self.step_count, p)

    @classmethod
    def resume(cls, path: str | os.PathLike, data: Any, *, device: str | torch.device = "auto",
               run_dir: str | os.PathLike | None = None, **intervals: Any) -> Trainer:
        """A trainer that continues a saved run from its step, with the same RNG streams.

        The run keeps its own settings; only the reporting intervals (INTERVAL_FIELDS) may change.
        The budget is what the next `run()` is given.
        """
        ckpt = load_checkpoint(path)
        if not ckpt.train_state:
            raise CheckpointError(f"{ckpt.path.name}: holds weights only (no optimiser state), so it cannot be "
                                  "resumed; start a new run, or use it as it is for generating and probing")
        bad = [k for k, v in intervals.items() if k not in INTERVAL_FIELDS and v is not None]
        if bad:
            raise UserError(f"cannot change {', '.join(bad)} when resuming; start a new run instead")
        values = {**ckpt.meta["train_config"], **{k: v for k, v in intervals.items() if v is not None}}
        t = cls(ckpt.model.cfg, TrainConfig.from_dict(values), data, device=device,
                run_dir=run_dir if run_dir is not None else ckpt.path.parent, model=ckpt.model)
        t.step_count = ckpt.step
        t.images_seen = int(ckpt.meta.get("images_seen", 0))
        t._seconds_before = float(ckpt.meta.get("train_seconds", 0.0))
        t.history = [h for h in ckpt.meta.get("history", []) if isinstance(h, dict)]
        t.last_metrics = dict(ckpt.meta.get("last_metrics", {}))
        try:
            t.load_train_state(ckpt.train_state)
        except (KeyError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"{ckpt.path.name}: training state does not fit this run ({e})") from None
        t.resumed = True
        return t
