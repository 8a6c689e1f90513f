"""The hostile-visitor table: requests the app must refuse, each with what its refusal must say (issue 12).

tests/test_hostile.py sends it once and checks every answer; bench/hostile_soak.py sends it over and
over while normal visitors use the app. The expected messages assume the app runs with `LIMITS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .clients import TRAIN, TRAIN_NAMES

# The server limits the table's expected messages name ("from 2 to 256", "at most 20 s per run").
LIMITS = ["--max-run-seconds", "20", "--max-batch", "256", "--autosave-seconds", "1"]


def png_file(folder: Path, name: str, size: tuple[int, int], mode: str = "L") -> str:
    """A blank PNG of `size` (a 13000x13000 one is a few hundred KB: a decompression bomb)."""
    from PIL import Image

    path = folder / name
    Image.new(mode, size).save(path, format="PNG")
    return str(path)


def drawing(path: str) -> dict:
    """A Sketchpad value whose background is the file at `path`."""
    from gradio_client import handle_file

    return {"background": handle_file(path), "layers": [], "composite": None}


def table(folder: Path) -> list[tuple[str, str, list, str]]:
    """(case, endpoint, inputs, what the refusal must say): the issue's attacks and more; files go in `folder`."""
    from gradio_client import handle_file

    bomb = png_file(folder, "bomb.png", (13000, 13000))
    big_drawing = png_file(folder, "wide.png", (4000, 100))
    text = folder / "notes.txt"
    text.write_text("not an image\n" * 10)
    junk = folder / "junk.png"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    fat = folder / "fat.png"
    fat.write_bytes(b"\x89PNG" + b"\0" * (5 * 2**20))
    t = dict(zip(TRAIN_NAMES, TRAIN))

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
        # class codes (issue 13): a raw call has no run to share, and no code but a live one is accepted
        ("share without a run", "/share", [], "othing to share yet"),
        ("join a made-up code", "/join", ["ZZZZZZ"], "unknown or expired class code"),
        ("join a path", "/join", ["../../etc/passwd"], "is not a class code"),
        ("join 100,000 characters", "/join", ["A" * 100_000], "is not a class code"),
        ("join nothing", "/join", [None], "no class code"),
        ("watch a made-up code", "/watch", ["ZZZZZZ"], "unknown or expired class code"),
        ("watch markup", "/watch", ["<img src=x onerror=alert(1)>"], "is not a class code"),
        ("watch a number", "/watch", [123456], "is not a class code"),
    ]


def refusal(call) -> str:
    """The message a refused call answers with ('' if it was not refused)."""
    from gradio_client.exceptions import AppError

    try:
        call()
    except AppError as e:
        return str(e)
    return ""
