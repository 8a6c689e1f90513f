"""Bad input everywhere: each case is converted sensibly or refused with one clear message.

Through the API a refusal is a ValueError subclass with a one-line message; through the CLI it is
exit 2 with one `error:` line on stderr (argparse's own usage error for a value of the wrong kind),
never a traceback.
"""

from __future__ import annotations

import math
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from demo.harness.cli import run_cli
from gancls.checkpoint import save_checkpoint
from gancls.config import Budget, ConfigError, TrainConfig, model_preset, train_preset
from gancls.errors import UserError
from gancls.images import ImageInputError, to_mnist
from gancls.models import GANCLS
from gancls.probe import label_scores, match_scores
from gancls.sampling import label_grid, sample

REPO = Path(__file__).resolve().parents[1]
NAN, INF = float("nan"), float("inf")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    save_checkpoint(run, GANCLS(model_preset("small")), {"step": 1})
    return run


@pytest.fixture(scope="module")
def model() -> GANCLS:
    torch.manual_seed(0)
    return GANCLS(model_preset("small")).eval()


@pytest.fixture(autouse=True)
def _keep_signal_handlers():
    # `train` installs SIGTERM/SIGINT handlers once it starts training; none of these cases should
    # get that far, but if one does, do not leave pytest deaf to Ctrl-C.
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield
    for s, h in saved.items():
        signal.signal(s, h)


def assert_refused(rc: int, err: str, words: str, *, usage: bool = False) -> None:
    """Exit 2 with one `error:` line naming the problem; `data:` progress lines may come before it."""
    assert rc == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if not line.startswith("data: ")]
    if usage:  # argparse: "usage: ..." then "prog: error: argument --x: invalid int value: 'nan'"
        assert lines[0].startswith("usage:") and ": error: " in lines[-1] and words in lines[-1], err
    else:
        assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], err


# ----------------------------------------------------------------- training settings
SETTINGS = [  # (field, value, words the message must contain)
    ("batch_size", NAN, "batch size"), ("batch_size", -1, "batch size"), ("batch_size", 0, "batch size"),
    ("batch_size", 10**6, "batch size"), ("batch_size", 2.5, "batch size"), ("batch_size", True, "batch size"),
    ("batch_size", "64", "batch size"),
    ("lr_d", NAN, "D learning rate"), ("lr_d", -1e-4, "D learning rate"), ("lr_d", 0.0, "D learning rate"),
    ("lr_d", INF, "D learning rate"), ("lr_d", 1e9, "D learning rate"),
    ("lr_g", NAN, "G learning rate"), ("lr_g", 0, "G learning rate"), ("lr_g", 5.0, "G learning rate"),
    ("epochs", NAN, "epochs"), ("epochs", -1.0, "epochs"), ("epochs", 0, "epochs"), ("epochs", 1e9, "epochs"),
    ("epochs", INF, "epochs"),
    ("max_steps", -5, "max steps"), ("max_steps", 0, "max steps"), ("max_steps", 10**12, "max steps"),
    ("max_steps", 1.5, "max steps"),
    ("max_seconds", NAN, "time budget"), ("max_seconds", -1, "time budget"), ("max_seconds", 0, "time budget"),
    ("max_seconds", INF, "time budget"), ("max_seconds", 1e12, "time budget"),
    ("seed", -1, "seed"), ("seed", 2**64, "seed"), ("seed", 1.5, "seed"), ("seed", NAN, "seed"),
    ("autosave_seconds", -1, "autosave_seconds"), ("autosave_seconds", NAN, "autosave_seconds"),
    ("autosave_seconds", INF, "autosave_seconds"),
    ("objective", "best", "objective"), ("loss", "mse", "loss"),
]


BUDGET_FIELDS = {"epochs": "epochs", "max_steps": "steps", "max_seconds": "seconds"}


