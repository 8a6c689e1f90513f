"""Run the TF-1 reference (`../shared/reference/seed_gancls_tf.py`) in its own venv and read its throughput.

    python -m bench.reference --setup-reference --batch-size 10 --max-steps 100

TensorFlow pins its own numpy and protobuf, so the reference lives in a separate venv
(default /tmp/tfvenv, made on request with --setup-reference). Each call is one process: TF's
start-up and graph building are not counted; the figure is the script's own steady-state
images/s (an image = one real image of the batch; its first iterations are excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import DEFAULT_DATA_DIR, REPO_ROOT, format_table, load_average

DEFAULT_SCRIPT = REPO_ROOT.parent / "shared" / "reference" / "seed_gancls_tf.py"
DEFAULT_VENV = Path("/tmp/tfvenv")
PINS = ("tensorflow-cpu==2.15.1", "tf-slim==1.1.0", "matplotlib")  # the script saves PNGs with matplotlib


class ReferenceError(ValueError):
    """The reference cannot run: no venv, no script, no data, or it failed."""


@dataclass
class ReferenceRun:
    """One reference process: its steady-state throughput and what it reported."""

    batch_size: int
    steps: int
    images_per_s: float  # steady state, checkpoint pauses included (the script's own figure)
    images_per_s_median_step: float  # batch / median iteration time
    images_per_cpu_s: float | None  # steady-state images per CPU-second of the process (all its threads)
    warmup_steps: int
    wall_s: float  # the whole process, TF start-up included
    load_average: list[float]
    stats: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["stats"] = {k: v for k, v in self.stats.items() if k not in ("epoch_s",)}
        return d


def venv_python(venv: Path) -> Path:
    """The venv's interpreter path."""
    return venv / "bin" / "python"


def venv_ready(venv: Path) -> bool:
    """True if the venv's python imports tensorflow, tf_slim and matplotlib."""
    py = venv_python(venv)
    if not py.is_file():
        return False
    check = subprocess.run([str(py), "-c", "import tensorflow, tf_slim, matplotlib"], capture_output=True, timeout=300)
    return check.returncode == 0


def ensure_venv(venv: Path = DEFAULT_VENV, setup: bool = False, log=print) -> Path:
    """The reference venv's python; create it (pip install the pins) only when `setup` is true."""
    if venv_ready(venv):
        return venv_python(venv)
    if not setup:
        raise ReferenceError(f"no working TensorFlow venv at {venv}: run with --setup-reference to create it")
    log(f"creating {venv} and installing {' '.join(PINS)} (a few minutes)")
    # TF 2.15 wheels exist for Python 3.9-3.11: the python3 on PATH, else the one running this.
    subprocess.run([shutil.which("python3") or sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv_python(venv)), "-m", "pip", "install", "-q", *PINS], capture_output=True, text=True)
    if pip.returncode != 0 or not venv_ready(venv):
        tail = (pip.stderr or pip.stdout).strip().splitlines()[-3:]
        raise ReferenceError(f"could not install {' '.join(PINS)} into {venv}: {' | '.join(tail)}")
    return venv_python(venv)


class _CpuSampler(threading.Thread):
    """Samples a process's CPU time (user + system, all threads) with wall-clock stamps."""

    def __init__(self, pid: int, every: float = 0.02):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, float]] = []  # (unix time, CPU seconds)
        self.done = threading.Event()
        self.tick = os.sysconf("SC_CLK_TCK")

    def run(self) -> None:
        stat = Path(f"/proc/{self.pid}/stat")
        while not self.done.is_set():
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                return
            self.samples.append((time.time(), (int(fields[11]) + int(fields[12])) / self.tick))  # utime, stime
            self.done.wait(self.every)


def _cpu_per_image(samples: list[tuple[float, float]], steps_npz: Path, warm: int, batch: int) -> float | None:
    """Images per CPU-second over the steady iterations, from CPU samples and the script's step end times."""
    import numpy as np

    if len(samples) < 2 or not steps_npz.is_file():
        return None
    ends = np.load(steps_npz)["step_end_unix"]  # [iterations]
    if len(ends) <= warm + 1:
        return None
    t, cpu = np.array(samples).T
    c0, c1 = np.interp([ends[max(warm - 1, 0)], ends[-1]], t, cpu)
    steps = len(ends) - max(warm, 1)
    return float(steps * batch / (c1 - c0)) if c1 > c0 else None


