"""A hostile visitor cannot exhaust the app: every request is bounded and refused with a clear message,
training waits in a line of its own, and a run survives kill -9 of the server (issue 12)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from bench.soak import TRAIN, AppProcess, launch, wait_for
from conftest import ROOT
from gancls.checkpoint import load_checkpoint
from gradio_helpers import wait_outputs
from test_app_reliability import raw_call, train_args

LIMITS = ["--max-run-seconds", "20", "--max-batch", "256", "--autosave-seconds", "1"]


@pytest.fixture(scope="module")
def app(tiny_checkpoint: Path, data_dir: Path | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    """The app with small public-server limits, its own runs folder and TMPDIR."""
    server = launch(tiny_checkpoint, tmp_path_factory.mktemp("hostile"), *LIMITS, data_dir=data_dir)
    yield server
    server.stop()


def png_file(folder: Path, name: str, size: tuple[int, int], mode: str = "L") -> str:
    """A blank PNG of `size` (a 13000x13000 one is a few hundred KB: a decompression bomb)."""
    path = folder / name
    Image.new(mode, size).save(path, format="PNG")
    return str(path)


def drawing(path: str) -> dict:
    """A Sketchpad value whose background is the file at `path`."""
    return {"background": handle_file(path), "layers": [], "composite": None}


def table(folder: Path) -> list[tuple[str, str, list, str]]:
    """(case, endpoint, inputs, what the refusal must say): the issue's attacks and more."""
    bomb = png_file(folder, "bomb.png", (13000, 13000))
    big_drawing = png_file(folder, "wide.png", (4000, 100))
    text = folder / "notes.txt"
    text.write_text("not an image\n" * 10)
    junk = folder / "junk.png"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    fat = folder / "fat.png"
    fat.write_bytes(b"\x89PNG" + b"\0" * (5 * 2**20))
    t = dict(zip(["device", "data", "seconds", "epochs", "max_steps", "arch", "batch", "lr_d", "lr_g", "seed",
                  "objective", "loss"], TRAIN))

    def train(**changes: Any) -> list:
        return [{**t, "seconds": 10, **changes}[k] for k in t]

    return [
        # the attacks
        ("3,000 labels", "/generate", [[7] * 3000, 32, 0, False], "at most 10 labels"),
        ("100,000 labels", "/generate", [[7] * 100_000, 32, 0, False], "at most 10 labels"),
        ("240 labels (file name)", "/generate", [[1] * 240, 1, 0, False], "at most 10 labels"),
        ("batch 8192, 3 s", "/train", train(batch=8192, seconds=3), "from 2 to 256"),
        ("batch 1", "/train", train(batch=1), "less than minimum value 2"),
        ("an hour per click", "/train", train(seconds=3600), "at most 20 s per run"),
        ("13000x13000 drawing", "/use_drawing", [drawing(bomb)], "the limit is 2048x2048"),
        ("13000x13000 probe image", "/probe", [handle_file(bomb), 3], "the limit is 16,000,000"),
        # more of our own
        ("11 labels", "/generate", [list(range(10)) + [1], 1, 0, False], "at most 10 labels"),
        ("33 per label", "/generate", [[1], 33, 0, False], "greater than maximum value 32"),
        ("10**9 per label", "/generate", [[1], 10**9, 0, False], "greater than maximum value 32"),
        ("negative per label", "/generate", [[1], -1, 0, False], "less than minimum value 1"),
        ("fractional per label", "/generate", [[1], 2.5, 0, False], "from 1 to 32"),
        ("negative seed", "/generate", [[1], 1, -5, False], "less than minimum value 0"),
        ("seed 2**70", "/generate", [[1], 1, 2**70, False], "Seed must be"),
        ("label 11", "/generate", [[11], 1, 0, False], "not in the list of choices"),
        ("negative label", "/generate", [[-1], 1, 0, False], "not in the list of choices"),
        ("no labels", "/generate", [[], 1, 0, False], "no labels chosen"),
        ("fractional label", "/generate", [[3.5], 1, 0, False], "not in the list of choices"),
        ("labels as text", "/generate", ["seven", 1, 0, False], "not in the list of choices"),
        ("nested label lists", "/generate", [[[1, 2], [3, 4]] * 6, 1, 0, False], "not in the list of choices"),
        ("batch 10**12", "/train", train(batch=10**12), "from 2 to 256"),
        ("negative time", "/train", train(seconds=-1), "less than minimum value 0"),
        ("no budget", "/train", train(seconds=0, epochs=0, max_steps=0), "no budget"),
        ("steps 10**12", "/train", train(max_steps=10**12), "Max steps must be"),
        ("epochs 10**6", "/train", train(epochs=10**6), "Epochs must be"),
        ("data source a path", "/train", train(data="/etc"), "not in the list of choices"),
        ("empty learning rate", "/train", train(lr_d=None), "D learning rate is empty"),
        ("4000 px wide drawing", "/use_drawing", [drawing(big_drawing)], "the limit is 2048x2048"),
        ("5 MB drawing", "/use_drawing", [drawing(str(fat))], "the limit is 4 MB"),
        ("text as a drawing", "/use_drawing", [drawing(str(text))], "cannot be read as an image"),
        ("truncated PNG drawing", "/use_drawing", [drawing(str(junk))], "cannot be read as an image"),
        ("text as a probe image", "/probe", [handle_file(str(text)), 3], "Not an image file"),
        ("probe label 10", "/probe", [handle_file(png_file(folder, "d.png", (28, 28))), 10], "not in the list of choices"),
        ("no probe image", "/label_scores", [None], "no image"),
        ("gallery index 10**6", "/gallery_digit", [10**6], "Gallery index must be"),
        ("restore a path", "/restore", ["../../etc/passwd"], "no longer kept"),
        ("restore a made-up id", "/restore", ["0" * 32], "no longer kept"),
        ("resume without a run", "/resume", [10, 0, 0], "nothing to resume"),
        ("ablation for a day", "/ablation", ["gan-cls", "plain", 86400, "small", 0], "greater than maximum value"),
    ]


