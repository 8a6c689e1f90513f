"""Where the app's torch work runs: training on threads of its own with all the cores, the rest on one.

PyTorch's CPU ops run on OpenMP (GNU libgomp). libgomp keeps a pool of worker threads for every
thread that has run a parallel region with more than one thread, and once there are more such
workers than CPUs it stops spin-waiting between parallel regions and sleeps instead, which costs a
wake-up per op. In the app, Gradio runs handlers on many threads; before this, any of them that had
run torch with two threads (even the startup code on the main thread) made training 25-30 % slower
on a 2-core machine (`bench/ui_overhead.py`). So training runs on long-lived threads created here
with `train_threads` torch threads each, every other thread runs torch with one (no pool), and the
handler that streams a run to the browser only relays its events.

Where the cores allow it, each training thread and its OpenMP workers are also pinned to cores of
their own (gancls.device.pin_compute_team), so the kernel does not move them about when a browser or
the server wakes up.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Generator, Iterator, TypeVar

import torch

from gancls.device import pin_compute_team

T = TypeVar("T")


class ComputeThreads:
    """`workers` training threads with `threads` torch threads each; all threads made later get one.

    With `pin_cores` (and workers × threads ≤ the usable cores), worker i's team runs on cores
    [i·threads, (i+1)·threads) of this process's CPUs; `self.pinned` says whether every team got
    its cores. Build it before any other torch work in the process (it sets the process default to
    1 thread), while nothing else runs.
    """

    def __init__(self, threads: int, workers: int = 1, pin_cores: bool = True):
        if threads < 1 or workers < 1:
            raise ValueError(f"need at least one training thread and one worker (got {threads}, {workers})")
        self.threads = threads
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gancls-train")
        started = threading.Barrier(workers + 1, timeout=60)  # a worker that cannot start fails this, not hangs
        cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        pin_cores = pin_cores and threads > 1 and workers * threads <= len(cores)
        turn = threading.Lock()  # one team at a time: pin_compute_team finds a team by the CPU it uses
        slots = iter(range(workers))

        def start() -> bool:
            # torch fixes a thread's OpenMP team size from the process default the first time the
            # thread asks (get_num_threads); after that the default can change under it.
            torch.set_num_threads(threads)
            torch.get_num_threads()
            started.wait()
            if not pin_cores:
                return False
            with turn:
                i = next(slots)
                return pin_compute_team(cores[i * threads:(i + 1) * threads])

        workers_started = [self._pool.submit(start) for _ in range(workers)]  # each waits, so each gets a thread
        started.wait()
        self.pinned = all([f.result() for f in workers_started])
        torch.set_num_threads(1)  # this thread and every thread made from now on (Gradio's handlers)

    def call(self, fn: Callable[..., T], *args, **kwargs) -> T:
        """fn(*args, **kwargs) on a training thread (e.g. a heavy evaluation); waits for the result."""
        return self._pool.submit(fn, *args, **kwargs).result()

    def stream(self, make: Callable[[], Generator[T, None, None]], abandon_after: float = 120.0) -> Iterator[T]:
        """Iterate `make()` on a training thread, yielding its items here as they come.

        Training does not wait for the consumer. Closing this generator (the visitor left) closes
        the iterator on its thread at its next item, which lets the engine save, and waits for that.
        A consumer that takes nothing for `abandon_after` seconds counts as gone too, so a run
        nobody watches cannot hold a training thread.
        """
        items: queue.SimpleQueue = queue.SimpleQueue()  # (kind, value): item | error | done
        cancel = threading.Event()
        taken = [time.monotonic()]  # when the consumer last took an item

        def work() -> None:
            try:
                source = make()
                try:
                    for item in source:
                        items.put(("item", item))
                        # Gone: items wait in the queue and nothing was taken for a while.
                        if cancel.is_set() or (items.qsize() > 1 and time.monotonic() - taken[0] > abandon_after):
                            break
                finally:
                    source.close()  # a generator: runs its cleanup (the engine saves) here, on this thread
            except BaseException as e:  # noqa: BLE001 - re-raised in the consumer's thread
                items.put(("error", e))
            finally:
                items.put(("done", None))

        future = self._pool.submit(work)
        try:
            while True:
                kind, value = items.get()
                taken[0] = time.monotonic()
                if kind == "item":
                    yield value
                elif kind == "error":
                    raise value
                else:
                    return
        finally:
            cancel.set()
            future.result()

    def close(self) -> None:
        """Let the training threads end once idle (used by tests that build many apps)."""
        self._pool.shutdown(wait=False)
