"""Train the judge classifier on MNIST and write checkpoints/judge.safetensors + judge.json.

    python -m scripts.train_judge --data-dir ../shared/data --out checkpoints/
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shlex
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from gancls.evaluate import reference_values
from gancls.judge import ARCHITECTURE, Judge, images_to_float, judge_predict, save_judge


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, required=True, help="folder holding MNIST/raw/ (torchvision layout)")
    p.add_argument("--out", type=Path, default=Path("checkpoints"), help="folder for judge.safetensors and judge.json")
    p.add_argument("--epochs", type=int, default=6, help="passes over the 60k training digits")
    p.add_argument("--batch-size", type=int, default=128, help="training batch size")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate of the one-cycle schedule")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="AdamW weight decay")
    p.add_argument("--max-shift", type=float, default=2.0, help="augmentation: largest random shift, pixels")
    p.add_argument("--max-rotate", type=float, default=10.0, help="augmentation: largest random rotation, degrees")
    p.add_argument("--max-scale", type=float, default=0.1, help="augmentation: largest relative zoom in or out")
    p.add_argument("--seed", type=int, default=0, help="seed for initialisation, batch order and augmentation")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--dry-run", action="store_true", help="smoke run: 2,000 training and test digits, 1 epoch, no files written")
    args = p.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1:
        p.error("--epochs and --batch-size must be at least 1")
    return args


def load_mnist(data_dir: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST images uint8 [N, 28, 28] and labels int64 [N] from a torchvision-layout folder."""
    from torchvision.datasets import MNIST

    try:
        ds = MNIST(str(data_dir), train=train, download=False)
    except RuntimeError:
        sys.exit(f"error: no MNIST files under {data_dir}/MNIST/raw/ (pass --data-dir).")
    return ds.data, ds.targets


def augment(x: torch.Tensor, args: argparse.Namespace, gen: torch.Generator) -> torch.Tensor:
    """Random small shift, rotation and zoom of float images x [B, 1, 28, 28]."""
    b = x.shape[0]
    u = torch.rand(b, 4, generator=gen) * 2 - 1  # [B, 4] in [-1, 1]
    angle = u[:, 0] * math.radians(args.max_rotate)
    scale = 1 + u[:, 1] * args.max_scale
    shift = u[:, 2:] * args.max_shift * 2 / 28  # pixels → affine_grid's [-1, 1] coordinates
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # [B, 28, 28, 2]
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


def main(argv: list[str] | None = None) -> float:
    """Train, test, and save the judge with its description; returns the final test accuracy."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)

    train_x, train_y = load_mnist(args.data_dir, train=True)  # uint8 [60000, 28, 28], int64 [60000]
    test_x, test_y = load_mnist(args.data_dir, train=False)  # uint8 [10000, 28, 28], int64 [10000]
    if args.dry_run:
        train_x, train_y, test_x, test_y = train_x[:2000], train_y[:2000], test_x[:2000], test_y[:2000]
        args.epochs = 1
    train_f = images_to_float(train_x)  # float [N, 1, 28, 28], converted once

    judge = Judge()
    steps_per_epoch = math.ceil(len(train_x) / args.batch_size)
    opt = torch.optim.AdamW(judge.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch)

    t0 = time.time()
    for epoch in range(args.epochs):
        judge.train()
        order = torch.randperm(len(train_x), generator=gen)
        total_loss = 0.0
        for i in range(steps_per_epoch):
            idx = order[i * args.batch_size : (i + 1) * args.batch_size]  # batches by index: no DataLoader
            x = augment(train_f[idx], args, gen)  # [B, 1, 28, 28]
            loss = F.cross_entropy(judge(x), train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total_loss += loss.item()
        acc = (judge_predict(judge, test_x).predictions == test_y).float().mean().item()
        print(f"epoch {epoch + 1}/{args.epochs}  loss {total_loss / steps_per_epoch:.4f}  "
              f"test acc {acc:.4%}  {time.time() - t0:.0f}s", flush=True)

    judge.eval()
    if args.dry_run:
        print("dry run: nothing written")
        return acc
    weights = save_judge(judge, args.out / "judge.safetensors")
    info = {
        "architecture": ARCHITECTURE,
        "network": "conv3x3(32)-BN-ReLU-maxpool, conv3x3(64)-BN-ReLU-maxpool, dropout, "
        "fc(128)-BN-ReLU, dropout, fc(10)",
        "input": "uint8 [N, 28, 28], 0 = background, 255 = ink; normalised inside the model",
        "n_parameters": sum(p.numel() for p in judge.parameters()),
        "feature_dim": judge.feature_dim,
        "training_command": "python -m scripts.train_judge " + shlex.join(sys.argv[1:] if argv is None else argv),
        "seed": args.seed,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "augmentation": {
            "max_shift_px": args.max_shift,
            "max_rotate_deg": args.max_rotate,
            "max_scale": args.max_scale,
        },
        "test_accuracy": round(acc, 4),
        "train_seconds": round(time.time() - t0),
        "torch": torch.__version__,
        "date": dt.date.today().isoformat(),
        "reference_values": reference_values(judge, test_x, test_y),
    }
    tmp = args.out / "judge.json.tmp"
    tmp.write_text(json.dumps(info, indent=2) + "\n")
    os.replace(tmp, args.out / "judge.json")
    print(f"wrote {weights} ({weights.stat().st_size / 1e6:.2f} MB) and {args.out / 'judge.json'}")
    return acc


if __name__ == "__main__":
    main()
