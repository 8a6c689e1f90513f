"""The run's pipeline: hooks beside training, composed and closed in one place (demo/pipeline.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from demo.pipeline import KeptCopy, run_events
from demo.store import SessionStore
from gancls.checkpoint import WEIGHTS_NAME
from gancls.train import CheckpointSaved


class Run:
    """An engine run's stand-in: yields `events`, and records being closed (where the engine saves)."""

    def __init__(self, events: list) -> None:
        self.events, self.closed = events, 0

    def __iter__(self):
        return self

    def __next__(self):
        if not self.events:
            raise StopIteration
        return self.events.pop(0)

    def close(self) -> None:
        self.closed += 1


def test_hooks_run_in_order_and_what_they_add_comes_before_the_event() -> None:
    seen = []

    def first(event):
        seen.append(("first", event))
        return [f"{event}-note"] if event == "b" else None

    def second(event):
        seen.append(("second", event))
        return ()

    run = Run(["a", "b", "c"])
    assert list(run_events(run, [first, second])) == ["a", "b-note", "b", "c"]
    assert seen == [("first", "a"), ("second", "a"), ("first", "b"), ("second", "b"), ("first", "c"),
                    ("second", "c")]
    assert run.closed == 1, "the run is closed once, when its events end"


def test_closing_early_or_a_failing_hook_closes_the_run_once() -> None:
    run = Run(["a", "b", "c"])
    events = run_events(run, [lambda event: None])
    assert next(events) == "a"
    events.close()  # Stop, or the visitor left
    assert run.closed == 1 and run.events == ["b", "c"]

    def broken(event):
        if event == "b":
            raise RuntimeError("hook failed")

    run = Run(["a", "b", "c"])
    with pytest.raises(RuntimeError, match="hook failed"):
        list(run_events(run, [broken]))
    assert run.closed == 1 and run.events == ["c"]


def test_each_autosave_is_kept_in_the_runs_folder(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "live", keep_root=tmp_path / "runs")
    (tmp_path / "runs").mkdir()
    session = store.get("visitor")
    session.run_dir.mkdir(parents=True)
    (session.run_dir / WEIGHTS_NAME).write_bytes(b"v1")
    kept = session.keep_dir / WEIGHTS_NAME
    hook = KeptCopy(session, store)
    assert list(run_events(iter(["metrics"]), [hook])) == ["metrics"] and not kept.exists()
    saved = CheckpointSaved(10, session.run_dir / WEIGHTS_NAME)
    assert list(run_events(iter([saved]), [hook])) == [saved]
    assert kept.read_bytes() == b"v1"
    (session.run_dir / WEIGHTS_NAME).unlink()  # the engine replaces its file on save: the kept link keeps v1
    (session.run_dir / WEIGHTS_NAME).write_bytes(b"v2")
    list(run_events(iter([saved]), [hook]))
    assert kept.read_bytes() == b"v2"
