"""Tests for gancls.images: outside images become MNIST-style digits, bad input gets a clear error."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from gancls.images import (MAX_FILE_BYTES, MAX_PIXELS, ImageInputError, is_mnist_like, load_image,
                           to_mnist)


@pytest.fixture(scope="module")
def digits(mnist) -> np.ndarray:
    """The first 200 MNIST test digits (of the full set or the embedded subset), uint8 [200, 28, 28]."""
    return mnist.data.test_images[:200].numpy()


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Best correlation of two [28, 28] digits over shifts of up to 1 px (centring rounds to pixels)."""
    b = b.astype(np.float64).ravel()
    return max(np.corrcoef(np.roll(a.astype(np.float64), (dy, dx), (0, 1)).ravel(), b)[0, 1]
               for dy in (-1, 0, 1) for dx in (-1, 0, 1))


def encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def paper(d: np.ndarray, size: int = 280) -> Image.Image:
    """The digit as dark ink on white paper, enlarged (L)."""
    return Image.fromarray(255 - d).resize((size, size), Image.Resampling.BICUBIC)


def coloured(d: np.ndarray) -> Image.Image:
    """Dark blue ink on yellowish paper, RGB 280x280."""
    a = np.asarray(Image.fromarray(d).resize((280, 280), Image.Resampling.BICUBIC), np.float64) / 255
    a = a[..., None]  # [280, 280, 1]
    rgb = (1 - a) * np.array([250, 230, 120]) + a * np.array([20, 30, 160])
    return Image.fromarray(rgb.round().astype(np.uint8))


def drawing(d: np.ndarray, colour=(0, 0, 0), size: int = 800) -> Image.Image:
    """Strokes on a transparent canvas, as Gradio's Sketchpad exports them (RGB 0 where alpha is 0)."""
    alpha = np.asarray(Image.fromarray(d).resize((size, size), Image.Resampling.BICUBIC))
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[alpha > 0, :3] = colour
    rgba[..., 3] = alpha
    return Image.fromarray(rgba)


def sketchpad_value(tmp_path: Path, layer: Image.Image, image_mode: str = "RGBA") -> dict:
    """What a real gr.Sketchpad(type="numpy") hands its event handler for this drawn layer."""
    import gradio as gr
    from gradio.components.image_editor import EditorData
    from gradio.data_classes import FileData

    path = tmp_path / "layer.png"
    layer.save(path)
    fd = FileData(path=str(path))
    payload = EditorData(background=None, layers=[fd], composite=fd)
    return gr.Sketchpad(image_mode=image_mode).preprocess(payload)


def editor(composite=None, layers=()) -> dict:
    """A Gradio editor value (EditorValue) without a background."""
    return {"background": None, "layers": list(layers), "composite": composite}


