"""Turn outside images (files, drawings, arrays) into MNIST-style digits.

MNIST digits are uint8 [28, 28] with background 0 and ink up to 255. LeCun et al. fitted each
digit's ink into a 20x20 box, keeping its aspect ratio and anti-aliasing, then centred it in
28x28 by its centre of mass. `to_mnist` repeats that recipe for whatever a user hands over:

1. Load safely (`load_image`): the file size is checked before reading and the pixel count from
   the header before decoding; animations give their first frame; EXIF rotation is applied.
   A Gradio editor value (`gr.Sketchpad`, `gr.ImageEditor`) gives its composite, or its
   background and layers stacked when there is no composite.
2. Ink map. If the border is mostly transparent (a drawing on a transparent canvas, a cut-out
   PNG), the ink is the opacity, so strokes count as ink whatever their colour. Otherwise any
   transparency is composited onto white and the luminance is used: the median of the border
   pixels is the background, and whatever differs from it in the other direction (darker on a
   light background, lighter on a dark one) is ink. 16-bit and float data are scaled to 8 bits
   (floats in [0, 1] or [-1, 1] count as the full range). Images over 1024 px per side are
   shrunk first: a 20 px digit needs no more, and memory stays bounded.
3. Contrast: background -> 0, the strongest ink -> 255. A peak under 10 % of the full range means
   the image is blank (an error); ink under 15 % of the peak is noise and is dropped.
4. Crop to the ink's bounding box and resize it to fit 20x20 keeping the aspect ratio (area
   averaging when shrinking, bilinear when enlarging; enlarged at most 4x, so a speck stays a
   small dot), then stretch the peak back to 255.
5. Paste into 28x28 so that the centre of mass lands on pixel (14, 14), where real MNIST digits
   have it (mean 14.0, every one of the 70k within 0.52 px), moved back inside the frame if the
   box would stick out.

A 1x1 image is uniform, hence blank. A 28x28 uint8 image that is already an MNIST-style digit
(`is_mnist_like`) is returned unchanged, so real MNIST digits probe exactly as in training.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import UserError

MAX_PIXELS = 40_000_000  # decoded pixels; a 40 MP photo is fine, a decompression bomb is not
MAX_FILE_BYTES = 20 * 1024 * 1024
SIZE, BOX, CENTRE = 28, 20, 14.0  # MNIST frame, the box the ink fits in, where its mass sits
WORK_SIDE = 1024  # longer inputs are shrunk first (see step 2 above)
MIN_CONTRAST = 0.10  # peak ink below this fraction of full range: blank
NOISE = 0.15  # ink below this fraction of the peak: noise (JPEG ringing, paper grain)
MAX_UPSCALE = 4.0  # so a speck is not blown up into a 20x20 block
_EDITOR_KEYS = {"background", "layers", "composite"}


class ImageInputError(UserError):
    """An input that cannot become a digit; the message is meant for the user."""


def load_image(source: Any) -> Image.Image:
    """Load a path, bytes, file object, PIL image, array or Gradio editor value as one frame."""
    if source is None:
        raise ImageInputError("no image given: upload or draw a digit")
    if isinstance(source, dict):
        return _from_editor(source)
    if isinstance(source, Image.Image):
        return _first_frame(source, "the image")
    if isinstance(source, (str, os.PathLike)):
        return _from_path(Path(source))
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _from_bytes(bytes(source), "the uploaded image")
    if hasattr(source, "read"):
        # read one byte past the limit, so an oversized stream is refused without reading it all
        data = source.read(MAX_FILE_BYTES + 1)
        name = Path(str(getattr(source, "name", "the uploaded file"))).name
        if not isinstance(data, bytes):
            raise ImageInputError(f"not an image file: {name} was opened as text")
        return _from_bytes(data, name)
    if isinstance(source, np.ndarray) or hasattr(source, "__array__"):
        return _from_array(np.asarray(source))
    raise ImageInputError(f"unsupported image input of type {type(source).__name__}")


def header_size(source: str | os.PathLike | bytes, name: str = "the image", max_bytes: int = MAX_FILE_BYTES,
                max_pixels: int = MAX_PIXELS, max_side: int | None = None) -> tuple[int, int]:
    """(width, height) of an image file or bytes, read from its header only; refuses it beyond the limits.

    Nothing is decoded: callers that must decode (Gradio's editor, for one) check with this first.
    """
    try:
        size = len(source) if isinstance(source, (bytes, bytearray)) else os.stat(source).st_size
    except OSError:
        raise ImageInputError(f"no such image file: {name}") from None
    if size > max_bytes:
        raise ImageInputError(f"file too large: {name} is {size / 2**20:.1f} MB, the limit is "
                              f"{max_bytes / 2**20:g} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source) as img:
                w, h = img.size  # from the header: Image.open decodes nothing
    except Image.DecompressionBombError:
        raise ImageInputError(f"image too large: {name} has over {max_pixels:,} pixels, the limit") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ImageInputError(f"not an image file: {name} cannot be read as an image") from None
    if max_side is not None and max(w, h) > max_side:
        raise ImageInputError(f"image too large: {name} is {w}x{h} pixels, the limit is {max_side}x{max_side}")
    if w * h > max_pixels:
        raise ImageInputError(f"image too large: {name} is {w}x{h} = {w * h:,} pixels, the limit is {max_pixels:,}")
    return w, h


def to_mnist(image: Any) -> np.ndarray:
    """Turn anything `load_image` accepts into an MNIST-style digit, uint8 [28, 28]."""
    img = load_image(image)
    if img.mode == "L" and img.size == (SIZE, SIZE) and "transparency" not in img.info:
        arr = np.array(img)  # [28, 28] uint8
        if is_mnist_like(arr):
            return arr  # already normalised: probe exactly what training saw
    ink = _ink(img)  # [H, W] float32, background 0
    peak = float(ink.max())
    if peak < MIN_CONTRAST:
        raise ImageInputError("no digit found: the image is blank")
    ink = ink / peak
    ink[ink < NOISE] = 0.0
    return _centre(_fit_box(_crop(ink)))


def is_mnist_like(arr: np.ndarray) -> bool:
    """Whether `arr` already is an MNIST-style digit: uint8 [28, 28], dark border, centred."""
    if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8 or arr.shape != (SIZE, SIZE):
        return False
    if arr.max() < 128 or np.median(_border(arr)) > 8:
        return False
    # real MNIST: longer side of the ink (>= 64) 14..20 px, centre of mass within 0.52 px of 14
    rows, cols = np.flatnonzero((arr >= 64).any(1)), np.flatnonzero((arr >= 64).any(0))
    side = max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1
    cy, cx = _centre_of_mass(arr.astype(np.float64))
    return 14 <= side <= BOX and abs(cy - CENTRE) <= 1.0 and abs(cx - CENTRE) <= 1.0


def _from_path(path: Path) -> Image.Image:
    if path.is_dir():
        raise ImageInputError(f"not an image file: {path.name or path} is a folder")
    if path.exists() and not path.is_file():  # a FIFO, a socket, /dev/zero: reading could block or never end
        raise ImageInputError(f"not an image file: {path.name or path} is not a regular file")
    if not path.is_file():
        raise ImageInputError(f"no such image file: {path.name or path}")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ImageInputError(f"file too large: {path.name} is {size / 2**20:.1f} MB, "
                              f"the limit is {MAX_FILE_BYTES / 2**20:.0f} MB")
    return _from_bytes(path.read_bytes(), path.name)


def _from_bytes(data: bytes, name: str) -> Image.Image:
    if len(data) > MAX_FILE_BYTES:
        raise ImageInputError(f"file too large: {name} is over {MAX_FILE_BYTES / 2**20:.0f} MB")
    if not data:
        raise ImageInputError(f"not an image file: {name} is empty")
    try:
        with warnings.catch_warnings():
            # our own MAX_PIXELS check below is stricter than PIL's warning threshold
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))  # reads the header only
    except Image.DecompressionBombError as err:
        raise ImageInputError(f"image too large: {name} has over {MAX_PIXELS:,} pixels, "
                              f"the limit") from err
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise ImageInputError(f"not an image file: {name}") from err
    return _first_frame(img, name)


def _first_frame(img: Image.Image, name: str) -> Image.Image:
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise ImageInputError(f"image too large: {name} is {w}x{h} = {w * h:,} pixels, "
                              f"the limit is {MAX_PIXELS:,}")
    if w * h == 0:
        raise ImageInputError(f"empty image: {name} has no pixels")
    try:
        if getattr(img, "is_animated", False) and img.tell() != 0:
            img.seek(0)
        img.load()  # decodes only the current frame
        return ImageOps.exif_transpose(img)  # a single-frame copy, upright
    except (Image.DecompressionBombError, OSError, ValueError, SyntaxError, EOFError) as err:
        raise ImageInputError(f"cannot decode image file: {name} is truncated or corrupt") from err


def _from_array(arr: np.ndarray) -> Image.Image:
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[2] not in (1, 3, 4):
        arr = arr.transpose(1, 2, 0)  # channels-first, as torch tensors come
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise ImageInputError(f"unsupported image array shape {tuple(arr.shape)}: "
                              f"expected [H, W], [H, W, 3] or [H, W, 4]")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ImageInputError(f"unsupported image array type {arr.dtype}: expected numbers")
    h, w = arr.shape[:2]
    if h * w > MAX_PIXELS or h * w == 0:
        raise ImageInputError(f"unsupported image array size {w}x{h}: "
                              f"expected 1 to {MAX_PIXELS:,} pixels")
    if arr.dtype != np.uint8:
        arr = _to_uint8(arr, 65535 if arr.dtype == np.uint16 else None)
    return Image.fromarray(np.ascontiguousarray(arr))


def _to_uint8(arr: np.ndarray, full: float | None) -> np.ndarray:
    """Scale 16-bit, int or float pixels to uint8; `full` is the value meaning white, if known."""
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ImageInputError("unsupported image array: it contains NaN or infinite values")
    lo, hi = arr.min(), arr.max()
    if full is not None:
        arr = arr * (255 / full)
    elif lo >= -1 and hi <= 1:
        arr = (arr + 1) * 127.5 if lo < 0 else arr * 255  # [-1, 1] as a tanh generator gives
    elif hi > 255:
        arr = arr * (255 / max(hi, 65535))  # most likely 16-bit data
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


def _from_editor(value: dict) -> Image.Image:
    if not _EDITOR_KEYS & value.keys():
        raise ImageInputError("unsupported dict input: expected a Gradio editor value "
                              "with background, layers and composite")
    parts = [value.get("composite")]
    if parts[0] is None:
        parts = [value.get("background"), *(value.get("layers") or [])]
    images = [load_image(p).convert("RGBA") for p in parts
              if p is not None and not isinstance(p, dict)]
    if not images:
        raise ImageInputError("no digit found: the drawing is empty")
    canvas = Image.new("RGBA", images[0].size, (0, 0, 0, 0))
    for im in images:  # layers over the background, cut or padded to its size
        canvas.alpha_composite(im.crop((0, 0, *canvas.size)))
    return canvas


def _eight_bit(img: Image.Image) -> Image.Image:
    """The image as L, LA, RGB or RGBA, keeping transparency."""
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        full = 65535 if img.mode.startswith("I;16") else None
        return Image.fromarray(_to_uint8(np.asarray(img), full))
    if img.mode in ("L", "LA", "RGB", "RGBA") and "transparency" not in img.info:
        return img
    if "A" in img.getbands() or "transparency" in img.info:
        return img.convert("RGBA")  # palette, La, RGBa, tRNS chunks
    return img.convert("RGB")  # 1, P, CMYK, YCbCr, LAB, HSV


def _ink(img: Image.Image) -> np.ndarray:
    """Ink map [H, W] in [0, 1], background 0, with polarity decided from the border."""
    img = _eight_bit(img)
    if max(img.size) > WORK_SIDE:
        img = img.copy()
        img.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.BOX)
    gray = np.asarray(img.convert("L"), dtype=np.float32) / 255  # [H, W]
    if img.mode in ("LA", "RGBA"):
        alpha = np.asarray(img.getchannel("A"), dtype=np.float32) / 255  # [H, W]
        if np.median(_border(alpha)) < 0.5:
            return alpha  # strokes on a transparent canvas: opacity is ink, whatever the colour
        gray = gray * alpha + (1 - alpha)  # composite onto white
    background = float(np.median(_border(gray)))
    ink = background - gray if background > 0.5 else gray - background
    return np.clip(ink, 0.0, None)


def _crop(ink: np.ndarray) -> np.ndarray:
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    return ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def _fit_box(patch: np.ndarray) -> np.ndarray:
    """Resize [h, w] ink to fit BOX x BOX keeping aspect ratio; peak back to 1."""
    h, w = patch.shape
    scale = min(BOX / max(h, w), MAX_UPSCALE)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    out = np.asarray(Image.fromarray(patch.astype(np.float32)).resize(size, resample))
    out = np.clip(out, 0.0, None)
    return out / out.max()


def _centre(digit: np.ndarray) -> np.ndarray:
    """Paste [h, w] ink into 28x28 with its centre of mass on (14, 14); uint8 [28, 28]."""
    h, w = digit.shape
    cy, cx = _centre_of_mass(digit)
    top = int(np.clip(round(CENTRE - cy), 0, SIZE - h))
    left = int(np.clip(round(CENTRE - cx), 0, SIZE - w))
    out = np.zeros((SIZE, SIZE), dtype=np.float32)
    out[top:top + h, left:left + w] = digit
    return np.rint(out * 255).astype(np.uint8)


def _centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(a.shape)
    mass = a.sum()
    return float((a * ys).sum() / mass), float((a * xs).sum() / mass)


def _border(a: np.ndarray) -> np.ndarray:
    """The outermost ring of pixels of [H, W] `a`, flattened."""
    return np.concatenate([a[0], a[-1], a[1:-1, 0], a[1:-1, -1]])
