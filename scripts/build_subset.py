"""Build gancls/assets/mnist_subset.npz: a fixed-seed, class-balanced MNIST subset shipped with the package.

Usage (from the repo root):  python -m scripts.build_subset --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
MAX_BYTES = 4 * 1024 * 1024  # the asset lives in git; keep it small


def balanced_indices(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Pick `per_class` indices of each digit 0-9 without replacement, returned in the original order."""
    picked = []
    for digit in range(10):
        pool = np.flatnonzero(labels == digit)
        if len(pool) < per_class:
            raise ValueError(f"Only {len(pool)} examples of digit {digit}; {per_class} were asked for.")
        picked.append(rng.choice(pool, size=per_class, replace=False))
    # Sorting keeps MNIST's own order, so classes stay interleaved as in the original files.
    return np.sort(np.concatenate(picked))


def build(data_dir: Path, out: Path, seed: int, train_per_class: int, test_per_class: int) -> int:
    """Write the subset npz to `out` and return its size in bytes."""
    from gancls.data import load_mnist

    data = load_mnist(data_dir, allow_download=False)
    rng = np.random.default_rng(seed)
    train_idx = balanced_indices(data.train_labels.numpy(), train_per_class, rng)
    test_idx = balanced_indices(data.test_labels.numpy(), test_per_class, rng)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out,
        train_images=data.train_images.numpy()[train_idx],  # uint8 [10*train_per_class, 28, 28]
        train_labels=data.train_labels.numpy()[train_idx].astype(np.uint8),  # widened to int64 on load
        test_images=data.test_images.numpy()[test_idx],  # uint8 [10*test_per_class, 28, 28]
        test_labels=data.test_labels.numpy()[test_idx].astype(np.uint8),
        # Provenance: positions in the original MNIST train/test files.
        train_indices=train_idx.astype(np.int32),
        test_indices=test_idx.astype(np.int32),
        seed=np.int64(seed),
    )
    return out.stat().st_size


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, build the subset, and report its size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True,
                        help="MNIST in torchvision layout (root, MNIST/ or raw/)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "gancls" / "assets" / "mnist_subset.npz",
                        help="output .npz path")
    parser.add_argument("--seed", type=int, default=0, help="seed for the per-class random choice")
    parser.add_argument("--train-per-class", type=int, default=1000, help="training digits kept per class")
    parser.add_argument("--test-per-class", type=int, default=100, help="test digits kept per class")
    args = parser.parse_args(argv)

    try:
        size = build(args.data_dir, args.out, args.seed, args.train_per_class, args.test_per_class)
    except ValueError as err:  # DataError and bad counts: one clear line, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} ({size:,} bytes, {size / 2**20:.2f} MiB)")
    if size > MAX_BYTES:
        print(f"error: {args.out} is larger than {MAX_BYTES:,} bytes", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