def refusal(call: Callable[[], Any]) -> str:
    """The message a refused call answers with ('' if it was not refused)."""
    try:
        call()
    except AppError as e:
        return str(e)
    return ""


def test_every_hostile_request_is_refused_clearly_and_memory_stays_bounded(app: AppProcess, tmp_path: Path) -> None:
    client = Client(app.url, verbose=False)
    client.predict([3], 2, 0, False, api_name="/generate")  # warm: the baseline includes one normal request
    baseline, peak, bad, seen = app.rss(), 0, [], []
    cases = table(tmp_path)
    for name, api, inputs, expected in cases:
        t0 = time.monotonic()
        message = refusal(lambda: client.predict(*inputs, api_name=api))
        peak = max(peak, app.rss())
        seen.append(f"  {name:28s} {time.monotonic() - t0:5.2f} s  {message[:90]}")
        if expected.lower() not in message.lower() or str(app.tmp) in message or str(tmp_path) in message:
            bad.append((name, expected, message))
    # The same without a session (raw HTTP, as a script would): a clear message, not `error: null`.
    for data, api, expected in (([[7] * 3000, 32, 0, False], "generate", "at most 10 labels"),
                                (train_args(seconds=3600), "train", "at most 20 s per run")):
        event, out = raw_call(app.url, api, data)
        if event != "error" or expected.lower() not in str((out or {}).get("error")).lower():
            bad.append((f"raw {api}", expected, out))
    print(f"\n{len(cases)} hostile requests, RSS {baseline / 2**20:.0f} MB -> peak {peak / 2**20:.0f} MB:\n"
          + "\n".join(seen))
    assert len(cases) >= 28 and not bad, bad
    assert peak - baseline < 500 * 2**20, f"memory rose {(peak - baseline) / 2**20:.0f} MB"
    t0 = time.monotonic()
    image, _ = Client(app.url, verbose=False).predict([1, 2], 2, 0, False, api_name="/generate")
    assert Path(image).is_file() and time.monotonic() - t0 < 10  # generous: a shared 2-core machine


def test_one_run_per_visitor_and_a_full_training_line_never_blocks_generate(app: AppProcess) -> None:
    first = Client(app.url, verbose=False)
    job = first.submit(*train_args(seconds=20, seed=3), api_name="/train")
    wait_outputs(job, 2)
    # A second Train from the same visitor: refused at once, not a second queue entry.
    again = refusal(lambda: first.predict(*train_args(seconds=10), api_name="/train"))
    assert "already has a run training or waiting" in again
    # Visitors with fresh sessions fill the line (8 places); the next is refused, nobody's Generate waits.
    others = [Client(app.url, verbose=False) for _ in range(9)]
    waiting = [c.submit(*train_args(seconds=20), api_name="/train") for c in others[:8]]
    assert wait_for(lambda: all(len(w.outputs()) >= 1 for w in waiting), 30), "the line did not fill"
    assert "Waiting for a training slot" in waiting[-1].outputs()[-1][0]
    assert "training line is full" in refusal(lambda: others[8].predict(*train_args(seconds=10), api_name="/train"))
    t0 = time.monotonic()
    for _ in range(5):
        others[8].predict([4], 2, 0, False, api_name="/generate")
    assert time.monotonic() - t0 < 20
    for c in (*others[:8], first):  # the waiting ones first, so none gets the slot
        c.predict(api_name="/stop")
    job.result(timeout=60)
    for w in waiting:  # a run stopped while it waited says so; none ever started
        assert "Stopped before the run started" in refusal(lambda w=w: w.result(timeout=60))


