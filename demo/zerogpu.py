"""ZeroGPU Spaces: train on a borrowed GPU in short chunks; between chunks all state lives on the CPU.

On a ZeroGPU Space (the `spaces` package importable and $SPACES_ZERO_GPU set) a function decorated
with `@spaces.GPU` gets a GPU only while it runs, possibly in another process. Each chunk therefore
moves the trainer to cuda, runs `trainer.run(max_seconds=chunk)`, moves everything back to the CPU
and returns that CPU state, which the main process loads: nothing trained is lost when a chunk ends.
Without `spaces` none of this is imported and the app trains in-process as usual.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from typing import Any, Callable, Iterator

from gancls.train import Event, Finished, Started, Trainer

CHUNK_SECONDS = 10.0  # a Stop waits at most this long on ZeroGPU (the GPU process cannot see the stop flag)


def zero_gpu_available() -> bool:
    """True on a ZeroGPU Space."""
    return bool(os.environ.get("SPACES_ZERO_GPU")) and importlib.util.find_spec("spaces") is not None


def snapshot(trainer: Trainer) -> dict[str, Any]:
    """Everything a chunk changed, on the CPU, picklable."""
    return {
        "model": {k: v.detach().cpu() for k, v in trainer.model.state_dict().items()},
        "train": {k: v.detach().cpu() for k, v in trainer.train_state().items()},
        "counters": {k: getattr(trainer, k) for k in ("step_count", "images_seen", "train_seconds")},
        "history": list(trainer.history), "samples_history": list(trainer.samples_history),
        "last_metrics": dict(trainer.last_metrics),
    }


def restore(trainer: Trainer, state: dict[str, Any]) -> None:
    """Load a chunk's snapshot into the main process's (CPU) trainer."""
    trainer.model.load_state_dict(state["model"])
    for k, v in state["counters"].items():
        setattr(trainer, k, v)
    trainer.load_train_state(state["train"])
    trainer.history, trainer.samples_history = state["history"], state["samples_history"]
    trainer.last_metrics = state["last_metrics"]


def run_chunk(trainer: Trainer, seconds: float) -> tuple[dict[str, Any], list[Event]]:
    """Train for `seconds` on cuda; return the CPU snapshot and the chunk's events."""
    trainer.to("cuda")
    try:
        events = list(trainer.run(max_seconds=seconds))
    finally:
        trainer.to("cpu")
    return snapshot(trainer), events


def make_gpu_chunk(chunk_seconds: float = CHUNK_SECONDS) -> Callable[[Trainer, float], tuple[dict, list[Event]]]:
    """`run_chunk` under `@spaces.GPU` (call once, when the app is built: ZeroGPU wants it before launch)."""
    import spaces  # only on ZeroGPU

    return spaces.GPU(duration=int(chunk_seconds) + 30)(run_chunk)


def chunked_run(chunk: Callable[[Trainer, float], tuple[dict, list[Event]]], trainer: Trainer,
                stop: threading.Event, max_seconds: float | None,
                chunk_seconds: float = CHUNK_SECONDS) -> Iterator[Event]:
    """Like `trainer.run(stop, max_seconds)`, but in GPU chunks; events arrive once per chunk."""
    t0, first = time.monotonic(), True
    while True:
        left = None if max_seconds is None else max_seconds - (time.monotonic() - t0)
        seconds = chunk_seconds if left is None else max(0.1, min(chunk_seconds, left))
        state, events = chunk(trainer, seconds)
        restore(trainer, state)
        end = None
        for event in events:
            if isinstance(event, Finished):
                end = event
            elif not (isinstance(event, Started) and not first):
                yield event
        first = False
        assert end is not None, "trainer.run() always ends with Finished"
        out_of_time = left is not None and left <= chunk_seconds
        if end.reason != "time" or out_of_time or stop.is_set():
            if end.reason == "time" and not out_of_time:
                end = Finished(end.step, "stopped", "stopped on request", end.path)
            yield end
            return
