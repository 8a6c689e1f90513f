"""Kill soak: SIGKILL `python -m gancls train` at random moments, resume, and check that nothing is lost.

The machinery; `python -m bench.kill_soak --kills 200` runs it at length.

Each cycle starts `train` (with --resume once a checkpoint exists) and kills it with SIGKILL at a
random moment: during start-up, during training, or the instant a checkpoint's temp file appears
(mid-write). After every kill, `check_after_kill` looks at the run directory:
  * the checkpoint loads (`load_checkpoint`), from `gancls.safetensors` and nothing else;
  * its step never goes back, and is at least the last step the process reported saving;
  * little work is lost: every step the process printed more than `autosave + slack` seconds before
    the kill is in the checkpoint, and the checkpoint is at most that old (or younger than the
    process's training);
  * any leftover temp file is either a complete checkpoint or refused with a CheckpointError;
  * the next `train --resume` starts exactly at the checkpoint's step.
tests/test_crash_safety.py runs the same cycles, fewer of them.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from gancls.checkpoint import META_NAME, WEIGHTS_NAME, CheckpointError, load_checkpoint

from . import ROOT as REPO

MODES = ("train", "save", "startup")
TEMP = re.compile(r"^\.gancls\.(safetensors|json)\..*\.tmp$")  # checkpoint._atomic_write's temp names
PROGRESS = re.compile(rb"\| *(\d+)/\d+ \[")  # tqdm: " 4%|...| 37/937 [00:01<..."


class TrainProcess:
    """`python -m gancls train` in a subprocess, its output read by a thread and time-stamped."""

    def __init__(self, run_dir: Path, data_dir: Path, *, resume: bool, autosave: float, extra: tuple[str, ...] = ()):
        args = [sys.executable, "-m", "gancls", "train", "--arch", "small", "--data-dir", str(data_dir),
                "--device", "cpu", "--autosave-seconds", str(autosave), "--max-seconds", "60",
                "--epochs", "1000", "--out", str(run_dir), *(["--resume"] if resume else []), *extra]
        # One thread per process: several torch processes with 2 threads each thrash a small CPU.
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
        self.t_spawn = time.monotonic()
        self.proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.chunks: list[tuple[float, float, int]] = []  # (monotonic, wall clock, end offset) per read
        self.buf = bytearray()
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        fd = self.proc.stdout.fileno()
        while chunk := os.read(fd, 65536):
            with self.lock:
                self.buf += chunk
                self.chunks.append((time.monotonic(), time.time(), len(self.buf)))

    def output(self) -> bytes:
        with self.lock:
            return bytes(self.buf)

    def arrival(self, offset: int) -> tuple[float, float]:
        """(monotonic, wall) time at which the output up to `offset` had arrived."""
        with self.lock:
            return next((m, w) for m, w, end in self.chunks if end >= offset)

    def find(self, pattern: bytes) -> list[tuple[float, float, re.Match]]:
        """Every match of `pattern` in the output so far, with its arrival times."""
        return [(*self.arrival(m.end()), m) for m in re.finditer(pattern, self.output())]

    def wait_for(self, pattern: bytes, timeout: float) -> tuple[float, float, re.Match] | None:
        """Wait for `pattern` to appear (None on timeout or exit)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            hits = self.find(pattern)
            if hits:
                return hits[0]
            if self.proc.poll() is not None:
                self.reader.join(2)
                hits = self.find(pattern)
                return hits[0] if hits else None
            time.sleep(0.01)
        return None

    def finish(self, timeout: float = 30) -> int:
        rc = self.proc.wait(timeout)
        self.reader.join(5)
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()


@dataclass
class Cycle:
    """What one start-and-kill cycle saw."""

    index: int
    mode: str
    resumed_from: int | None  # step on disk before the start (None: fresh run)
    step: int | None = None  # step on disk after the kill
    lost_seconds: float | None = None  # kill time minus the later of last save and training start
    steps_lost: int | None = None  # last printed progress minus the checkpoint's step
    temps: int = 0  # temp files left in the run dir
    killed_mid_save: bool = False
    problems: list[str] = field(default_factory=list)