@pytest.mark.parametrize("field, value, words", SETTINGS)
def test_bad_training_setting_is_refused_by_the_api(field: str, value, words: str) -> None:
    if field in BUDGET_FIELDS:  # the budget is its own object, and checks itself the same way
        with pytest.raises(ConfigError) as e:
            Budget(**{BUDGET_FIELDS[field]: value})
        assert words in str(e.value) and "\n" not in str(e.value)
        return
    with pytest.raises(ConfigError) as e:
        train_preset("small", **{field: value})
    assert words in str(e.value) and "\n" not in str(e.value)
    # A TrainConfig built by hand cannot exist either: it checks itself when it is made.
    with pytest.raises(ConfigError):
        TrainConfig(**{field: value})


TRAIN_FLAGS = [  # (flags, words in the one error line, argparse usage error?)
    (["--batch-size", "nan"], "invalid int value: 'nan'", True),
    (["--batch-size", "-1"], "batch size", False),
    (["--batch-size", "0"], "batch size", False),
    (["--batch-size", "1000000"], "batch size", False),
    (["--batch-size", "2.5"], "invalid int value", True),
    (["--lr-d", "nan"], "D learning rate", False),
    (["--lr-d", "-0.1"], "D learning rate", False),
    (["--lr-d", "0"], "D learning rate", False),
    (["--lr-g", "inf"], "G learning rate", False),
    (["--lr-g", "1e9"], "G learning rate", False),
    (["--lr-g", "fast"], "invalid float value", True),
    (["--epochs", "nan"], "epochs", False),
    (["--epochs", "-3"], "epochs", False),
    (["--epochs", "0"], "epochs", False),
    (["--epochs", "1e9"], "epochs", False),
    (["--max-steps", "0"], "max steps", False),
    (["--max-steps", "-10"], "max steps", False),
    (["--max-steps", "1000000000000"], "max steps", False),
    (["--max-seconds", "nan"], "time budget", False),
    (["--max-seconds", "-1"], "time budget", False),
    (["--max-seconds", "0"], "time budget", False),
    (["--max-seconds", "inf"], "time budget", False),
    (["--seed", "-1"], "seed", False),
    (["--seed", str(2**64)], "seed", False),
    (["--seed", "x"], "invalid int value", True),
    (["--autosave-seconds", "-1"], "autosave_seconds", False),
    (["--autosave-seconds", "nan"], "autosave_seconds", False),
    (["--arch", "huge"], "invalid choice: 'huge'", True),
    (["--device", "tpu"], "unknown device 'tpu'", False),
    (["--resume", "--batch-size", "32"], "--resume continues a run with its own settings", False),
    (["--resume"], "no such file or directory", False),
    (["--data-dir", "/nonexistent/mnist"], "/nonexistent/mnist", False),
]


@pytest.mark.parametrize("flags, words, usage", TRAIN_FLAGS, ids=[" ".join(f) for f, _, _ in TRAIN_FLAGS])
def test_bad_train_flag_is_refused_by_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture,
                                              flags: list[str], words: str, usage: bool) -> None:
    run = tmp_path / "run"
    # Small limits first: were a bad value accepted, the run would still end at once.
    base = ["train", "--arch", "small", "--device", "cpu", "--no-download", "--out", str(run),
            "--max-steps", "2", "--max-seconds", "5"]
    rc, _, err = run_cli(base + flags, capsys)
    assert_refused(rc, err, words, usage=usage)
    assert not (run / "gancls.safetensors").exists()  # no training happened


