"""Pick the device to train on, once, describe it for people, and tune the CPU allocator for training."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
import time
from pathlib import Path
from typing import Sequence

import torch

from .errors import UserError

DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """`auto` picks cuda, then mps, then cpu; an explicit device must be available (else UserError)."""
    if isinstance(name, torch.device):
        return name
    name = str(name).strip().lower()
    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps and mps.is_available())
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps_ok else "cpu")
    base = name.split(":")[0]
    if base not in DEVICES:
        raise UserError(f"unknown device {name!r}: choose one of {', '.join(DEVICES)}")
    if base == "cuda" and not torch.cuda.is_available():
        raise UserError("device 'cuda' was asked for, but no CUDA GPU is available here")
    if base == "mps" and not mps_ok:
        raise UserError("device 'mps' was asked for, but Apple's MPS is not available here")
    try:
        return torch.device(name)
    except RuntimeError:  # torch's parser: "cuda:x", "cpu:0:1"
        raise UserError(f"unknown device {name!r}: choose one of {', '.join(DEVICES)}, or e.g. cuda:1") from None


def describe_device(device: torch.device, threads: int | None = None) -> str:
    """e.g. 'CPU (2 threads)' or 'GPU: NVIDIA H200'; `threads` defaults to this thread's torch threads."""
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "GPU: Apple MPS"
    threads = threads or torch.get_num_threads()
    return f"CPU ({threads} thread{'s' if threads != 1 else ''})"


# ------------------------------------------------------------------ CPU threads
def usable_cores() -> int:
    """Cores torch may use here: the CPUs this process may run on (a container's cpuset too), capped by
    torch's own default (physical cores, or $OMP_NUM_THREADS). Call it before setting torch's threads."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, torch.get_num_threads()))


def busy_cores(seconds: float = 0.25) -> float:
    """How many cores other work kept busy over the next `seconds` (from /proc/stat; 0.0 where there is
    none). Call it while this process is idle, before it trains."""
    def sample() -> tuple[int, int] | None:
        try:
            with open("/proc/stat") as f:
                ticks = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
        return sum(ticks[:8]), idle

    first = sample()
    if first is None:
        return 0.0
    time.sleep(seconds)
    second = sample()
    if second is None or second[0] <= first[0]:
        return 0.0
    total, idle = second[0] - first[0], second[1] - first[1]
    return (os.cpu_count() or 1) * (total - idle) / total


def default_threads(*, cores: int | None = None, busy: float = 0.0, reserve: int = 0, runs: int = 1) -> int:
    """Torch threads per training run when none are asked for: the free cores split between `runs`, at least 1.

    free = `cores` (default: usable_cores()) - `reserve` (cores the same program needs for other work)
    - `busy` (cores other processes keep busy, rounded). A team of OpenMP threads waits for its slowest
    member at every op, so one thread that has to share its core with a busy process holds up all the
    others: on 2 cores with another job keeping a core busy, 1 thread trains faster than 2. Lighter work
    beside training (the app's server, a browser showing the page) is cheaper than a lost core: there
    2 threads beat 1 (bench/ui_browser.py).
    """
    cores = usable_cores() if cores is None else cores
    if cores < 1 or reserve < 0 or busy < 0 or runs < 1:
        raise ValueError(f"need cores >= 1, reserve >= 0, busy >= 0 and runs >= 1 "
                         f"(got {cores}, {reserve}, {busy}, {runs})")
    return max(1, (cores - reserve - int(busy + 0.5)) // runs)


def thread_cpu_ticks() -> dict[int, int]:
    """CPU clock ticks (user + system) each thread of this process has used so far; {} off Linux."""
    ticks = {}
    for task in Path("/proc/self/task").glob("*"):
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()  # the name may hold spaces
            ticks[int(task.name)] = int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, ValueError, IndexError):  # a thread that ended meanwhile
            pass
    return ticks


def team_workers(probe_seconds: float = 0.2) -> list[int]:
    """Native ids of the other threads that work while this one runs parallel torch ops for `probe_seconds`
    (its OpenMP workers, made now if it has none yet; and any other busy thread). [] off Linux."""
    me = threading.get_native_id()
    work = torch.ones(1 << 22)  # 16 MiB: many times torch's grain, so every op runs on the whole team
    before, start = thread_cpu_ticks(), time.monotonic()
    while time.monotonic() - start < probe_seconds:
        work.mul_(1.0)
    used = {tid: t - before.get(tid, 0) for tid, t in thread_cpu_ticks().items() if tid != me}
    # A worker ran for most of the probe; a third of the probe's clock ticks is well above noise.
    least = os.sysconf("SC_CLK_TCK") * probe_seconds / 3
    return sorted(tid for tid, t in used.items() if t >= least)


def pin_compute_team(cores: Sequence[int], probe_seconds: float = 0.2) -> bool:
    """Pin the calling thread and the OpenMP workers of its torch ops to one core each: cores[0], cores[1], ...

    Pinned, the kernel no longer moves the team's threads between cores when other work (a browser
    on the same laptop, the app's server) wakes up. In the app with its page open in a browser that
    kept slightly more of the CLI's speed (bench/ui_browser.py, a gain within the noise of the VM
    it was measured on); the CLI alone gained nothing, so it does not pin. The workers are found by
    what they do: the threads that use CPU while this one runs parallel ops for `probe_seconds`
    (this also creates them). Call it while the rest of the process is idle. Threads this thread
    makes later inherit its single core, and so would a bigger team after torch.set_num_threads;
    keep its thread count.
    Returns False, changing nothing, where it cannot: not Linux, one thread, fewer cores than
    threads, or the workers could not be told apart.
    """
    team = torch.get_num_threads()
    if team < 2 or len(cores) < team or not hasattr(os, "sched_setaffinity") or not Path("/proc/self/task").is_dir():
        return False
    me, allowed = threading.get_native_id(), os.sched_getaffinity(0)
    workers = team_workers(probe_seconds)
    if len(workers) != team - 1:
        return False
    try:
        for tid, core in zip([me, *workers], cores):
            os.sched_setaffinity(tid, {core})
    except OSError:  # a core this process may not use after all: leave every thread free again
        for tid in [me, *workers]:
            try:
                os.sched_setaffinity(tid, allowed)
            except OSError:
                pass
        return False
    return True


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
_MiB = 1 << 20


def _mallopt(*settings: tuple[int, int]) -> bool:
    """Apply glibc mallopt settings; False where there is no glibc (macOS, Windows, musl)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return all(mallopt(param, value) == 1 for param, value in settings)