def gif_two_frames(d: np.ndarray, other: np.ndarray) -> bytes:
    frames = [Image.fromarray(255 - x).resize((112, 112)) for x in (d, other)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def saved(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# Each rendering turns digit d (and a different digit, other) into an input a user might give.
RENDERINGS = {
    "dark_on_light_array": lambda d, o, t: 255 - d,
    "png_280_dark_on_light": lambda d, o, t: encode(paper(d)),
    "rgb_blue_on_yellow_path": lambda d, o, t: saved(t, "digit.png", encode(coloured(d))),
    "rgb_array_gray": lambda d, o, t: np.stack([255 - d] * 3, axis=-1),
    "rgba_transparent_background": lambda d, o, t: encode(drawing(d, size=280)),
    "rgba_fully_opaque": lambda d, o, t: encode(paper(d).convert("RGBA")),
    "palette_png": lambda d, o, t: encode(coloured(d).quantize(16)),
    "palette_with_transparency": lambda d, o, t: encode(drawing(d, (200, 0, 0), 280).convert("P")),
    "png_16bit": lambda d, o, t: encode(Image.fromarray((255 - d.astype(np.uint16)) * 257)),
    "uint16_array": lambda d, o, t: d.astype(np.uint16) * 257,
    "jpeg_q70_file_object": lambda d, o, t: io.BytesIO(encode(coloured(d), "JPEG", quality=70)),
    "webp_lossy": lambda d, o, t: encode(paper(d).convert("RGB"), "WEBP", quality=60),
    "bmp": lambda d, o, t: encode(paper(d, 100), "BMP"),
    "gif_animated_first_frame": lambda d, o, t: gif_two_frames(d, o),
    "pil_image": lambda d, o, t: paper(d, 56),
    "float_0_1": lambda d, o, t: d / 255.0,
    "float_tanh_range": lambda d, o, t: d / 127.5 - 1.0,
    "channels_first_float32": lambda d, o, t: (d[None] / 255.0).astype(np.float32),
    "large_2000px": lambda d, o, t: paper(d, 2000),
    "editor_composite_numpy": lambda d, o, t: editor(np.asarray(drawing(d))),
    "editor_layers_only_pil": lambda d, o, t: editor(layers=[drawing(d)]),
    "editor_composite_filepath": lambda d, o, t: editor(str(saved(t, "c.png", encode(drawing(d))))),
    "sketchpad_black_brush": lambda d, o, t: sketchpad_value(t, drawing(d)),
    "sketchpad_red_brush": lambda d, o, t: sketchpad_value(t, drawing(d, (255, 0, 0))),
    "sketchpad_white_brush": lambda d, o, t: sketchpad_value(t, drawing(d, (255, 255, 255))),
    "sketchpad_rgb_mode": lambda d, o, t: sketchpad_value(t, drawing(d), image_mode="RGB"),
}


@pytest.mark.parametrize("index", [0, 1, 4])
@pytest.mark.parametrize("name", list(RENDERINGS))
def test_rendered_digit_comes_back_close_to_the_original(digits, tmp_path, name, index):
    d, other = digits[index], digits[index + 1]
    out = to_mnist(RENDERINGS[name](d, other, tmp_path))
    assert out.dtype == np.uint8 and out.shape == (28, 28)
    assert out.max() == 255 and np.median(out) == 0
    assert similarity(out, d) > 0.8, name
    assert similarity(out, d) > similarity(out, other)  # it is this digit, not just any blob


@pytest.mark.parametrize("name", ["dark_on_light_array", "jpeg_q70_file_object", "sketchpad_black_brush"])
def test_output_is_mnist_like_and_a_fixed_point(digits, tmp_path, name):
    out = to_mnist(RENDERINGS[name](digits[0], digits[1], tmp_path))
    assert is_mnist_like(out)
    assert np.array_equal(to_mnist(out), out)


@pytest.mark.parametrize("as_input", [
    lambda d, t: d,
    lambda d, t: encode(Image.fromarray(d)),
    lambda d, t: saved(t, "mnist.png", encode(Image.fromarray(d))),
    lambda d, t: Image.fromarray(d),
], ids=["array", "png_bytes", "png_path", "pil_image"])
def test_real_mnist_digits_pass_through_unchanged(digits, tmp_path, as_input):
    for d in digits:
        assert is_mnist_like(d)
        assert np.array_equal(to_mnist(as_input(d, tmp_path)), d)


@pytest.mark.parametrize("make", [
    lambda d: np.pad(np.asarray(Image.fromarray(d).resize((10, 10))), ((0, 18), (0, 18))),  # 28x28
    lambda d: np.pad(255 - d, ((150, 5), (3, 90)), constant_values=255),  # dark-on-light, bottom-left
], ids=["small_in_corner_28", "off_centre_on_paper"])
def test_off_centre_digit_gets_centred_by_mass(digits, make):
    out = to_mnist(make(digits[0])).astype(np.float64)
    ys, xs = np.indices(out.shape)
    assert abs((out * ys).sum() / out.sum() - 14) <= 1 and abs((out * xs).sum() / out.sum() - 14) <= 1
    rows, cols = np.flatnonzero(out.any(1)), np.flatnonzero(out.any(0))
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 == 20


def bar(h: int, w: int, canvas: tuple[int, int]) -> np.ndarray:
    img = np.full(canvas, 255, np.uint8)
    img[5:5 + h, 7:7 + w] = 0
    return img


@pytest.mark.parametrize("image, expected_hw", [
    (bar(6, 1000, (400, 1200)), (1, 20)),
    (bar(900, 3, (1000, 50)), (20, 1)),
    (bar(2, 40, (28, 60)), (1, 20)),
    (np.eye(300, dtype=np.uint8) * 255, (20, 20)),
])
def test_thin_and_wide_shapes_fit_the_20_box(image, expected_hw):
    out = to_mnist(image)
    rows, cols = np.flatnonzero(out.any(1)), np.flatnonzero(out.any(0))
    assert (rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) == expected_hw
    assert out.max() == 255


def test_single_ink_pixel_becomes_a_small_centred_dot():
    img = np.zeros((9, 9), np.uint8)
    img[2, 6] = 255
    out = to_mnist(img)
    assert 1 <= np.count_nonzero(out) <= 16 and out.max() == 255
    ys, xs = np.nonzero(out)
    assert abs(ys.mean() - 14) <= 1 and abs(xs.mean() - 14) <= 1


def png_header_only(width: int, height: int, rows: int = 0) -> bytes:
    """A 1-bit grayscale PNG of the given size; `rows` real zero rows of data (0 = a stub IDAT)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = b"\0" * (1 + (width + 7) // 8)  # filter byte + packed bits
    body = zlib.compress(row * rows, 9) if rows else zlib.compress(b"\0")
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


@pytest.mark.parametrize("width, height, full", [(10_000, 10_000, True), (50_000, 50_000, False)])
def test_huge_image_is_refused_fast_without_decoding(tmp_path, monkeypatch, width, height, full):
    path = saved(tmp_path, "huge.png", png_header_only(width, height, height if full else 0))
    assert path.stat().st_size < 50_000  # a few KB on disk, 100M+ pixels decoded

    def no_decoding(self):
        raise AssertionError("the image was decoded")
    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)  # refused from the header alone: fast by construction
    with pytest.raises(ImageInputError, match="image too large: huge.png") as err:
        to_mnist(path)
    assert f"{MAX_PIXELS:,}" in str(err.value)
    if full:
        assert "10000x10000" in str(err.value)


def sparse_file(tmp_path: Path, size: int) -> Path:
    path = tmp_path / "big.png"
    with open(path, "wb") as f:
        f.truncate(size)  # sparse: costs no disk
    return path


CLEAR = np.zeros((800, 800, 4), np.uint8)  # an untouched RGBA canvas

BAD_INPUTS = {
    "all_white": (lambda t: np.full((40, 40), 255, np.uint8), "no digit found"),
    "all_black": (lambda t: np.zeros((40, 40), np.uint8), "no digit found"),
    "uniform_gray_jpeg": (lambda t: encode(Image.new("RGB", (64, 64), "gray"), "JPEG"), "no digit found"),
    "one_by_one_png": (lambda t: encode(Image.new("L", (1, 1), 255)), "no digit found"),
    "one_by_one_array": (lambda t: np.full((1, 1), 255, np.uint8), "no digit found"),
    "faint_smudge": (lambda t: np.pad(np.full((5, 5), 20, np.uint8), 10), "no digit found"),
    "random_bytes_named_png": (lambda t: saved(t, "noise.png", np.random.default_rng(0).bytes(5000)),
                               "not an image file: noise.png"),
    "empty_file": (lambda t: saved(t, "empty.png", b""), "not an image file: empty.png"),
    "text_file": (lambda t: saved(t, "notes.txt", b"seven\n"), "not an image file: notes.txt"),
    "truncated_png": (lambda t: saved(t, "cut.png", encode(Image.fromarray(
        np.random.default_rng(0).integers(0, 256, (64, 64), np.uint8)))[:300]), "cut.png"),
    "text_mode_stream": (lambda t: io.StringIO("7"), "opened as text"),
    "file_too_large": (lambda t: sparse_file(t, MAX_FILE_BYTES + 1), "file too large: big.png"),
    "missing_path": (lambda t: t / "nope.png", "no such image file: nope.png"),
    "none": (lambda t: None, "no image given"),
    "number": (lambda t: 42, "unsupported image input of type int"),
    "array_bad_shape": (lambda t: np.zeros((2, 3, 5, 7)), "unsupported image array shape"),
    "array_empty": (lambda t: np.zeros((0, 5)), "unsupported image array size"),
    "array_nan": (lambda t: np.full((8, 8), np.nan), "NaN"),
    "array_strings": (lambda t: np.array([["a", "b"]]), "unsupported image array type"),
    "dict_not_editor": (lambda t: {"image": 1}, "unsupported dict input"),
    "editor_all_none": (lambda t: editor(), "drawing is empty"),
    "editor_transparent": (lambda t: editor(CLEAR, [CLEAR]), "no digit found"),
    "sketchpad_untouched": (lambda t: sketchpad_value(t, Image.new("RGBA", (800, 800))), "no digit found"),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_raises_one_clear_sentence(tmp_path, name):
    make, message = BAD_INPUTS[name]
    with pytest.raises(ImageInputError, match=message) as err:
        to_mnist(make(tmp_path))
    assert isinstance(err.value, ValueError) and "\n" not in str(err.value)


def test_load_image_returns_one_upright_frame(digits):
    img = load_image(gif_two_frames(digits[0], digits[1]))
    assert getattr(img, "n_frames", 1) == 1 and img.size == (112, 112)
    animation = Image.open(io.BytesIO(gif_two_frames(digits[0], digits[1])))
    animation.seek(1)  # a caller's image left on its second frame still gives the first
    assert similarity(to_mnist(animation), digits[0]) > 0.8
    rotated = Image.fromarray(np.pad(255 - digits[0], ((0, 0), (0, 20)), constant_values=255))
    exif = rotated.getexif()
    exif[0x0112] = 6  # EXIF orientation: rotate 90 degrees to display
    upright = load_image(encode(rotated, "JPEG", exif=exif))
    assert upright.size == (28, 48)
