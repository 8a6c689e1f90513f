"""Tab 8 · Your handwriting through gradio_client: a digit's style as 0-9, a drawing as the source, a number
written in one style, and every bad input refused with a clear message.

The shared test app runs a 5-step model without a style encoder, so S is trained on demand there; the
judge test starts a second app with the shipped checkpoint (its G draws readable digits, and it carries S).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch
from gradio_client import Client, handle_file
from PIL import Image, ImageDraw

from demo.harness import ROOT
from demo.harness.hostile import refusal
from demo.harness.launch import serving
from gancls.draw import style_row
from gancls.judge import judge_predict, load_judge

PRETRAINED = ROOT / "checkpoints" / "pretrained"
ENDPOINTS = ("/style_transfer", "/style_drawing", "/write_number")


@pytest.fixture()
def client(app_url: str) -> Client:
    return Client(app_url, verbose=False)


@pytest.fixture(scope="module")
def shipped_url(data_dir: Path | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on the shipped checkpoint (a trained G and its S)."""
    with serving(PRETRAINED, tmp_path_factory.mktemp("shipped_app"), data_dir) as app:
        yield app["url"]


def png(path: str) -> np.ndarray:
    return np.array(Image.open(path))


def strip_digits(path: str, n: int) -> np.ndarray:
    """The n digits [n, 28, 28] of a written number, shown enlarged by a whole factor (nearest neighbour)."""
    strip = png(path)
    scale = strip.shape[0] // 28
    assert strip.shape == (28 * scale, 28 * scale * n) and scale >= 1
    return strip[::scale, ::scale].reshape(28, n, 28).transpose(1, 0, 2)


def drawing(tmp_path: Path, strokes: list[list[tuple[int, int]]], name: str = "drawing.png") -> dict:
    """A sketchpad payload: dark strokes on a transparent 280x280 canvas, as the browser sends it."""
    canvas = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    for line in strokes:
        ImageDraw.Draw(canvas).line(line, fill=(0, 0, 0, 255), width=18, joint="curve")
    path = tmp_path / name
    canvas.save(path)
    return {"background": None, "layers": [handle_file(str(path))], "composite": handle_file(str(path))}


def test_style_transfer_and_write_number_are_endpoints(client: Client) -> None:
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert all(name in api for name in ENDPOINTS)
    assert [p["parameter_name"] for p in api["/write_number"]["parameters"]] == ["text", "style_from", "seed", "image"]


def test_a_gallery_digit_in_every_label_with_s_trained_on_demand(client: Client) -> None:
    image, _, label = client.predict(3, api_name="/gallery_digit")
    seen, picture, text = client.predict(handle_file(image), api_name="/style_transfer")
    assert np.array_equal(png(seen), png(image))  # a real test digit reaches S as it is
    # The test app's checkpoint has no S: it is trained for this model once, then kept.
    assert "trained for this model" in text
    again = client.predict(handle_file(image), api_name="/style_transfer")
    assert "trained for this model earlier" in again[2]
    # The ten digits are what write_number writes for "0123456789" in the same style, beside the source.
    number, file = client.predict("0123456789", "source", 0, handle_file(image), api_name="/write_number")
    assert Path(file).name == "gancls_0123456789_your_style.png" and np.array_equal(png(file), png(number))
    digits = strip_digits(number, 10)
    assert np.array_equal(png(picture), style_row(png(seen), digits, range(10), scale=3))
    assert np.array_equal(png(again[1]), png(picture))


def test_a_drawing_is_a_style_source(client: Client, tmp_path: Path) -> None:
    seven = drawing(tmp_path, [[(60, 50), (220, 50), (120, 250)]])
    source, seen, picture, text = client.predict(seven, api_name="/style_drawing")
    digit = png(seen)
    assert digit.shape == (28, 28) and np.array_equal(png(source), digit)
    assert digit.max() == 255 and digit[0].max() == 0  # centred ink, dark border: MNIST style
    assert png(picture).shape[1] > 10 * 28 * 3 and "G wrote 0–9" in text
    # The drawn source writes a number too (the source box now holds the digit S read).
    number, _ = client.predict("7", "source", 0, handle_file(source), api_name="/write_number")
    assert png(number).shape[0] == png(number).shape[1]


