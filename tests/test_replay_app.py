"""The pretrained model's recorded training on the Train tab (demo/replay_view.py): frames drawn from a real
recorded run, Play from noise to the end, the slider, a damaged or missing recording; the same through
gradio_client and in a real browser (one click shows the recording, and how long that took)."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from PIL import Image

from demo.harness.browser import open_app, serious_violations
from demo.harness.launch import serving
from demo.harness.marks import needs_chromium
from demo.harness.replay import record_replay
from demo import replay_view
from demo.context import load_context, load_pretrained, recorded_curves
from demo.replay_view import ReplayView
from demo.ui import D_CURVES, start_curves
from gancls.data import load_embedded
from gancls.draw import labelled_grid
from gancls.judge import load_judge
from gancls.replay import load_replay, replay_path

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(scope="module")
def replay_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 'small' model trained 60 steps on the embedded subset, with its recorded training beside it."""
    out = tmp_path_factory.mktemp("replayed")
    record_replay(out, load_embedded(), steps=60, eval_every=20, judge=load_judge(), eval_per_label=5)
    return out


def view_on(checkpoint: Path, tmp_path: Path) -> ReplayView:
    return ReplayView(load_context(checkpoint=str(checkpoint), work_dir=str(tmp_path / "work"),
                                   runs_dir=tmp_path / "runs"))


def test_frames_follow_the_recording(replay_dir: Path, tmp_path: Path) -> None:
    replay = load_replay(replay_dir)
    view = view_on(replay_dir, tmp_path)
    assert view.available and len(replay.steps) >= 4
    panel, index, grid, loss, d, judge, caption = view.open()
    assert index == 0 and panel.visible is True and f"**Step {replay.steps[0]:,}**" in caption
    # The recorded grid itself, one labelled row per digit (drawn as the live grid is).
    assert np.array_equal(np.array(Image.open(grid)), labelled_grid(replay.grids[0], range(10), replay.cols, scale=2))
    rows = []
    for i, step in enumerate(replay.steps):
        _, grid, loss, d, judge, caption = view.show(i)
        assert f"**Step {step:,}** of {replay.steps[-1]:,}" in caption
        assert loss["step"].max() <= max(step, replay.metrics[0]["step"]) and set(d["curve"]) == {
            "D(real, right label)", "D(fake, right label)", "D(real, wrong label)"}
        assert list(view.frame(i).judge["step"]) == [e["step"] for e in replay.evals if e["step"] <= step]
        assert judge.equals(view.frame(i).judge)
        rows.append(len(loss))
    assert rows == sorted(rows) and rows[-1] > rows[0]  # the curves grow up to the step shown
    last = np.array(Image.open(view.show(len(replay.steps) + 5)[1]))  # past the end: the last frame
    assert np.array_equal(last, np.array(Image.open(grid)))
    assert "judge:" in caption and "in this grid:" in caption


