"""The style encoder S (Reed et al. 2016, §4.4): a digit back to the noise G would draw it from.

G(z, y) writes label y in a style given by the noise z. S is trained against a frozen G to invert
it, min E‖z − S(G(z, y))‖² over z ~ N(0, I) and uniform labels, so S(x) is the style of any digit
x and G(S(x), y') writes y' "in x's hand". S sees only the image (a drawing has no label) and
predicts only the noise part of G's input; the label code is G's own one-hot.

Public calls (each validates its inputs and raises StyleError with a message meant for people):
  train_encoder(model, cfg)                  -> StyleEncoder, trained in seconds on a CPU
  source_digit(image)                        -> the MNIST-style uint8 [28, 28] digit S will read
  style_of(encoder, digits)                  -> noise [N, noise_dim]
  transfer(model, encoder, image, labels)    -> StyleTransfer(source, noise, images, labels)
  write_number(model, encoder, text, ...)    -> uint8 [28, 28 * len(text)]

arch="seed" normalises with batch statistics even when sampling, so a digit depends on its batch
(ten labels of one style in one batch would even normalise each other away). `render` therefore
normalises with the statistics of a fixed reference batch of 64 ordinary (label, noise) pairs, as
the seed trained: a rendering then depends only on (noise, label), whatever else is asked for.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from . import validate
from .errors import UserError
from .images import ImageInputError, load_image, to_mnist
from .models import GANCLS
from .sampling import to_uint8

MAX_TEXT = 16  # digits write_number writes in one image
MAX_LABELS = 1000  # digits one transfer call renders
# A digit on a plain background is background or ink, with mid-tones only along stroke edges:
# at most 9.6 % of the pixels of 20,000 MNIST training digits lie between 15 % and 60 % of the
# peak contrast. Photos and noise are mostly mid-tones (46-61 % in the examples we measured).
MAX_MIDTONES = 0.25
_TEXTURE_SIDE = 256  # the mid-tone share is measured on a thumbnail: bounded work, same answer
_REFERENCE_BATCH = 64  # arch="seed": normalise with a fixed, training-like batch's statistics (module doc)


class StyleError(UserError):
    """An input the style encoder cannot use; the message is meant for the user."""


@dataclass(frozen=True)
class EncoderConfig:
    """Shapes of S: 28x28 -> conv(k4, s2) -> 14x14xc1 -> conv(k4, s2) -> 7x7xc2 -> fc -> noise_dim."""

    noise_dim: int = 38
    conv1: int = 16  # twice these widths did about as well (bench/style_transfer.py) at 1.6x the time
    conv2: int = 32
    fc: int = 128

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if type(getattr(self, f.name)) is not int or not 0 < getattr(self, f.name) <= 4096:
                raise StyleError(f"style encoder width {f.name} must be a whole number from 1 to 4096 "
                                 f"(got {getattr(self, f.name)!r})")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> EncoderConfig:
        """Build from a plain dict (e.g. checkpoint metadata); unknown or missing fields are errors."""
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(d, dict) or set(d) != names:
            raise StyleError(f"style encoder config must have exactly the fields {', '.join(sorted(names))}")
        return cls(**d)


@dataclass(frozen=True)
class EncoderTrainConfig:
    """How to train S: Adam on the latent loss plus a pixel term on real digits (bench/style_transfer.py
    measured both: the pixel term brings re-renderings closer to their sources at about twice the cost)."""

    steps: int = 300
    batch_size: int = 64  # G samples per step, for the latent loss
    lr: float = 2e-3  # decays to 0 on a cosine over the steps
    seed: int = 0
    recon_weight: float = 10.0  # weight of mean‖G(S(x), y) − x‖² on real digits; 0 = the paper's latent loss only
    recon_batch_size: int = 32  # real digits per step for the pixel term

    def __post_init__(self) -> None:
        checked = {  # canonical types (3.0 from a UI becomes 3), or a UserError naming the setting
            "steps": validate.whole("style encoder training steps", self.steps, 1, 100_000),
            "batch_size": validate.whole("style encoder batch size", self.batch_size, 1, 4096),
            "lr": validate.number("style encoder learning rate", self.lr, 0, 1, low_open=True),
            "seed": validate.seed("style encoder seed", self.seed),
            "recon_weight": validate.number("style encoder reconstruction weight", self.recon_weight, 0, 1e6),
            "recon_batch_size": validate.whole("style encoder reconstruction batch size", self.recon_batch_size, 1, 4096),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)


class StyleEncoder(nn.Module):
    """S(x): digits [N, 1, 28, 28] in [0, 1] -> the noise [N, noise_dim] G would draw them from."""

    def __init__(self, cfg: EncoderConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.cfg = cfg
        self.info: dict[str, Any] = {}  # how it was trained; saved with it in a checkpoint
        self.conv1 = nn.Conv2d(1, cfg.conv1, 4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(cfg.conv1, cfg.conv2, 4, stride=2, padding=1)
        self.fc = nn.Linear(7 * 7 * cfg.conv2, cfg.fc)
        self.out = nn.Linear(cfg.fc, cfg.noise_dim)
        for m in (self.conv1, self.conv2, self.fc, self.out):
            if m.weight.device.type != "meta":  # shapes-only builds (checkpoint checks) skip init
                nn.init.xavier_uniform_(m.weight, generator=generator)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x [N, 1, 28, 28] in [0, 1] -> noise [N, noise_dim]
        h = F.leaky_relu(self.conv1(x), 0.2)  # [N, c1, 14, 14]
        h = F.leaky_relu(self.conv2(h), 0.2)  # [N, c2, 7, 7]
        h = F.leaky_relu(self.fc(h.flatten(1)), 0.2)  # [N, fc]
        return self.out(h)  # [N, noise_dim]


class StyleTransfer(NamedTuple):
    """One source digit re-written as other labels."""

    source: np.ndarray  # uint8 [28, 28]: the digit S read (what "D sees")
    noise: np.ndarray  # float32 [noise_dim]: its style
    images: np.ndarray  # uint8 [N, 28, 28]: labels[i] in that style
    labels: np.ndarray  # int64 [N]


def train_encoder(model: GANCLS, cfg: EncoderTrainConfig | None = None, *,
                  real: tuple[torch.Tensor, torch.Tensor] | None = None,
                  shape: EncoderConfig | None = None, stop: threading.Event | None = None) -> StyleEncoder:
    """Train S against a frozen copy of `model`'s G (the model is not touched); returns S in eval mode.

    Each step draws z ~ N(0, I) and uniform labels, renders G(z, y) (rounded to 8 bits, as real
    inputs arrive) and regresses S onto z. With cfg.recon_weight > 0 a pixel term ‖G(S(x), y) − x‖²
    on a batch of real digits is added, its gradient flowing through the frozen G; the digits are
    `real` = (uint8 [N, 28, 28], int64 labels [N]), else the embedded subset's training digits.
    `shape` sets S's widths (default EncoderConfig's). `stop` ends training early (S still works).
    """
    cfg = cfg or EncoderTrainConfig()
    shape = dataclasses.replace(shape or EncoderConfig(), noise_dim=model.cfg.noise_dim)
    if cfg.recon_weight > 0:
        if real is None:
            from .data import load_embedded

            sub = load_embedded()
            real = (sub.train_images, sub.train_labels)
        real_x, real_y = _check_real(real)
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(cfg.seed)
    enc = StyleEncoder(shape, generator=g).to(device)
    opt = torch.optim.Adam(enc.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1 + math.cos(math.pi * i / cfg.steps)))
    k = model.cfg.num_classes
    # A frozen copy of G: the caller's model is never touched (no mode or grad flags flipped, no
    # .grad buffers filled by the pixel term), so a UI may keep sampling from it meanwhile.
    G = copy.deepcopy(model.G).eval().requires_grad_(False)
    t0, loss_latent, steps_done = time.perf_counter(), float("nan"), 0
    for step in range(cfg.steps):
        if stop is not None and stop.is_set():
            break
        z = torch.randn(cfg.batch_size, model.cfg.noise_dim, generator=g).to(device)  # [B, noise_dim]
        y = torch.randint(k, (cfg.batch_size,), generator=g).to(device)  # [B]
        with torch.no_grad():
            x = (G(z, y) * 255).round() / 255  # [B, 1, 28, 28]: 8-bit, like any real input
        loss = F.mse_loss(enc(x), z)
        loss_latent = float(loss.detach()) if step % 50 == 0 or step == cfg.steps - 1 else loss_latent
        if cfg.recon_weight > 0:
            idx = torch.randint(len(real_x), (cfg.recon_batch_size,), generator=g)
            xr = real_x[idx].to(device).unsqueeze(1).float() / 255  # [b, 1, 28, 28]
            rec = G(enc(xr), real_y[idx].to(device))  # the gradient flows through the frozen G into S
            loss = loss + cfg.recon_weight * F.mse_loss(rec, xr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        steps_done = step + 1
    enc.eval()
    enc.info = {"train_config": dataclasses.asdict(cfg), "steps_done": steps_done,
                "train_seconds": round(time.perf_counter() - t0, 2), "final_latent_mse": round(loss_latent, 5)}
    return enc


def _check_real(real: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = real
    if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8 or x.dim() != 3 or tuple(x.shape[1:]) != (28, 28):
        raise StyleError("real digits must be a uint8 tensor [N, 28, 28]")
    return x, validate.labels_for(y, len(x), "real digit labels")


@torch.no_grad()
def latent_error(model: GANCLS, encoder: StyleEncoder, n: int = 1000, seed: int = 1) -> float:
    """Mean squared error ‖z − S(G(z, y))‖² per noise dimension over n fresh (z, y) pairs."""
    g = torch.Generator().manual_seed(seed)
    z = model.noise(n, g)  # [n, noise_dim]
    y = torch.randint(model.cfg.num_classes, (n,), generator=g)
    x = render(model, z, y)  # uint8 [n, 28, 28]
    return float(F.mse_loss(style_of(encoder, x), z))


@torch.no_grad()
def render(model: GANCLS, noise: torch.Tensor, labels: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """uint8 digits [N, 28, 28]: G(noise[i], labels[i]) in eval mode (see the module doc for arch=seed)."""
    y = validate.labels(labels, model.cfg.num_classes)
    noise = noise.float().reshape(len(y), model.cfg.noise_dim)
    if not model.cfg.batch_stats_always:
        return to_uint8(model.sample(y, noise=noise))
    device = next(model.parameters()).device
    return to_uint8(_reference_stats_g(model)(noise.to(device), y.to(device)))


def _reference_stats_g(model: GANCLS) -> nn.Module:
    """arch=seed: a copy of G (eval mode) that normalises with a fixed reference batch's statistics.

    The batch is 64 ordinary (label, noise) pairs from seed 0, like a training batch; with it, a
    digit depends only on its own (noise, label). A copy, so concurrent callers never share state.
    """
    G = copy.deepcopy(model.G).eval()
    norms = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    stats: dict[nn.Module, tuple[torch.Tensor, torch.Tensor]] = {}

    def keep(mod: nn.Module, inputs: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
        x = inputs[0]
        dims = [0, *range(2, x.dim())]  # all but the channel dimension
        stats[mod] = (x.mean(dims), x.var(dims, unbiased=False))  # what batch-stat normalisation divides by

    hooks = [m.register_forward_hook(keep) for m in norms]
    g = torch.Generator().manual_seed(0)
    ref_y = torch.randint(model.cfg.num_classes, (_REFERENCE_BATCH,), generator=g)
    device = next(model.parameters()).device
    G(model.noise(_REFERENCE_BATCH, g).to(device), ref_y.to(device))
    for h in hooks:
        h.remove()
    for m in norms:  # in eval mode a batch norm with running statistics uses them instead of the batch's
        m.running_mean, m.running_var = stats[m]
    return G


@torch.no_grad()
def style_of(encoder: StyleEncoder, digits: Any) -> torch.Tensor:
    """The styles (noise [N, noise_dim], float32, CPU) of uint8 digits [N, 28, 28] or one [28, 28]."""
    x = validate.digits(digits, "style sources")  # uint8 [N, 28, 28]
    device = next(encoder.parameters()).device
    was_training = encoder.training
    encoder.eval()
    try:
        return encoder(x.to(device).unsqueeze(1).float() / 255).float().cpu()
    finally:
        encoder.train(was_training)


def source_digit(image: Any) -> np.ndarray:
    """An upload, drawing, path or array as the MNIST-style uint8 [28, 28] digit S reads.

    Refuses what has no handwriting style: a blank image (a 1x1 image is blank too), and a photo or
    noise, which is mostly mid-tones where a digit on a plain background is background or ink.
    """
    try:
        img = load_image(image)  # size limits are checked before decoding
        mid = _midtone_share(img)
        if mid > MAX_MIDTONES:
            raise StyleError(f"this looks like a photo or a texture, not a digit: {mid:.0%} of it is mid-tones "
                             f"(a digit on a plain background has under {MAX_MIDTONES:.0%}); "
                             f"crop to one handwritten digit on plain paper, or draw one")
        return to_mnist(img)
    except ImageInputError as err:
        if "blank" in str(err):
            raise StyleError(f"{err}; a blank drawing has no handwriting style to copy: draw or upload a digit") from None
        raise StyleError(str(err)) from None


def _midtone_share(img: Image.Image) -> float:
    """Share of pixels whose contrast to the border's background is 15-60 % of the strongest."""
    img = img.copy()
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):  # 16-bit or float: scale to 8 bits first
        a = np.nan_to_num(np.asarray(img, dtype=np.float64))  # NaN pixels are refused later, by to_mnist
        a = (a - a.min()) / max(float(a.max() - a.min()), 1e-12)
        img = Image.fromarray(np.rint(a * 255).astype(np.uint8))
    img.thumbnail((_TEXTURE_SIDE, _TEXTURE_SIDE), Image.Resampling.BOX)
    if img.mode not in ("L", "RGB"):
        img = img.convert("RGBA")
    gray = np.asarray(img.convert("L"), dtype=np.float32) / 255  # [H, W]
    if img.mode == "RGBA":
        alpha = np.asarray(img.getchannel("A"), dtype=np.float32) / 255
        if np.median(_border(alpha)) < 0.5:  # strokes on a transparent canvas: opacity is the ink
            gray = 1 - alpha
        else:
            gray = gray * alpha + (1 - alpha)  # composite onto white, as images.to_mnist does
    contrast = np.abs(gray - np.median(_border(gray)))
    peak = float(contrast.max())
    if peak == 0:
        return 0.0  # uniform: blank, which to_mnist reports
    c = contrast / peak
    return float(((c > 0.15) & (c < 0.6)).mean())


