"""Where the shipped weights are: checkpoints/ (the pretrained model, the judge) of the repository.

A clone, an editable install and a Space have checkpoints/ beside the gancls package; `pip install .`
copies it into the package as gancls/checkpoints (pyproject.toml's package-dir), so an installed
`gancls` finds them from any folder.
"""

from __future__ import annotations

from pathlib import Path

BESIDE = Path(__file__).resolve().parents[1] / "checkpoints"  # the checkout's (scripts/train_*.py write here)
INSIDE = Path(__file__).resolve().parent / "checkpoints"  # an installed wheel's copy


def shipped_path(name: str) -> Path:
    """checkpoints/<name> beside the package, else inside it; the one beside when neither exists (errors name it)."""
    for folder in (BESIDE, INSIDE):
        if (folder / name).exists():
            return folder / name
    return BESIDE / name
