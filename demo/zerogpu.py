"""ZeroGPU Spaces: train on a borrowed GPU in short chunks; between chunks all state lives on the CPU.

On a ZeroGPU Space (the `spaces` package importable and $SPACES_ZERO_GPU set) a function decorated
with `@spaces.GPU` gets a GPU only while it runs, possibly in another process. Each chunk therefore
moves the trainer to cuda, runs one slice of the run (`trainer.run(budget, slice_seconds=chunk)`),
moves everything back to the CPU and returns `trainer.state_dict()`, which the main process loads: nothing trained is lost when a chunk ends.
Without `spaces` none of this is imported and the app trains in-process as usual.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from typing import Any, Callable, Iterator

from gancls.config import Budget
from gancls.train import Event, Paused, Trainer

CHUNK_SECONDS = 10.0  # a Stop waits at most this long on ZeroGPU (the GPU process cannot see the stop flag)


def zero_gpu_available() -> bool:
    """True on a ZeroGPU Space."""
    return bool(os.environ.get("SPACES_ZERO_GPU")) and importlib.util.find_spec("spaces") is not None


def run_chunk(trainer: Trainer, budget: Budget, seconds: float) -> tuple[dict[str, Any], list[Event]]:
    """Train for `seconds` of `budget`'s run on cuda; return the trainer's CPU state and the chunk's events."""
    trainer.to("cuda")
    try:
        events = list(trainer.run(budget, slice_seconds=seconds))
    finally:
        trainer.to("cpu")
    return trainer.state_dict(), events


def make_gpu_chunk(chunk_seconds: float = CHUNK_SECONDS) -> Callable[[Trainer, float], tuple[dict, list[Event]]]:
    """`run_chunk` under `@spaces.GPU` (call once, when the app is built: ZeroGPU wants it before launch)."""
    import spaces  # only on ZeroGPU

    return spaces.GPU(duration=int(chunk_seconds) + 30)(run_chunk)


def chunked_run(chunk: Callable[[Trainer, Budget, float], tuple[dict, list[Event]]], trainer: Trainer,
                stop: threading.Event, budget: Budget, chunk_seconds: float = CHUNK_SECONDS) -> Iterator[Event]:
    """Like `trainer.run(budget, stop)`, but in GPU chunks; events arrive once per chunk.

    The GPU process cannot see `stop`, so it is checked between chunks; a stop then ends the run
    here, on the CPU (which saves it).
    """
    while True:
        state, events = chunk(trainer, budget, chunk_seconds)
        trainer.load_state_dict(state)
        for event in events:
            if not isinstance(event, Paused):
                yield event
        if not trainer.running:  # the chunk ended the run (budget spent, or diverged)
            return
        if stop.is_set():
            yield from trainer.run(stop=stop)
            return