@pytest.mark.slow
def test_kill_9_during_a_run_then_restore_finds_its_last_autosave(tiny_checkpoint: Path, data_dir: Path | None,
                                                                   tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    server = launch(tiny_checkpoint, tmp_path / "work", *LIMITS, data_dir=data_dir, runs=runs)
    try:
        tab = Client(server.url, verbose=False)
        tab.submit(*train_args(seconds=20, seed=11), api_name="/train")

        def mine() -> list[Path]:  # the run's autosaved copy in the runs folder, found by its seed
            return [d for d in server.kept_runs() if (d / "gancls.json").is_file()
                    and json.loads((d / "gancls.json").read_text())["train_config"]["seed"] == 11]

        assert wait_for(lambda: bool(mine()) and load_checkpoint(mine()[0]).step > 0, 30), "no autosave in runs/"
        time.sleep(1.5)  # at least one more autosave
        server.proc.kill()  # SIGKILL: no handler runs, nothing is saved on the way out
        server.proc.wait(10)
    finally:
        server.stop()
    (kept,) = mine()
    saved = load_checkpoint(kept).step
    assert saved > 0
    again = launch(tiny_checkpoint, tmp_path / "work", data_dir=data_dir, runs=runs)  # same TMPDIR: orphans adopted
    try:
        step = load_checkpoint(kept).step  # the orphaned live copy may be one autosave newer
        assert step >= saved
        out = Client(again.url, verbose=False).predict(kept.name, api_name="/restore")
        assert f"trained for {step:,} steps" in out[4] and "Restored" in out[0]
        assert not [d for d in (tmp_path / "work" / "tmp").glob("gancls-app-*")
                    if not (d / ".pid").is_file() or int((d / ".pid").read_text()) != again.proc.pid]
    finally:
        again.stop()


def test_cli_refuses_hostile_inputs_with_one_line(tmp_path: Path, tiny_checkpoint: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    nested = tmp_path / "nested.safetensors"
    header = ("[" * 100_000 + "]" * 100_000).encode()
    nested.write_bytes(len(header).to_bytes(8, "little") + header)
    cases = [
        (["probe", "--checkpoint", str(tiny_checkpoint), "--image", str(tmp_path)], "is a folder"),
        (["probe", "--checkpoint", str(tiny_checkpoint), "--image", str(fifo)], "not a regular file"),
        (["probe", "--checkpoint", str(tiny_checkpoint), "--image", "/dev/zero"], "not a regular file"),
        (["sample", "--checkpoint", str(nested), "--out", str(tmp_path / "x.npz")], "nested.safetensors"),
        (["sample", "--checkpoint", str(tiny_checkpoint), "--labels", ",".join(["1"] * 50), "--per-label", "10000",
          "--out", str(tmp_path / "big.npz")], "at most"),
    ]
    bad = []
    for args, expected in cases:
        out = subprocess.run([sys.executable, "-m", "gancls", *args], capture_output=True, text=True, cwd=ROOT,
                             timeout=120)
        lines = out.stderr.strip().splitlines()
        if out.returncode != 2 or len(lines) != 1 or expected not in lines[0] or "Traceback" in out.stderr:
            bad.append((args[:3], expected, out.returncode, out.stderr[-400:]))
    assert not bad, bad
    assert not (tmp_path / "big.npz").exists()


def test_sample_writes_atomically_and_in_chunks(tmp_path: Path, tiny_checkpoint: Path) -> None:
    from gancls.checkpoint import load_checkpoint as load
    from gancls.sampling import label_grid

    model = load(tiny_checkpoint).model
    whole, y = label_grid(model, [3, 5], 40, seed=2)
    chunked, y2 = label_grid(model, [3, 5], 40, seed=2, chunk=7)
    assert (whole == chunked).all() and (y == y2).all()
    out = subprocess.run([sys.executable, "-m", "gancls", "sample", "--checkpoint", str(tiny_checkpoint), "--labels", "3,5",
                          "--per-label", "4", "--out", str(tmp_path / "s.npz")], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.npz"]  # no temp file left beside it