def _disk_step(run_dir: Path) -> int | None:
    return load_checkpoint(run_dir).step if (run_dir / WEIGHTS_NAME).exists() else None


def one_cycle(index: int, run_dir: Path, data_dir: Path, mode: str, rng: random.Random, *,
              autosave: float = 0.5, slack: float = 1.0) -> Cycle:
    """Start train (resuming if there is a checkpoint), SIGKILL it as `mode` says, check the run dir."""
    before = _disk_step(run_dir)
    cyc = Cycle(index, mode, before)
    p = TrainProcess(run_dir, data_dir, resume=before is not None, autosave=autosave)
    try:
        if mode == "startup":
            time.sleep(rng.uniform(0.0, 1.2))
        else:
            if p.wait_for(rb"train: (starting|resuming) at step \d+", 120) is None:
                cyc.problems.append(f"training never started: {p.output()[-800:]!r}")
                return cyc
            if mode == "train":  # up to 3 s, past autosave + slack, so that the lost-work bounds bite
                time.sleep(rng.uniform(0.2, 3.0))
            else:  # the instant a new temp file shows up, i.e. while a checkpoint is being written
                old = {n for n in os.listdir(run_dir) if TEMP.match(n)}  # left by earlier kills
                end = time.monotonic() + 3.0
                while time.monotonic() < end and not cyc.killed_mid_save:
                    cyc.killed_mid_save = any(TEMP.match(n) and n not in old for n in os.listdir(run_dir))
                    if not cyc.killed_mid_save:
                        time.sleep(0.001)
        if p.proc.poll() is not None:
            cyc.problems.append(f"train exited by itself (rc {p.proc.returncode}): {p.output()[-800:]!r}")
            return cyc
        t_kill, t_kill_wall = time.monotonic(), time.time()
        p.proc.send_signal(signal.SIGKILL)
        p.finish()
    finally:
        p.kill()
    check_after_kill(cyc, p, run_dir, t_kill, t_kill_wall, autosave + slack)
    return cyc


def check_after_kill(cyc: Cycle, p: TrainProcess, run_dir: Path, t_kill: float, t_kill_wall: float,
                     max_lost: float) -> None:
    """Record in `cyc` what is on disk after the kill, and every way it falls short."""
    out = p.output()
    if b"Traceback" in out:
        cyc.problems.append(f"traceback before the kill: {out[-800:]!r}")
    names = os.listdir(run_dir)
    temps = [n for n in names if TEMP.match(n)]
    cyc.temps = len(temps)
    unknown = set(names) - {WEIGHTS_NAME, META_NAME} - set(temps)
    if unknown:
        cyc.problems.append(f"unexpected files in the run dir: {sorted(unknown)}")
    for name in temps:  # a leftover temp is never half-read as a checkpoint: complete, or refused
        if ".safetensors." in name:
            try:
                load_checkpoint(run_dir / name)
            except CheckpointError:
                pass
            except Exception as e:  # noqa: BLE001 - any other error is what we are looking for
                cyc.problems.append(f"temp file {name}: {type(e).__name__}: {e}")

    started = p.find(rb"train: (starting|resuming) at step (\d+)")
    if started and int(started[0][2].group(2)) != (cyc.resumed_from or 0):
        cyc.problems.append(f"train started at step {started[0][2].group(2).decode()}, but the checkpoint "
                            f"on disk said {cyc.resumed_from}")
    ckpt = None
    if (run_dir / WEIGHTS_NAME).exists():
        try:
            ckpt = load_checkpoint(run_dir)
        except Exception as e:  # noqa: BLE001
            cyc.problems.append(f"checkpoint does not load after the kill: {type(e).__name__}: {e}")
            return
        check_files(cyc, p, run_dir, ckpt)
    elif cyc.resumed_from is not None or p.find(rb"checkpoint: step"):
        cyc.problems.append("the checkpoint disappeared")

    # Lost work. The time check: the checkpoint is at most autosave + slack old, unless training
    # began after it. The step check: any step printed autosave + slack before the kill is saved.
    saved_step = ckpt.step if ckpt else -1
    saved_at = os.stat(ckpt.path).st_mtime if ckpt else 0.0
    if started:
        cyc.lost_seconds = t_kill_wall - max(saved_at, started[0][1])
        if cyc.lost_seconds > max_lost:
            cyc.problems.append(f"lost {cyc.lost_seconds:.2f} s of training (limit {max_lost:.2f} s)")
    progress = [(t, int(m.group(1))) for t, _, m in p.find(PROGRESS)]
    if progress:
        cyc.steps_lost = max(0, progress[-1][1] - max(saved_step, 0))
        old = [s for t, s in progress if t <= t_kill - max_lost]
        if old and max(old) > max(saved_step, 0):
            cyc.problems.append(f"step {max(old)} was printed over {max_lost:.2f} s before the kill, "
                                f"but the checkpoint holds step {saved_step if ckpt else 'none'}")


