"""Digit grids are laid out as torchvision's make_grid lays them out, without importing torchvision."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gancls.sampling import grid_image

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("n, nrow, padding", [(2, 1, 2), (10, 10, 2), (23, 5, 2), (12, 4, 0), (7, 16, 3)])
def test_grid_matches_make_grid(n: int, nrow: int, padding: int) -> None:
    from torchvision.utils import make_grid

    digits = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(n))
    expected = make_grid(digits.unsqueeze(1), nrow=nrow, padding=padding, pad_value=64)[0].numpy()
    got = grid_image(digits, nrow=nrow, padding=padding)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert (got == expected).all()


def test_a_single_digit_is_framed_like_the_others() -> None:
    # make_grid returns a lone image unpadded; a grid of one keeps its frame, so row labels still line up.
    got = grid_image(torch.full((1, 28, 28), 200, dtype=torch.uint8), nrow=8)
    assert got.shape == (32, 32) and got[0, 0] == 64 and got[2, 2] == 200


def test_non_uint8_digits_are_refused() -> None:
    with pytest.raises(ValueError, match="uint8"):
        grid_image(torch.zeros(4, 28, 28), nrow=2)


@pytest.mark.slow  # a fresh interpreter that builds the whole app
def test_the_app_starts_without_torchvision() -> None:
    # Importing torchvision (and the torch._dynamo it pulls in) took seconds of the app's cold start.
    code = ("import sys; from demo.main import build_app, build_parser; "
            "build_app(build_parser().parse_args([])); print('torchvision' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "False"