def test_train_out_that_is_a_file_is_refused_before_training(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "notes.txt"
    out.write_text("mine")
    rc, _, err = run_cli(["train", "--arch", "small", "--no-download", "--out", str(out), "--max-steps", "1"], capsys)
    assert_refused(rc, err, "is a file; it must be a run directory")
    assert out.read_text() == "mine"


# ------------------------------------------------------------------- sampling API
SAMPLING = [  # (labels, per_label, seed, words)
    ([-1], 2, 0, "label -1 is outside 0..9"),
    ([10], 2, 0, "label 10 is outside 0..9"),
    ([3, 2**70], 2, 0, "whole numbers from 0 to 9"),
    ([], 2, 0, "no labels chosen"),
    ([3.5], 2, 0, "whole numbers"),
    (None, 2, 0, "whole numbers"),
    (["seven"], 2, 0, "whole numbers"),
    ([True], 2, 0, "whole numbers"),
    ([1], 0, 0, "samples per label"),
    ([1], -3, 0, "samples per label"),
    ([1], 10**6, 0, "samples per label"),
    ([1], NAN, 0, "samples per label"),
    ([1], 2.5, 0, "samples per label"),
    ([1], "3", 0, "samples per label"),
    ([1], 2, -1, "seed"),
    ([1], 2, 2**64, "seed"),
    ([1], 2, NAN, "seed"),
    ([1], 2, 0.5, "seed"),
]


@pytest.mark.parametrize("labels, per_label, seed, words", SAMPLING)
def test_bad_sampling_request_is_refused_by_the_api(model: GANCLS, labels, per_label, seed, words: str) -> None:
    with pytest.raises(UserError) as e:
        label_grid(model, labels, per_label, seed)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_whole_numbers_from_a_ui_are_accepted(model: GANCLS) -> None:
    # gr.Number hands over floats, numpy hands over its own ints: both are fine when whole.
    images, labels = label_grid(model, np.array([3, 7]), 2.0, np.int64(5))
    assert images.shape == (4, 28, 28) and labels.tolist() == [3, 3, 7, 7]
    assert torch.equal(images, label_grid(model, [3, 7], 2, 5)[0])


def test_bad_labels_are_refused_by_sample_and_probe(model: GANCLS) -> None:
    with pytest.raises(UserError, match="outside 0..9"):
        sample(model, [0, 12], torch.Generator().manual_seed(0))
    digit = np.zeros((28, 28), np.uint8)
    with pytest.raises(UserError, match="outside 0..9"):
        match_scores(model, digit, [10])
    with pytest.raises(UserError, match="no labels chosen"):
        match_scores(model, digit, [])
    with pytest.raises(UserError, match=r"must be uint8 digits of shape \[N, 28, 28\]"):
        label_scores(model, np.zeros((32, 32), np.uint8))


SAMPLE_FLAGS = [  # (flags, words, argparse usage error?)
    (["--per-label", "0"], "samples per label", False),
    (["--per-label", "-1"], "samples per label", False),
    (["--per-label", "100000"], "samples per label", False),
    (["--per-label", "2.5"], "invalid int value", True),
    (["--per-label", "nan"], "invalid int value", True),
    (["--labels", ""], "no labels chosen", False),
    (["--labels", "10"], "label 10 is outside 0..9", False),
    (["--labels=-1"], "label -1 is outside 0..9", False),
    (["--labels", "1,99999999999999999999999"], "whole numbers from 0 to 9", False),
    (["--labels", "a,b"], "labels must be digits 0-9", True),
    (["--labels", "3.5"], "labels must be digits 0-9", True),
    (["--seed=-1"], "seed must be a whole number", False),
    (["--seed", str(2**64)], "seed must be a whole number", False),
    (["--seed", "x"], "invalid int value", True),
    (["--out", "{tmp}/grid.txt"], "--out must end in .npz or .png", False),
    (["--out", "{tmp}/afile/grid.png"], "afile", False),  # its folder would be a file
    (["--checkpoint", "{tmp}/missing"], "no such file or directory", False),
]


@pytest.mark.parametrize("flags, words, usage", SAMPLE_FLAGS, ids=[" ".join(f) for f, _, _ in SAMPLE_FLAGS])
def test_bad_sample_flag_is_refused_by_the_cli(ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                               flags: list[str], words: str, usage: bool) -> None:
    (tmp_path / "afile").write_text("")
    out = tmp_path / "o.png"
    argv = ["sample", "--checkpoint", str(ckpt), "--out", str(out), "--per-label", "2"]
    rc, _, err = run_cli(argv + [f.replace("{tmp}", str(tmp_path)) for f in flags], capsys)
    assert_refused(rc, err, words, usage=usage)
    assert not out.exists()


def test_good_sample_flags_work(ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "new" / "o.npz"
    rc, stdout, err = run_cli(["sample", "--checkpoint", str(ckpt), "--labels", "0, 9", "--per-label", "3",
                               "--seed", "7", "--out", str(out)], capsys)
    assert rc == 0, err
    with np.load(out) as z:
        assert z["images"].shape == (6, 28, 28) and z["labels"].tolist() == [0, 0, 0, 9, 9, 9]


@pytest.mark.parametrize("label, words, usage", [("10", "label 10 is outside 0..9", False),
                                                 ("-1", "label -1 is outside 0..9", False),
                                                 ("x", "invalid int value", True)])
def test_bad_probe_label_is_refused_by_the_cli(ckpt: Path, images: Path, capsys: pytest.CaptureFixture,
                                               label: str, words: str, usage: bool) -> None:
    rc, _, err = run_cli(["probe", "--checkpoint", str(ckpt), "--image", str(images / "digit.png"),
                          f"--label={label}"], capsys)
    assert_refused(rc, err, words, usage=usage)


# ------------------------------------------------------------------------- images
def _digit(size: int = 200, mode: str = "L", ink=0, paper=255) -> Image.Image:
    """A '1' with a flag: a stroke of ink on paper, `size` pixels square."""
    im = Image.new(mode, (size, size), paper)
    draw, w = ImageDraw.Draw(im), max(1, size // 12)
    draw.line([(size * 0.5, size * 0.15), (size * 0.5, size * 0.85)], fill=ink, width=w)
    draw.line([(size * 0.35, size * 0.3), (size * 0.5, size * 0.15)], fill=ink, width=w)
    return im


def _make_images(d: Path) -> None:
    # Huge: 10000x10000 at 1 bit per pixel is a 32 kB PNG that would decode to 100 M pixels.
    Image.new("1", (10_000, 10_000), 1).save(d / "huge-10000.png")
    big = _digit(6000, "1", ink=0, paper=1)  # 36 M pixels: under the limit, so it is shrunk and used
    big.save(d / "big-6000-1bit.png")
    _digit().save(d / "digit.png")
    Image.new("L", (1, 1), 0).save(d / "one-pixel.png")
    rgba = Image.new("RGBA", (200, 200), (0, 0, 0, 0))  # strokes on a transparent canvas
    ImageDraw.Draw(rgba).line([(100, 30), (100, 170)], fill=(255, 0, 0, 255), width=16)
    rgba.save(d / "rgba-transparent.png")
    la = Image.new("LA", (100, 100), (255, 255))  # grey + alpha, opaque paper
    ImageDraw.Draw(la).line([(50, 10), (50, 90)], fill=(0, 255), width=8)
    la.save(d / "la.png")
    _digit().convert("P").save(d / "palette.png")
    Image.fromarray(np.asarray(_digit()).astype(np.uint16) * 257).save(d / "16-bit.png")  # I;16
    Image.fromarray(np.asarray(_digit()).astype(np.float32) / 255).save(d / "float.tiff")  # mode F
    blank = Image.new("L", (200, 200), 255).convert("P")  # first frame a digit, then a blank one
    _digit().convert("P").save(d / "animated.gif", save_all=True, append_images=[blank], duration=100, loop=0)
    _digit().convert("RGB").save(d / "photo.jpg", quality=80)
    _digit().convert("CMYK").save(d / "cmyk.jpg")
    _digit(ink=255, paper=0).save(d / "white-on-black.png")
    Image.new("L", (64, 64), 255).save(d / "all-white.png")
    Image.new("L", (64, 64), 0).save(d / "all-black.png")
    Image.new("RGB", (64, 64), (200, 30, 30)).save(d / "all-red.png")
    (d / "not-an-image.png").write_text("this is a text file with a .png name\n")
    (d / "empty.png").write_bytes(b"")
    png = (d / "digit.png").read_bytes()
    (d / "truncated.png").write_bytes(png[: len(png) // 2])
    (d / "a-folder.png").mkdir()


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("images")
    _make_images(d)
    return d


CONVERTED = ["digit.png", "big-6000-1bit.png", "rgba-transparent.png", "la.png", "palette.png", "16-bit.png",
             "float.tiff", "animated.gif", "photo.jpg", "cmyk.jpg", "white-on-black.png"]
REFUSED = [  # (file, words)
    ("huge-10000.png", "image too large: huge-10000.png is 10000x10000"),
    ("one-pixel.png", "no digit found: the image is blank"),
    ("all-white.png", "no digit found: the image is blank"),
    ("all-black.png", "no digit found: the image is blank"),
    ("all-red.png", "no digit found: the image is blank"),
    ("not-an-image.png", "not an image file: not-an-image.png"),
    ("empty.png", "not an image file: empty.png is empty"),
    ("truncated.png", "truncated.png is truncated or corrupt"),
    ("a-folder.png", "a-folder.png is a folder"),
    ("missing.png", "no such image file: missing.png"),
]


@pytest.mark.parametrize("name", CONVERTED)
def test_odd_image_is_converted_to_a_centred_digit(images: Path, ckpt: Path, capsys: pytest.CaptureFixture,
                                                    name: str) -> None:
    digit = to_mnist(images / name)
    assert digit.shape == (28, 28) and digit.dtype == np.uint8 and digit.max() == 255
    ys, xs = np.nonzero(digit)
    assert 10 <= len(ys) <= 400  # a stroke, not a blank frame and not a flood
    mass = digit.astype(np.float64)
    cy, cx = (mass * np.indices(mass.shape)).sum((1, 2)) / mass.sum()
    assert math.hypot(cy - 14, cx - 14) < 1.5  # centred by mass, as MNIST is
    rc, out, err = run_cli(["probe", "--checkpoint", str(ckpt), "--image", str(images / name)], capsys)
    assert rc == 0 and err == "", err
    lines = out.splitlines()
    assert len(lines) == 10 and sum("best match" in line for line in lines) == 1


@pytest.mark.parametrize("name, words", REFUSED, ids=[n for n, _ in REFUSED])
def test_bad_image_is_refused_with_one_clear_message(images: Path, ckpt: Path, capsys: pytest.CaptureFixture,
                                                     name: str, words: str) -> None:
    with pytest.raises(ImageInputError) as e:
        to_mnist(images / name)
    assert isinstance(e.value, ValueError) and words in str(e.value) and "\n" not in str(e.value)
    rc, out, err = run_cli(["probe", "--checkpoint", str(ckpt), "--image", str(images / name)], capsys)
    assert_refused(rc, err, words)
    assert out == ""


@pytest.mark.parametrize("value, words", [
    (None, "no image given"), (5, "unsupported image input of type int"), (b"", "is empty"),
    (np.zeros((0, 0)), "unsupported image array size"), (np.full((28, 28), np.nan, np.float32), "NaN"),
    (np.zeros((4, 28, 28, 3)), "unsupported image array shape"), ({"a": 1}, "unsupported dict input"),
])
def test_bad_in_memory_image_is_refused(value, words: str) -> None:
    with pytest.raises(ImageInputError, match=words):
        to_mnist(value)


# ------------------------------------------------------------- the real interpreter
@pytest.mark.slow  # two fresh interpreters (the in-process cases above cover every value)
def test_the_real_cli_refuses_bad_input_without_a_traceback(ckpt: Path, images: Path, tmp_path: Path) -> None:
    """Two cases end to end through `python -m gancls`, in one fresh interpreter each."""
    for argv, words in ((["train", "--batch-size", "-1", "--no-download", "--out", str(tmp_path / "r")], "batch size"),
                        (["probe", "--checkpoint", str(ckpt), "--image", str(images / "empty.png")], "is empty")):
        r = subprocess.run([sys.executable, "-m", "gancls", *argv], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and r.stdout == ""
        assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1 and words in r.stderr, r.stderr