def _border(a: np.ndarray) -> np.ndarray:
    return np.concatenate([a[0], a[-1], a[1:-1, 0], a[1:-1, -1]])


def transfer(model: GANCLS, encoder: StyleEncoder, image: Any,
             labels: Sequence[int] | torch.Tensor = tuple(range(10))) -> StyleTransfer:
    """Write `labels` in the style of `image` (anything `source_digit` takes): one call for a UI."""
    _check_pair(model, encoder)
    y = validate.labels(labels, model.cfg.num_classes, max_count=MAX_LABELS)
    source = source_digit(image)
    z = style_of(encoder, source)  # [1, noise_dim]
    images = render(model, z.expand(len(y), -1), y)
    return StyleTransfer(source, z[0].numpy(), images.numpy(), y.numpy())


def check_text(text: Any) -> str:
    """The digits of a number to write: 1 to MAX_TEXT characters 0-9 (surrounding spaces ignored)."""
    if isinstance(text, (int, np.integer)) and not isinstance(text, bool) and text >= 0:
        text = str(int(text))
    if not isinstance(text, str):
        raise StyleError(f"the number to write must be text of digits 0-9 (got {type(text).__name__})")
    t = text.strip()
    if not t:
        raise StyleError(f"nothing to write: type 1 to {MAX_TEXT} digits, e.g. 2026")
    bad = next((c for c in t if c not in "0123456789"), None)
    if bad is not None:
        raise StyleError(f"only the digits 0-9 can be written (found {bad!r}); write a date as 20261231")
    if len(t) > MAX_TEXT:
        raise StyleError(f"at most {MAX_TEXT} digits can be written in one image (got {len(t)})")
    return t