def test_a_seed_style_needs_no_source(client: Client) -> None:
    a, _ = client.predict("20261231", "seed", 3, None, api_name="/write_number")
    b, _ = client.predict("20261231", "seed", 3, None, api_name="/write_number")
    c, _ = client.predict("20261231", "seed", 4, None, api_name="/write_number")
    assert np.array_equal(png(a), png(b)) and not np.array_equal(png(a), png(c))
    assert strip_digits(a, 8).shape == (8, 28, 28)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels, with a token of data (a decompression bomb's shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _image(tmp_path: Path, name: str) -> str:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:240, 0:320]
    arrays = {"one_pixel": np.zeros((1, 1), np.uint8), "blank": np.full((200, 200), 255, np.uint8),
              "noise": rng.integers(0, 256, (64, 64), dtype=np.uint8),
              "photo": np.stack([127 + 60 * np.sin(xx / 20) + 50 * np.cos(yy / 15), 90 + 80 * np.sin(yy / 9),
                                 128 + 100 * np.cos((xx + yy) / 31)], -1).clip(0, 255).astype(np.uint8)}
    path = tmp_path / f"{name}.png"
    if name == "not_an_image":
        path.write_text("hello")
    elif name == "bomb":
        path.write_bytes(_png_header_only(30_000, 30_000))  # 900 MP claimed in 100 bytes
    else:
        Image.fromarray(arrays[name]).save(path)
    return str(path)


@pytest.mark.parametrize("name, words", [("one_pixel", "blank"), ("blank", "blank"), ("noise", "photo"),
                                         ("photo", "photo"), ("not_an_image", "not an image"), ("bomb", "too large")])
def test_bad_style_images_are_refused_clearly(client: Client, tmp_path: Path, name: str, words: str) -> None:
    path = handle_file(_image(tmp_path, name))
    for call in (lambda: client.predict(path, api_name="/style_transfer"),
                 lambda: client.predict("12", "source", 0, path, api_name="/write_number")):
        message = refusal(call)
        assert words in message.lower() and "Traceback" not in message, message


@pytest.mark.parametrize("call, words", [
    (lambda c, t: c.predict(drawing(t, []), api_name="/style_drawing"), "blank"),
    (lambda c, t: c.predict({"background": None, "layers": [], "composite": None}, api_name="/style_drawing"), "empty"),
    (lambda c, t: c.predict(None, api_name="/style_transfer"), "no style source"),
    (lambda c, t: c.predict("2026", "source", 0, None, api_name="/write_number"), "no style source"),
    (lambda c, t: c.predict("20a6", "seed", 0, None, api_name="/write_number"), "only the digits 0-9"),
    (lambda c, t: c.predict("2026-12-31", "seed", 0, None, api_name="/write_number"), "only the digits 0-9"),
    (lambda c, t: c.predict("", "seed", 0, None, api_name="/write_number"), "nothing to write"),
    (lambda c, t: c.predict("1" * 17, "seed", 0, None, api_name="/write_number"), "at most 16 digits"),
    (lambda c, t: c.predict("1" * 40, "seed", 0, None, api_name="/write_number"), "at most 16 digits"),
    (lambda c, t: c.predict("12", "seed", -1, None, api_name="/write_number"), "less than minimum"),
    (lambda c, t: c.predict("12", "ink", 0, None, api_name="/write_number"), "not in the list of choices"),
])
def test_bad_inputs_get_clear_messages(client: Client, tmp_path: Path, call, words: str) -> None:
    message = refusal(lambda: call(client, tmp_path))
    assert words in message.lower() and "Traceback" not in message, message


def test_the_shipped_model_writes_every_digit_in_a_gallery_digits_style(shipped_url: str) -> None:
    client = Client(shipped_url, verbose=False)
    judge = load_judge()
    for index in (3, 17):  # gallery digits: a 3 and a 7 (rows of 0..9)
        image, _, label = client.predict(index, api_name="/gallery_digit")
        seen, picture, text = client.predict(handle_file(image), api_name="/style_transfer")
        assert "S shipped with the pretrained model" in text
        number, _ = client.predict("0123456789", "source", 0, handle_file(image), api_name="/write_number")
        digits = strip_digits(number, 10)
        assert np.array_equal(png(picture), style_row(png(seen), digits, range(10), scale=3))
        read = judge_predict(judge, torch.from_numpy(digits)).predictions.tolist()
        assert sum(r == k for k, r in enumerate(read)) >= 9, (label, read)
    number, _ = client.predict("0123456789", "seed", 3, None, api_name="/write_number")
    read = judge_predict(judge, torch.from_numpy(strip_digits(number, 10))).predictions.tolist()
    assert sum(r == k for k, r in enumerate(read)) >= 9, read