def check_files(cyc: Cycle, p: TrainProcess, run_dir: Path, ckpt) -> None:
    """The checkpoint that loaded: the right file, never behind what was saved before."""
    cyc.step = ckpt.step
    if ckpt.path.name != WEIGHTS_NAME:
        cyc.problems.append(f"loaded {ckpt.path}, not {WEIGHTS_NAME}")
    if (run_dir / META_NAME).exists():  # absent only if the very first save was cut between its two files
        try:
            json_step = json.loads((run_dir / META_NAME).read_text())["step"]
            if json_step > ckpt.step:
                cyc.problems.append(f"{META_NAME} says step {json_step}, ahead of the checkpoint ({ckpt.step})")
        except (OSError, ValueError, KeyError) as e:
            cyc.problems.append(f"{META_NAME} unreadable: {e}")
    if cyc.resumed_from is not None and ckpt.step < cyc.resumed_from:
        cyc.problems.append(f"checkpoint went back from step {cyc.resumed_from} to {ckpt.step}")
    reported = [int(m.group(1)) for _, _, m in p.find(rb"checkpoint: step (\d+)")]
    if reported and ckpt.step < max(reported):
        cyc.problems.append(f"process reported saving step {max(reported)}, disk has {ckpt.step}")


def soak(kills: int, run_dir: Path, data_dir: Path, *, seed: int = 0, autosave: float = 0.5,
         slack: float = 1.0, log=None) -> list[Cycle]:
    """`kills` start-and-kill cycles on one run directory, modes in turn, random moments."""
    rng = random.Random(seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    cycles = []
    for i in range(kills):
        cyc = one_cycle(i, run_dir, data_dir, MODES[i % len(MODES)], rng, autosave=autosave, slack=slack)
        cycles.append(cyc)
        if log:
            log(cyc)
    return cycles


def summary(cycles: list[Cycle]) -> dict:
    """Figures for a report."""
    lost = [c.lost_seconds for c in cycles if c.lost_seconds is not None]
    steps = [c.steps_lost for c in cycles if c.steps_lost is not None]
    return {
        "kills": len(cycles),
        "survived": sum(not c.problems for c in cycles),
        "by_mode": {m: sum(c.mode == m for c in cycles) for m in MODES},
        "killed_mid_save": sum(c.killed_mid_save for c in cycles),
        "final_step": next((c.step for c in reversed(cycles) if c.step is not None), None),
        "max_lost_seconds": round(max(lost), 3) if lost else None,
        "mean_lost_seconds": round(sum(lost) / len(lost), 3) if lost else None,
        "max_steps_lost": max(steps) if steps else None,
        "max_temp_files": max((c.temps for c in cycles), default=0),
        "problems": [f"cycle {c.index} ({c.mode}): {p}" for c in cycles for p in c.problems],
    }
