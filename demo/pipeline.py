"""One run's pipeline: what runs on the training thread besides training, composed and closed in one place.

The engine yields events between steps (gancls.train). At each event the hooks run in order, on the thread
that trains, where no step is in progress:

1. the class run's model snapshot for joined sessions (`Classroom.snapshot`, demo/classroom.py);
2. the live judge's reading of the grid (`LiveJudge`, demo/live_judge.py), within its share of the time;
3. the kept copy of each autosave in the runs folder (`KeptCopy`), so a crash loses at most one interval.

A hook returns the events it adds (or None); they come just before the event it saw. The engine's run is
closed once, here, whoever stops iterating (the run ended, Stop, the visitor left), so it saves on its way
out. What the browser is sent (the status, plots, grid and the class run's published view) is built by the
Train tab from these events on the thread that relays them (demo/live.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

from gancls.config import Budget
from gancls.train import CheckpointSaved, Event, Trainer

from .live_judge import GridJudged, LiveJudge
from .session import Session
from .zerogpu import chunked_run

if TYPE_CHECKING:
    from .context import AppContext
    from .store import SessionStore

Hook = Callable[[Any], Iterable[Any] | None]  # event -> the events to add just before it


def run_events(events: Iterator[Any], hooks: Sequence[Hook]) -> Iterator[Any]:
    """`events` with every hook run at each one, in order; what a hook returns comes just before the event.
    Closing this (or an error in a hook) closes `events`: a generator's run ends and saves."""
    try:
        for event in events:
            for hook in hooks:
                yield from hook(event) or ()
            yield event
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()


class KeptCopy:
    """A hook: after each autosave, the run's checkpoint also goes to the runs folder (Session.keep_copy), so a
    server killed mid-run loses at most the autosave interval and Restore finds the run after a restart."""

    def __init__(self, session: Session, store: SessionStore):
        self.session, self.store = session, store

    def __call__(self, event: Any) -> None:
        if isinstance(event, CheckpointSaved):
            self.session.keep_copy()
            self.store.prune()  # the runs folder stays within its quota (a stat unless something changed)


def hooks(ctx: AppContext, session: Session, trainer: Trainer) -> list[Hook]:
    """The work beside training for `session`'s run of `trainer`, in the order it runs at each event."""
    return [lambda event: ctx.classroom.snapshot(session, trainer), LiveJudge(ctx.judge()),
            KeptCopy(session, ctx.store)]


def run_pipeline(ctx: AppContext, session: Session, trainer: Trainer,
                 budget: Budget) -> Iterator[Event | GridJudged]:
    """The events of `session`'s run of `trainer` within `budget`, for the Train tab to relay: trained on one
    of the app's training threads with the hooks beside it (on ZeroGPU: in GPU chunks, the hooks here)."""
    steps = hooks(ctx, session, trainer)  # built here: the judge loads on this thread, not the training one
    if ctx.gpu_chunk is not None:
        return run_events(chunked_run(ctx.gpu_chunk, trainer, session.stop, budget), steps)
    return ctx.compute.stream(lambda: run_events(trainer.run(budget, session.stop), steps))