def test_play_runs_from_noise_to_the_end_and_resumes_where_the_slider_is(replay_dir: Path, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    def played(index: int) -> list[int]:
        async def frames() -> list[int]:
            return [out[0] async for out in view.play(index)]
        return asyncio.run(frames())

    monkeypatch.setattr(replay_view.asyncio, "sleep", sleep)
    view = view_on(replay_dir, tmp_path)
    n = len(load_replay(replay_dir).steps)
    assert played(n - 1) == list(range(n))  # at the end: from the start again
    # Each frame but the last stays up PLAY_SECONDS / n (within FRAME_SECONDS), less the time it took to send;
    # the event ends with the last frame.
    pause = min(max(replay_view.PLAY_SECONDS / n, replay_view.FRAME_SECONDS[0]), replay_view.FRAME_SECONDS[1])
    assert len(slept) == n - 1 and all(0 <= s <= pause for s in slept) and sum(slept) > 0.5 * (n - 1) * pause
    assert played(2) == list(range(2, n))


def test_no_recording_no_button_and_a_damaged_one_says_so(tiny_checkpoint: Path, replay_dir: Path,
                                                          tmp_path: Path) -> None:
    assert not replay_path(tiny_checkpoint).exists()
    view = view_on(tiny_checkpoint, tmp_path)
    assert not view.available
    with gr.Blocks() as blocks:
        view.build()
    assert not blocks.blocks, "no recording: nothing on the page"
    broken = tmp_path / "broken"
    shutil.copytree(replay_dir, broken)
    replay_path(broken).write_bytes(b"PK\x03\x04 not really a zip")
    view = view_on(broken, tmp_path)
    assert view.available  # the file is there, so the button is; pressing it explains
    with gr.Blocks():
        view.build()
    with pytest.raises(gr.Error, match="not a readable replay"):
        view.open()


def test_a_bug_while_replaying_is_an_internal_error_not_the_users(replay_dir: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    view = view_on(replay_dir, tmp_path)

    def broken(index: Any) -> Any:
        raise ValueError("planted: index 7 is out of bounds for dimension 0 with size 3")  # as torch says it
    monkeypatch.setattr(view, "frame", broken)

    async def play() -> list:
        return [v async for v in view.play(0)]
    for endpoint in (lambda: view.show(1), lambda: asyncio.run(play())):  # the slider, and Play (a stream)
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="demo.ui"), pytest.raises(gr.Error) as shown:
            endpoint()
        message = shown.value.message
        assert message.startswith("Internal error — this is a bug, not your input") and "planted" not in message
        ref = message.rsplit("(ref ", 1)[1].rstrip(")")
        assert ref in caplog.records[0].getMessage() and "planted: index 7" in caplog.text
        assert "Traceback" in caplog.text


def test_a_damaged_recording_says_so_when_played(replay_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(replay_dir, broken)
    replay_path(broken).write_bytes(b"PK\x03\x04 not really a zip")
    view = view_on(broken, tmp_path)

    async def play() -> list:
        return [v async for v in view.play(0)]
    with pytest.raises(gr.Error) as shown:
        asyncio.run(play())
    assert shown.value.message == "Replay.npz is not a readable replay (BadZipFile)"  # the user's file, as it was


@pytest.fixture(scope="module")
def replay_url(replay_dir: Path, data_dir: Path | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app with the recorded model as its pretrained one."""
    with serving(replay_dir, tmp_path_factory.mktemp("replay_app"), data_dir) as app:
        yield app["url"]


@pytest.mark.slow
def test_replay_endpoints(replay_url: str, replay_dir: Path) -> None:
    client = Client(replay_url, verbose=False)
    steps = load_replay(replay_dir).steps
    index, grid, _loss, _d, _judge, caption = client.predict(api_name="/replay_open")[-6:]  # (the section is no output)
    assert index == 0 and Path(grid).is_file() and f"**Step {steps[0]:,}**" in caption
    frame = client.predict(2, api_name="/replay_frame")
    assert frame[0] == 2 and f"**Step {steps[2]:,}**" in frame[-1]
    assert f"**Step {steps[-1]:,}**" in client.predict(len(steps) - 1, api_name="/replay_frame")[-1]
    with pytest.raises(AppError, match="greater than maximum"):
        client.predict(len(steps), api_name="/replay_frame")


@pytest.mark.slow
@needs_chromium
@pytest.mark.parametrize("viewport", [(1280, 1000), (390, 844)], ids=["desktop", "phone"])
def test_one_click_shows_the_recorded_training(browser, replay_url: str, replay_dir: Path, viewport) -> None:
    steps = load_replay(replay_dir).steps
    ARTIFACTS.mkdir(exist_ok=True)
    page = open_app(browser, replay_url, *viewport, ready="#replay-btn")
    assert not page.is_visible("#replay-grid")
    t0 = time.monotonic()
    page.click("#replay-btn")
    page.wait_for_selector("#replay-grid img")
    page.wait_for_selector("#replay-d canvas, #replay-d svg")
    shown = time.monotonic() - t0
    (ARTIFACTS / f"replay-open-{viewport[0]}.json").write_text(json.dumps({"click_to_view_s": shown}))
    print(f"click to recorded training shown: {shown:.2f} s")  # a figure for the log: bench/replay_open.py measures it
    # Play started by itself: the caption moves to later steps, up to the last.
    page.wait_for_function(f"() => document.querySelector('#replay-caption').innerText.includes("
                           f"'Step {steps[-1]:,}')", timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / f"replay-{viewport[0]}.png"), full_page=True)
    found = serious_violations(page)  # axe-core on the open section
    assert found == [], json.dumps(found, indent=1)
    # Scrub back: the slider's number box takes a frame and the caption follows; then forward by keyboard.
    box = page.locator("#replay-slider input[type=number]")
    box.fill("1")
    box.press("Enter")
    page.wait_for_function(f"() => document.querySelector('#replay-caption').innerText.includes("
                           f"'Step {steps[1]:,} of')")
    page.locator("#replay-slider input[type=range]").press("ArrowRight")
    page.wait_for_function(f"() => document.querySelector('#replay-caption').innerText.includes("
                           f"'Step {steps[2]:,} of')")
    page.click("#replay-close")
    page.wait_for_selector("#replay-grid", state="hidden")
    assert page.is_visible("#train-btn")
    page.context.close()


def test_the_shipped_model_shows_its_recorded_curves_before_any_run(tiny_checkpoint: Path, replay_dir: Path,
                                                                    tmp_path: Path) -> None:
    # Its checkpoint holds no history (scripts/train_pretrained.py); the Train tab's plots take the replay's.
    model, _note, history, *_rest, meta = load_pretrained(None)
    assert meta["history"] == [] and len(history) > 100
    assert history[-1]["step"] == meta["step"] and history[0]["step"] < 50
    loss, d = start_curves(history)
    assert loss["step"].nunique() > 50 and set(d["curve"]) == set(D_CURVES.values())
    assert recorded_curves(tiny_checkpoint) == []  # no replay beside it
    broken = tmp_path / "broken"
    shutil.copytree(replay_dir, broken)
    replay_path(broken).write_bytes(b"PK\x03\x04 not really a zip")
    assert recorded_curves(broken / "gancls.safetensors") == []  # a damaged one: no curves, no error
