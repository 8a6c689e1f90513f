"""Session: a visitor's run state, changed only through its methods (demo/session.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from demo.session import BusyError, RunNotFoundError, Session
from gancls.checkpoint import WEIGHTS_NAME
from gancls.errors import UserError


class FakeTrainer:
    def __init__(self) -> None:
        self.saves = 0

    def save(self) -> None:
        self.saves += 1


def test_a_new_run_that_trains_nothing_gives_back_the_previous_one(tmp_path: Path) -> None:
    session = Session(id="s", run_dir=tmp_path / "run")
    old, new = FakeTrainer(), FakeTrainer()
    session.start_run(old, fine_tuned=True)
    previous = session.start_run(new, fine_tuned=False)
    assert session.trainer is new and not session.from_pretrained
    session.put_back(new, previous)
    assert session.trainer is old and session.from_pretrained  # the fine-tuning run is back, as it was
    assert old.saves == 1  # on disk too: the failed run's save had overwritten its checkpoint

    # A run replaced meanwhile (an upload, Reset) is not undone by a late put_back.
    previous = session.start_run(new, fine_tuned=False)
    session.use_upload(None, model=object(), steps=3, checkpoint=tmp_path / "up.safetensors")
    session.put_back(new, previous)
    assert session.trainer is None and session.model_steps == 3 and old.saves == 1


def test_a_first_run_that_trains_nothing_leaves_no_checkpoint(tmp_path: Path) -> None:
    session = Session(id="s", run_dir=tmp_path / "run")
    session.run_dir.mkdir()
    failed = FakeTrainer()
    previous = session.start_run(failed, fine_tuned=False)
    (session.run_dir / WEIGHTS_NAME).write_bytes(b"untrained")  # the failed run's save on its way out
    session.put_back(failed, previous)
    assert session.trainer is None and not (session.run_dir / WEIGHTS_NAME).exists()


def test_nothing_replaces_or_drops_a_run_while_it_trains(tmp_path: Path) -> None:
    session = Session(id="s", run_dir=tmp_path / "run", model=object())
    with session.training():
        with pytest.raises(BusyError, match="press Stop first, then upload"):
            session.use_upload(None, model=object(), steps=1, checkpoint=tmp_path / "up.safetensors")
        assert session.release() is False and session.model is not None
        with pytest.raises(BusyError, match="one run per visitor"):
            with session.training():
                pass
    assert session.release() is True and session.model is None and session.trainer is None


def test_joining_a_class_run_and_the_errors_meant_for_a_person(tmp_path: Path) -> None:
    session = Session(id="s", run_dir=tmp_path / "run")
    shared = object()
    session.join(shared)
    assert session.joined is shared
    session.reset()
    assert session.joined is None
    assert issubclass(BusyError, UserError) and issubclass(RunNotFoundError, UserError)