def write_number(model: GANCLS, encoder: StyleEncoder | None, text: Any, *, style_image: Any = None,
                 seed: int | None = None) -> np.ndarray:
    """`text` (1-16 digits) written in one style as one uint8 image [28, 28 * len(text)].

    The style is `style_image`'s (needs `encoder`), else that of seed `seed` (0 if neither):
    the noise `model.noise(1, torch.Generator().manual_seed(seed))` draws.
    """
    t = check_text(text)
    if style_image is not None and seed is not None:
        raise StyleError("give a style image or a seed, not both")
    if style_image is not None:
        if encoder is None:
            raise StyleError("this model has no style encoder to read a style image with; train one first "
                             "(scripts/train_encoder.py, from the repository: "
                             "python -m scripts.train_encoder --checkpoint CHECKPOINT)")
        _check_pair(model, encoder)
        z = style_of(encoder, source_digit(style_image))  # [1, noise_dim]
    else:
        seed = validate.seed("seed", 0 if seed is None else seed)
        z = model.noise(1, torch.Generator().manual_seed(seed)).cpu()
    digits = render(model, z.expand(len(t), -1), [int(c) for c in t])  # [n, 28, 28]
    return digits.permute(1, 0, 2).reshape(28, 28 * len(t)).numpy()


def _check_pair(model: GANCLS, encoder: StyleEncoder) -> None:
    if not isinstance(encoder, StyleEncoder):
        raise StyleError("no style encoder given: train one first (gancls.encoder.train_encoder)")
    if encoder.cfg.noise_dim != model.cfg.noise_dim:
        raise StyleError(f"this style encoder predicts {encoder.cfg.noise_dim} noise dimensions, "
                         f"but the model's G takes {model.cfg.noise_dim}: they belong to different models")