def share_malloc_arenas(arenas: int = 2) -> bool:
    """Let all threads of this process share at most `arenas` glibc malloc arenas (call it early).

    A web server runs each request on one of many threads, and glibc gives threads arenas of
    their own (up to 8 per core); memory freed in one is not reused by another, so a long live
    run's resident memory creeps up (bench/long_run_memory.py). The app calls this; the CLI,
    one training thread, does not need it.
    """
    return _mallopt((_M_ARENA_MAX, arenas))


def keep_freed_memory() -> bool:
    """Make glibc keep freed blocks up to 32 MiB in the heap instead of unmapping them (process-wide).

    A CPU training step frees and re-allocates the same tensors every step (the seed's fc weight
    gradients are 25 MiB each). By default glibc serves those with fresh mmaps or trims the heap
    after they are freed, so each step page-faults the memory in again: 2,200 faults and about
    15 % of a seed step at batch 10 on the 2-core machine (`bench/throughput.py` shows the gain).
    Memory freed by one step is reused by the next, so a training process's peak memory does not
    change; its heap just keeps up to 128 MiB of free space. A server with many threads keeps more
    (each thread's malloc arena may: +180 MB in tests/test_soak.py), so the CLI and the benchmarks
    call this and the app does not. Returns False where there is no glibc (macOS, Windows, musl).
    """
    # 32 MiB is glibc's upper bound for the mmap threshold. Setting either turns off glibc's own
    # (too timid) adjustment of both; 128 MiB was the smallest trim threshold that kept the seed at
    # batch 10 and 64 free of page faults (bench/throughput.py measures with it).
    return _mallopt((_M_MMAP_THRESHOLD, 32 * _MiB), (_M_TRIM_THRESHOLD, 128 * _MiB))


def fast_bf16(device: torch.device) -> bool:
    """True where bfloat16 matmuls and convs run natively: recent NVIDIA GPUs, Apple MPS, and x86
    CPUs with AVX-512 BF16 or AMX (elsewhere oneDNN emulates them, slower than fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "mps":
        return True
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private, hence the getattr
    return torch.backends.mkldnn.is_available() and any(getattr(torch.cpu, c, lambda: False)() for c in checks)
