"""Every UI action of the app is an API endpoint that works from gradio_client, and bad input gives a clean error."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image


from demo.harness.clients import wait_outputs
from gancls.checkpoint import load_checkpoint

# device, data, seconds, epochs, max_steps, arch, batch, lr_d, lr_g, seed, objective, loss
SMALL = ["auto", "embedded", 30, 0, 0, "small", 32, 4e-4, 1e-3, 0, "gan-cls", "lsgan"]


def train_args(**changes) -> list:
    names = ["device", "data", "seconds", "epochs", "max_steps", "arch", "batch", "lr_d", "lr_g", "seed",
             "objective", "loss"]
    values = dict(zip(names, SMALL), **changes)
    return [values[n] for n in names]


@pytest.fixture()
def client(app_url: str) -> Client:
    return Client(app_url, verbose=False)


def png(path: str) -> np.ndarray:
    return np.array(Image.open(path))


def test_app_lists_every_action(app_server: dict, client: Client) -> None:
    # How fast it starts is bench/'s to measure (and test_grid_image's to guard: no torchvision at start-up);
    # here the fixture's wait for the first HTTP 200 is only a hang guard.
    print(f"cold start to first HTTP 200: {app_server['startup_s']:.1f} s")
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    for name in ("train", "stop", "resume", "reset", "generate", "probe", "label_scores", "random_digit",
                 "gallery_digit", "use_drawing", "download"):
        assert f"/{name}" in names


def test_no_event_touches_the_tab_bar(app_url: str) -> None:
    # Why: OPEN_TAB_JS in demo/tabs/classroom.py (every live update would re-read the whole page).
    with urllib.request.urlopen(app_url + "config", timeout=30) as r:
        config = json.load(r)
    kinds = {c["id"]: c["type"] for c in config["components"]}
    touched = {kinds[i] for dep in config["dependencies"] for i in (*dep["inputs"], *dep["outputs"])}
    assert "tabs" in kinds.values() and "html" in touched  # the scan sees the page's tab bar and run outputs
    assert "tabs" not in touched


def test_train_stop_resume_download_reset(client: Client, app_url: str) -> None:
    assert "pretrained" in client.predict(api_name="/using")
    job = client.submit(*train_args(), api_name="/train")
    outs = wait_outputs(job, 4)  # live updates while training
    steps = [int(o[1]["data"][-1][0]) for o in outs if o[1] and o[1]["data"]]
    assert steps and steps == sorted(steps)
    assert client.predict(api_name="/stop") == "Stopping…"
    status, loss, dplot, grid, using, download, note = job.result(timeout=30)  # a hang guard
    # The 30 s run ended on the request, not on its budget (the engine checks the flag before every step).
    assert "Stopped at step" in status and "gc-done" in status
    assert {c for _, _, c in dplot["data"]} == {"D(real, right label)", "D(fake, right label)", "D(real, wrong label)"}
    assert png(grid).ndim >= 2
    stopped_at = int(using.split("trained for ")[1].split(" ")[0].replace(",", ""))
    # Download is offered without the file: a checkpoint reaches Gradio's cache only when it is clicked.
    assert stopped_at > 0 and download == {"visible": True, "value": None, "__type__": "update"}

    # A bad setting is refused and the trained model is kept.
    with pytest.raises(AppError, match="learning rate"):
        client.predict(*train_args(lr_d=-1), api_name="/train")
    assert f"trained for {stopped_at:,} steps" in client.predict(api_name="/using")

    # Resume continues the same run.
    *_, using2, download2, _ = client.predict(30, 0, 5 + stopped_at, api_name="/resume")
    assert f"trained for {stopped_at + 5:,} steps" in using2
    downloaded = client.predict(api_name="/download")
    print("download returns", repr(downloaded)[:200])
    assert isinstance(downloaded, str) and load_checkpoint(downloaded).step == stopped_at + 5
    with pytest.raises(AppError, match="already done"):
        client.predict(30, 0, 5 + stopped_at, api_name="/resume")

    # Another visitor still gets the pretrained model; this one's grid differs from theirs.
    other = Client(app_url, verbose=False)
    mine = png(client.predict([3], 4, 0, False, api_name="/generate")[0])
    theirs = png(other.predict([3], 4, 0, False, api_name="/generate")[0])
    assert "pretrained" in other.predict(api_name="/using")
    assert not np.array_equal(mine, theirs)

    # Reset goes back to the pretrained model.
    out = client.predict(api_name="/reset")
    assert "pretrained" in out[4]
    assert np.array_equal(png(client.predict([3], 4, 0, False, api_name="/generate")[0]), theirs)
    with pytest.raises(AppError, match="nothing to resume|Nothing to resume"):
        client.predict(30, 0, 0, api_name="/resume")


def test_generate(client: Client) -> None:
    image, file = client.predict([7, 1], 3, 5, False, api_name="/generate")
    grid = png(image)
    assert grid.shape[0] < grid.shape[1]  # two rows of three digits, plus the label margin
    again, _ = client.predict([7, 1], 3, 5, False, api_name="/generate")
    assert np.array_equal(grid, png(again))  # same seed, same digits
    assert Path(file).name == "gancls_71_x3_seed5.png" and png(file).shape == grid.shape[:2]
    same, _ = client.predict(list(range(10)), 2, 5, True, api_name="/generate")
    assert png(same).shape[0] > grid.shape[0]


def test_probe_gallery_digit_matches_library(client: Client, tiny_checkpoint: Path, data_dir: Path | None) -> None:
    from demo.context import gallery_digits, startup_data
    from gancls.probe import label_scores

    image, real, label = client.predict(3, api_name="/gallery_digit")
    assert f"real label: {label}" in real
    digit = png(image)
    assert digit.shape == (28, 28)
    text, bars, seen = client.predict(handle_file(image), label, api_name="/probe")
    assert f"D(image, {label})" in text and len(bars["data"]) == 10
    scores = client.predict(handle_file(image), api_name="/label_scores")
    assert set(scores) == {str(k) for k in range(10)} and all(0 <= v <= 1 for v in scores.values())
    # The served digit is the real test digit, unchanged, and the scores are the library's.
    data = startup_data(data_dir)
    assert np.array_equal(digit, gallery_digits(data)[3][0])
    expected = label_scores(load_checkpoint(tiny_checkpoint).model, digit)
    assert np.allclose([scores[str(k)] for k in range(10)], expected.numpy(), atol=1e-3)


def test_random_digit_and_drawing(client: Client, tmp_path: Path) -> None:
    image, real, label = client.predict(api_name="/random_digit")
    assert png(image).shape == (28, 28) and 0 <= label <= 9 and "real label" in real
    canvas = np.full((280, 280, 4), 255, np.uint8)
    canvas[60:220, 130:150, :3] = 0  # a black "1" on white
    path = tmp_path / "one.png"
    Image.fromarray(canvas, "RGBA").save(path)
    drawn, note = client.predict({"background": handle_file(str(path)), "layers": [], "composite": handle_file(str(path))},
                                 api_name="/use_drawing")
    assert png(drawn).shape == (28, 28) and "28×28" in note


@pytest.mark.parametrize("call, message", [
    (lambda c: c.predict([], 3, 0, False, api_name="/generate"), "no labels chosen"),
    (lambda c: c.predict([1], 0, 0, False, api_name="/generate"), "less than minimum"),
    (lambda c: c.predict([1], 99, 0, False, api_name="/generate"), "greater than maximum"),
    (lambda c: c.predict([1], 3, -2, False, api_name="/generate"), "less than minimum"),
    (lambda c: c.predict(*train_args(batch=100000), api_name="/train"), "batch size must be"),
    (lambda c: c.predict(*train_args(lr_g=2.0), api_name="/train"), "G learning rate"),
    (lambda c: c.predict(*train_args(seconds=0), api_name="/train"), "no budget"),
    (lambda c: c.predict(*train_args(seconds=99999), api_name="/train"), "at most"),
    (lambda c: c.predict(*train_args(arch="huge"), api_name="/train"), "not in the list of choices"),
    (lambda c: c.predict(*train_args(data="elsewhere"), api_name="/train"), "not in the list of choices"),
    (lambda c: c.predict(None, 3, api_name="/probe"), "no image"),
    (lambda c: c.predict(30, 0, 0, api_name="/resume"), "othing to resume"),
    (lambda c: c.predict(api_name="/download"), "no checkpoint yet"),
])
def test_bad_inputs_give_clean_errors(client: Client, call, message: str) -> None:
    with pytest.raises(AppError) as err:
        call(client)
    assert message.lower() in str(err.value).lower() and "Traceback" not in str(err.value)


def test_bad_image_file(client: Client, tmp_path: Path) -> None:
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(AppError, match="Not an image file: notes.png"):
        client.predict(handle_file(str(bad)), 3, api_name="/probe")
    blank = tmp_path / "blank.png"
    Image.new("L", (50, 50), 255).save(blank)
    with pytest.raises(AppError, match="blank"):
        client.predict(handle_file(str(blank)), 3, api_name="/probe")


def test_stop_when_idle(client: Client) -> None:
    assert "Nothing is training" in client.predict(api_name="/stop")


def test_generate_is_not_blocked_by_training(app_url: str) -> None:
    trainer, viewer = Client(app_url, verbose=False), Client(app_url, verbose=False)
    job = trainer.submit(*train_args(seconds=60), api_name="/train")
    wait_outputs(job, 2)
    image, _ = viewer.predict([5], 2, 0, False, api_name="/generate")
    # Served while the run was still training: had Generate waited for the training slot, the run would be over.
    assert not job.done() and png(image).ndim >= 2
    trainer.predict(api_name="/stop")
    assert "Stopped at step" in job.result(timeout=30)[0]


def test_zerogpu_chunks_keep_the_state(step_clock) -> None:
    """The ZeroGPU path in miniature: each chunk trains a copy (as another process would) and hands its
    state back; one run, one Started, steps continue across chunks, and a stop ends it between chunks.
    The engine runs on the step clock (0.125 s a step): a 2 s run is 16 steps in chunks of 3."""
    import copy

    from demo.zerogpu import chunked_run
    from gancls.config import Budget, model_preset, train_preset
    from gancls.data import load_embedded
    from gancls.train import Finished, Metrics, Started, Trainer

    data = load_embedded()
    calls = []

    def chunk(t: Trainer, budget: Budget, seconds: float):
        calls.append(seconds)
        away = copy.deepcopy(t)  # on ZeroGPU: a pickled copy in the GPU process, moved to cuda
        events = list(away.run(budget, slice_seconds=seconds))
        return away.state_dict(), events

    trainer = Trainer(model_preset("small"), train_preset("small"), data, device="cpu")
    events = list(chunked_run(chunk, trainer, threading.Event(), Budget(seconds=2.0), chunk_seconds=0.375))
    assert len(calls) == 6  # 16 steps, 3 a chunk
    assert isinstance(events[0], Started) and sum(isinstance(e, Started) for e in events) == 1
    assert isinstance(events[-1], Finished) and events[-1].reason == "time" and not trainer.running
    steps = [e.step for e in events if isinstance(e, Metrics)]
    assert steps == sorted(steps) and steps[-1] == trainer.step_count == 16
    assert trainer.history[-1]["step"] == trainer.step_count and trainer.train_seconds == 2.0

    stop = threading.Event()
    stopping = Trainer(model_preset("small"), train_preset("small"), data, device="cpu")
    calls.clear()
    events = []
    for event in chunked_run(chunk, stopping, stop, Budget(seconds=60.0), chunk_seconds=0.25):
        events.append(event)
        stop.set()  # pressed during the first chunk: the run ends after it, on this side
    assert len(calls) == 1 and not stopping.running
    assert isinstance(events[-1], Finished) and events[-1].reason == "stopped"


def test_second_run_waits_in_the_training_line(app_url: str) -> None:
    # Training waits in a line of its own (not Gradio's queue), and the waiting visitor sees its place.
    first, second = Client(app_url, verbose=False), Client(app_url, verbose=False)
    job_a = first.submit(*train_args(seconds=20), api_name="/train")
    wait_outputs(job_a, 2)
    job_b = second.submit(*train_args(seconds=20), api_name="/train")
    t0 = time.monotonic()
    while not any("Waiting for a training slot: 1 run ahead of yours" in o[0] for o in job_b.outputs()):
        assert time.monotonic() - t0 < 20 and not job_b.done(), f"the second run does not say it waits: {job_b.outputs()}"
        time.sleep(0.05)
    first.predict(api_name="/stop")
    job_a.result(timeout=30)
    t0 = time.monotonic()
    while not any("gc-running" in o[0] for o in job_b.outputs()):  # its turn came
        assert time.monotonic() - t0 < 30 and not job_b.done(), f"the waiting run never started: {job_b.outputs()[-1:]}"
        time.sleep(0.05)
    second.predict(api_name="/stop")
    assert "Stopped" in job_b.result(timeout=30)[0]