def run_reference(batch_size: int, max_steps: int, *, python: Path, data_dir: Path = DEFAULT_DATA_DIR,
                  script: Path = DEFAULT_SCRIPT, threads: int | None = None, seed: int = 0,
                  timeout: float = 1800) -> ReferenceRun:
    """Run the reference for `max_steps` iterations at `batch_size`; return its steady-state throughput."""
    raw = Path(data_dir) / "MNIST" / "raw"
    if not raw.is_dir():
        raise ReferenceError(f"MNIST raw files not found in {raw}")
    if not Path(script).is_file():
        raise ReferenceError(f"reference script not found: {script}")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    if threads:  # TF reads these at session start; default = all cores for both pools
        env.update(TF_NUM_INTRAOP_THREADS=str(threads), TF_NUM_INTEROP_THREADS=str(threads))
    with tempfile.TemporaryDirectory(prefix="gancls-ref-") as tmp:
        tag = f"b{batch_size}"
        cmd = [str(python), str(script), "--data-dir", str(raw), "--batch-size", str(batch_size),
               "--max-steps", str(max_steps), "--n-per-class", "1", "--seed", str(seed),
               "--ckpt-dir", f"{tmp}/ckpt", "--out-dir", f"{tmp}/out", "--tag", tag]
        t0 = time.perf_counter()
        with open(f"{tmp}/log.txt", "w+") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp)
            sampler = _CpuSampler(proc.pid)
            sampler.start()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            sampler.done.set()
            sampler.join()
            log.seek(0)
            output = log.read()
        wall = time.perf_counter() - t0
        stats_path = Path(tmp) / "out" / f"stats_{tag}.json"
        if proc.returncode != 0 or not stats_path.is_file():
            tail = " | ".join(output.strip().splitlines()[-3:])
            raise ReferenceError(f"the reference exited with {proc.returncode}: {tail}")
        stats = json.loads(stats_path.read_text())["stats"]
        per_cpu = _cpu_per_image(sampler.samples, Path(tmp) / "out" / f"steptimes_{tag}.npz",
                                 int(stats["warmup_iters_excluded"]), batch_size)
    return ReferenceRun(batch_size=batch_size, steps=int(stats["iterations_run"]),
                        images_per_s=float(stats["steady_img_per_s_incl_ckpt"]),
                        images_per_s_median_step=float(stats["steady_img_per_s_median_step"]),
                        images_per_cpu_s=per_cpu,
                        warmup_steps=int(stats["warmup_iters_excluded"]), wall_s=wall,
                        load_average=load_average(), stats=stats)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--setup-reference", action="store_true", help=f"create the venv if missing ({' '.join(PINS)})")
    p.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="the TensorFlow venv (default /tmp/tfvenv)")
    p.add_argument("--script", type=Path, default=DEFAULT_SCRIPT, help="the reference script")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="folder holding MNIST/raw/")
    p.add_argument("--batch-size", type=int, default=10, help="batch size (the seed's: 10)")
    p.add_argument("--max-steps", type=int, default=100, help="iterations to run (about 10%% are warm-up)")
    p.add_argument("--threads", type=int, default=None, help="TF intra/inter-op threads (default: TF's, all cores)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Set up (if asked) and run the reference once; print its throughput."""
    a = parse_args(argv)
    try:
        python = ensure_venv(a.venv, a.setup_reference)
        r = run_reference(a.batch_size, a.max_steps, python=python, data_dir=a.data_dir, script=a.script,
                          threads=a.threads)
    except ReferenceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_table(["batch", "steps", "warm-up", "img/s", "img/s (median step)", "img per CPU-s", "process s",
                        "load"],
                       [[r.batch_size, r.steps, r.warmup_steps, r.images_per_s, r.images_per_s_median_step,
                         r.images_per_cpu_s, r.wall_s, " ".join(map(str, r.load_average))]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
