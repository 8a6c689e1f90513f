"""A whole class on one server: share / watch / join through gradio_client, bad codes, the visible queue,
the server's cap, lesson links and the class-code rules."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from demo.harness.clients import wait_outputs
from demo.classroom import CODE_ALPHABET, CODE_FORMAT, Classroom, new_code, read_lesson
from demo.gate import TrainingGate
from demo.pipeline import run_events
from demo.session import Session

# device, data, seconds, epochs, max_steps, arch, batch, lr_d, lr_g, seed, objective, loss
SMALL = ["auto", "embedded", 30, 0, 0, "small", 32, 4e-4, 1e-3, 0, "gan-cls", "lsgan"]


def png(path: str) -> np.ndarray:
    return np.array(Image.open(path))


def step_of(status: str) -> int:
    return int(status.split("step <b>")[1].split("<")[0].split(" ")[0].replace(",", ""))


def test_share_watch_join_and_watchers_cannot_control_the_run(app_url: str, tmp_path: Path) -> None:
    owner, watcher, stranger = (Client(app_url, verbose=False) for _ in range(3))
    with pytest.raises(AppError, match="(?i)nothing to share yet"):
        owner.predict(api_name="/share")
    job = owner.submit(*SMALL, api_name="/train")
    wait_outputs(job, 2)
    code = owner.predict(api_name="/share")
    assert CODE_FORMAT.fullmatch(code) and owner.predict(api_name="/share") == code  # one code per run

    assert code in watcher.predict(code.lower(), api_name="/join")  # codes are read case-insensitively
    watch = watcher.submit(code, api_name="/watch")
    outs = wait_outputs(watch, 3, timeout=30)
    steps = [step_of(o[0]) for o in outs]
    assert steps == sorted(steps) and steps[-1] > steps[0], "the watcher's view follows the run"
    assert all(c in {c for _, _, c in outs[-1][2]["data"]} for c in ("D(real, right label)", "D(fake, right label)"))
    assert any(isinstance(o[3], str) and png(o[3]).ndim >= 2 for o in outs), "the fixed-noise grid is sent"
    assert "Live: class run" in outs[-1][0]

    # The watcher's buttons act on the watcher's own session only.
    assert "Nothing is training" in watcher.predict(api_name="/stop")
    with pytest.raises(AppError, match="othing to resume"):
        watcher.predict(30, 0, 0, api_name="/resume")
    with pytest.raises(AppError, match="(?i)no checkpoint yet"):
        watcher.predict(api_name="/download")
    # The owner's run goes on training after the watcher's Stop (a stop ends a run before its next step).
    stopped_at, deadline = step_of(watch.outputs()[-1][0]), time.monotonic() + 60  # the deadline: a hang guard
    while not job.done() and step_of(watch.outputs()[-1][0]) <= stopped_at:
        assert time.monotonic() < deadline, "the watcher's view shows no step after the watcher's Stop"
        time.sleep(0.05)
    assert not job.done(), "a watcher's Stop must not stop the owner's run"

    # While the run trains, the joined session's model is a snapshot of it, not the pretrained one.
    pretrained = png(stranger.predict([3], 4, 0, False, api_name="/generate")[0])
    assert not np.array_equal(png(watcher.predict([3], 4, 0, False, api_name="/generate")[0]), pretrained)

    assert owner.predict(api_name="/stop") == "Stopping…"
    final = job.result(timeout=30)
    watch.result(timeout=30)  # the watch stream ends with the run
    assert "Stopped at step" in watch.outputs()[-1][0] or "not training now" in watch.outputs()[-1][0]

    # After the run: the joined session uses exactly the owner's final model (Generate and Probe).
    mine = png(owner.predict([3], 4, 0, False, api_name="/generate")[0])
    theirs = png(watcher.predict([3], 4, 0, False, api_name="/generate")[0])
    assert np.array_equal(mine, theirs) and not np.array_equal(mine, pretrained)
    canvas = np.full((280, 280), 255, np.uint8)
    canvas[60:220, 130:150] = 0  # a drawn "1"
    Image.fromarray(canvas).save(tmp_path / "one.png")
    digit = handle_file(str(tmp_path / "one.png"))
    owner_scores = owner.predict(digit, api_name="/label_scores")
    assert owner_scores == watcher.predict(digit, api_name="/label_scores")
    assert owner_scores != stranger.predict(digit, api_name="/label_scores")
    assert "trained for" in final[4]

    # Reset on the watcher's page goes back to the pretrained model; the owner keeps theirs.
    assert "pretrained" in watcher.predict(api_name="/reset")[4]
    assert np.array_equal(png(watcher.predict([3], 4, 0, False, api_name="/generate")[0]), pretrained)
    assert "trained for" in owner.predict(api_name="/using")
    # After the run, a new watch shows the final view once and ends.
    assert len(watcher.submit(code, api_name="/watch").result(timeout=20)) == 4
    owner.predict(api_name="/reset")


@pytest.mark.parametrize("code, message", [
    ("", "no class code"),
    ("   ", "no class code"),
    ("ABC", "is not a class code"),
    ("ABCDE0", "is not a class code"),  # 0 is not in the alphabet
    ("<script>alert(1)</script>", "is not a class code"),
    ("x" * 5000, "is not a class code"),
    ("ZZZZZZ", "unknown or expired class code"),
])
@pytest.mark.parametrize("endpoint", ["/join", "/watch"])
def test_bad_codes_get_a_clear_message(app_url: str, code: str, message: str, endpoint: str) -> None:
    client = Client(app_url, verbose=False)
    with pytest.raises(AppError) as err:
        client.predict(code, api_name=endpoint)
    assert message.lower() in str(err.value).lower() and "Traceback" not in str(err.value)


def test_a_waiting_trainer_sees_its_place_and_when_it_starts(app_url: str) -> None:
    first, second = Client(app_url, verbose=False), Client(app_url, verbose=False)
    running = first.submit(*SMALL, api_name="/train")
    wait_outputs(running, 2)
    waiting = second.submit(*SMALL, api_name="/train")
    status = wait_outputs(waiting, 1)[0][0]
    assert "Waiting for a training slot" in status and "place in line" in status and "estimated start" in status
    assert "Press Stop to leave the line" in status
    assert second.predict(api_name="/stop") == "Stopping…"  # Stop leaves the line
    with pytest.raises(AppError, match="(?i)stopped before the run started"):
        waiting.result(timeout=20)
    first.predict(api_name="/stop")
    running.result(timeout=30)


def test_a_run_capped_by_the_server_says_so(app_url: str) -> None:
    client = Client(app_url, verbose=False)
    job = client.submit("auto", "embedded", 0, 0, 4, "small", 32, 4e-4, 1e-3, 0, "gan-cls", "lsgan", api_name="/train")
    job.result(timeout=60)
    notes = [o[6] for o in job.outputs()]
    assert any("caps each run at 3600 s" in n for n in notes), notes


def test_estimated_start_counts_the_runs_ahead() -> None:
    gate = TrainingGate(slots=1, max_waiting=8)
    a, b, c = (Session(id=k, run_dir=Path("/nonexistent") / k) for k in "abc")
    with gate.place(a, 60) as wait_a:
        assert wait_a(0) == 0
        with gate.place(b, 30) as wait_b, gate.place(c, 30) as wait_c:
            assert (wait_b(0), wait_c(0)) == (1, 2)
            assert 58 < gate.estimated_start("b") <= 60 and 88 < gate.estimated_start("c") <= 90
            assert gate.estimated_start("a") is None  # running, not waiting
    two = TrainingGate(slots=2, max_waiting=8)
    with two.place(a, 60) as wa, two.place(b, 10) as wb, two.place(c, 30):
        wa(0), wb(0)
        assert 8 < two.estimated_start("c") <= 10  # the slot that frees first


def test_class_codes_are_random_and_end_with_the_owner(tmp_path: Path) -> None:
    codes = {new_code() for _ in range(2000)}
    assert len(codes) > 1990 and all(CODE_FORMAT.fullmatch(c) for c in codes)
    assert not set("01OIL") & set(CODE_ALPHABET)
    room = Classroom()
    owner_session = Session(id="owner_session", run_dir=tmp_path / "run", model=object())  # has a run
    shared = room.share(owner_session)
    assert room.find(f" {shared.code.lower()} ") is shared
    room.end(owner_session)
    assert shared.ended
    with pytest.raises(ValueError, match="unknown or expired"):
        room.find(shared.code)


def test_snapshots_are_taken_between_steps_and_close_the_run(tmp_path: Path) -> None:
    room = Classroom()
    owner_session = Session(id="owner_session", run_dir=tmp_path / "run", model=object())
    shared = room.share(owner_session)
    closed = threading.Event()

    class FakeTrainer:
        step_count = 7
        model = __import__("torch").nn.Linear(2, 2)

    def events():
        try:
            yield "metrics"
            yield "more"
        finally:
            closed.set()

    stream = run_events(events(), [lambda event: room.snapshot(owner_session, FakeTrainer())])
    assert next(stream) == "metrics"
    model, steps = shared.model()
    assert steps == 7 and model is not FakeTrainer.model and not model.training
    stream.close()
    assert closed.is_set(), "closing the relay closes the engine's run (it saves on its way out)"


def test_lesson_links_preset_the_page_and_note_what_they_ignore() -> None:
    lesson = read_lesson({"seconds": "30", "preset": "small", "objective": "plain", "seed": "3", "tab": "probe",
                          "present": "1", "watch": "k7qm2x"}, max_seconds=3600)
    assert (lesson.seconds, lesson.preset, lesson.objective, lesson.seed, lesson.tab, lesson.present,
            lesson.watch, lesson.notes) == (30.0, "small", "plain", 3, "probe", True, "K7QM2X", ())
    bad = read_lesson({"seconds": "9999", "preset": "huge", "seed": "-1", "tab": "nowhere", "present": "maybe",
                       "watch": "12", "colour": "red", "__theme": "dark"}, max_seconds=600)
    assert (bad.seconds, bad.preset, bad.seed, bad.tab, bad.present, bad.watch) == (None, None, None, None, False,
                                                                                     None)
    assert len(bad.notes) == 7 and any("greater than 0 and at most 600" in n for n in bad.notes)
    assert any("unknown link setting" in n and "colour" in n for n in bad.notes)


def test_lesson_links_check_seeds_and_budgets_as_the_train_form_does() -> None:
    from gancls import validate
    from gancls.errors import UserError

    # One seed limit for the whole app: the validators', not a lesson-link limit of its own.
    assert read_lesson({"seed": str(validate.MAX_SEED)}, max_seconds=60).seed == validate.MAX_SEED
    too_big = read_lesson({"seed": str(validate.MAX_SEED + 1), "seconds": "0"}, max_seconds=60)
    assert too_big.seed is None and too_big.seconds is None
    with pytest.raises(UserError) as seed_error:
        validate.seed("seed", validate.MAX_SEED + 1)
    assert any(n.startswith("`seed=") and "whole number from 0 to 2\\*\\*63-1" in n for n in too_big.notes)
    assert str(seed_error.value).startswith("seed must be a whole number from 0 to 2**63-1")
    assert any(n.startswith("`seconds=0`") and "greater than 0 and at most 60" in n for n in too_big.notes)
    # Numbers as a link spells them: whole floats are whole numbers, text and NaN are refused with the reason.
    ok = read_lesson({"seed": "3.0", "seconds": "2.5"}, max_seconds=60)
    assert (ok.seed, ok.seconds, ok.notes) == (3, 2.5, ())
    nan = read_lesson({"seed": "three", "seconds": "nan"}, max_seconds=60)
    assert (nan.seed, nan.seconds) == (None, None) and len(nan.notes) == 2


def test_lesson_notes_cannot_put_links_or_markup_on_the_page() -> None:
    notes = read_lesson({"tab": "[prize](http://example.com) <img src=x>"}, max_seconds=60).notes
    assert len(notes) == 1 and "\\[prize\\](http://example.com) \\<img src=x\\>" in notes[0]


def test_a_newly_kept_run_is_trimmed_to_the_quota_at_once(tmp_path: Path) -> None:
    from demo.store import WEIGHTS_NAME, SessionStore

    keep = tmp_path / "runs"
    keep.mkdir()
    store = SessionStore(tmp_path / "live", keep_root=keep, runs_quota=2.5 * 2**20)
    store.prune()  # the minutely prune: nothing to do yet, and the next full one is a minute away

    def kept(name: str, age: float) -> Path:
        run = keep / (name * 32)
        run.mkdir()
        (run / WEIGHTS_NAME).write_bytes(b"\0" * 2**20)
        os.utime(run, (time.time() - age, time.time() - age))
        return run

    old, mid, new = kept("a", 30), kept("b", 20), kept("c", 0)  # 3 MB: over the 2.5 MB quota
    assert store.prune() == 1, "a run kept between two minutely prunes is trimmed for at the next call"
    assert not old.exists() and mid.exists() and new.exists()
    assert store.prune() == 0
