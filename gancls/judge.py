"""The judge: a small MNIST classifier that scores generated digits, stored as safetensors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .errors import UserError

ARCHITECTURE = "judge-cnn-v1"
DEFAULT_FILENAME = "judge.safetensors"

# MNIST pixel statistics on [0, 1]; normalising inside the model lets callers pass raw pixels.
_MNIST_MEAN = 0.1307
_MNIST_STD = 0.3081


class JudgeError(UserError):
    """Bad input to the judge: a missing or malformed checkpoint, or images of the wrong kind."""


class Judge(nn.Module):
    """conv32 → pool → conv64 → pool → fc(hidden) → fc10, with batch norm and dropout."""

    def __init__(self, width: int = 32, hidden: int = 128, dropout: float = 0.3) -> None:
        super().__init__()
        self.width = width
        self.hidden = hidden
        self.conv1 = nn.Conv2d(1, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(2 * width)
        self.fc1 = nn.Linear(2 * width * 7 * 7, hidden, bias=False)
        self.bn3 = nn.BatchNorm1d(hidden)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, 10)

    @property
    def feature_dim(self) -> int:
        """Length of the penultimate feature vector."""
        return self.hidden

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features [N, hidden] of images x float [N, 1, 28, 28] in [0, 1]."""
        x = (x - _MNIST_MEAN) / _MNIST_STD
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)  # [N, w, 14, 14]
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)  # [N, 2w, 7, 7]
        x = self.drop(x.flatten(1))  # [N, 2w*49]
        return F.relu(self.bn3(self.fc1(x)))  # [N, hidden]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [N, 10] of images x float [N, 1, 28, 28] in [0, 1]."""
        return self.fc2(self.drop(self.features(x)))

    def metadata(self) -> dict[str, str]:
        """The settings that rebuild this network, as safetensors metadata (strings only)."""
        return {"architecture": ARCHITECTURE, "width": str(self.width), "hidden": str(self.hidden)}


class JudgeOutput(NamedTuple):
    """What the judge says about a batch of images."""

    predictions: torch.Tensor  # int64 [N]: the digit the judge reads
    probs: torch.Tensor  # float32 [N, 10]: softmax probabilities
    features: torch.Tensor  # float32 [N, F]: penultimate features, for Fréchet distance and diversity


def default_judge_path() -> Path:
    """The shipped checkpoint: checkpoints/ beside the package, or the copy a wheel installs (gancls/shipped.py)."""
    from .shipped import shipped_path

    return shipped_path(DEFAULT_FILENAME)


def save_judge(judge: Judge, path: str | os.PathLike) -> Path:
    """Write the judge's weights and architecture to a safetensors file, atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    state = {k: v.detach().cpu().contiguous() for k, v in judge.state_dict().items()}
    save_file(state, str(tmp), metadata=judge.metadata())
    os.chmod(tmp, 0o644)  # safetensors creates the file owner-only; the checkpoint is meant to be shared
    os.replace(tmp, path)  # a reader never sees a half-written file
    return path


def load_judge(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> Judge:
    """Load a judge from safetensors (never pickle), in eval mode on `device`."""
    from safetensors import SafetensorError, safe_open

    path = Path(path) if path is not None else default_judge_path()
    if not path.is_file():
        raise JudgeError(f"Judge checkpoint not found: {path}.")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as err:
        raise JudgeError(f"Judge checkpoint {path} is not a readable safetensors file ({err}).") from None
    if meta.get("architecture") != ARCHITECTURE:
        raise JudgeError(
            f"Judge checkpoint {path} has architecture {meta.get('architecture')!r}, expected {ARCHITECTURE!r}."
        )
    try:
        judge = Judge(width=int(meta["width"]), hidden=int(meta["hidden"]))
        judge.load_state_dict(state, strict=True)
    except (KeyError, ValueError, RuntimeError) as err:
        raise JudgeError(f"Judge checkpoint {path} does not match the {ARCHITECTURE} network ({err}).") from None
    return judge.to(device).eval()


def images_to_float(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 images [N, 28, 28] (or [N, 1, 28, 28]) to float [N, 1, 28, 28] in [0, 1]."""
    if not isinstance(images_u8, torch.Tensor) or images_u8.dtype != torch.uint8:
        kind = images_u8.dtype if isinstance(images_u8, torch.Tensor) else type(images_u8).__name__
        raise JudgeError(f"Images must be a uint8 tensor (0 = background, 255 = ink), got {kind}.")
    if images_u8.dim() == 4 and images_u8.shape[1] == 1:
        images_u8 = images_u8[:, 0]
    if images_u8.dim() != 3 or tuple(images_u8.shape[1:]) != (28, 28):
        raise JudgeError(f"Images must have shape [N, 28, 28], got {list(images_u8.shape)}.")
    return images_u8.unsqueeze(1).float().div_(255.0)


@torch.no_grad()
def judge_predict(judge: Judge, images_u8: torch.Tensor, batch_size: int = 1000) -> JudgeOutput:
    """Run the judge on uint8 images [N, 28, 28]; returns (predictions [N], probs [N, 10], features [N, F])."""
    images_to_float(images_u8[:0])  # validate dtype and shape before doing any work
    device = next(judge.parameters()).device
    was_training = judge.training
    judge.eval()  # batch norm must use its running statistics, or scores depend on the batch
    probs, feats = [], []
    for start in range(0, images_u8.shape[0], batch_size):
        x = images_to_float(images_u8[start : start + batch_size]).to(device)  # [B, 1, 28, 28]
        f = judge.features(x)  # [B, F]
        probs.append(judge.fc2(f).softmax(dim=1).cpu())
        feats.append(f.cpu())
    judge.train(was_training)
    if not probs:
        return JudgeOutput(torch.zeros(0, dtype=torch.long), torch.zeros(0, 10), torch.zeros(0, judge.feature_dim))
    p = torch.cat(probs)  # [N, 10]
    return JudgeOutput(p.argmax(dim=1), p, torch.cat(feats))
