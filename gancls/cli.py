"""Command line: `python -m gancls {train,sample,probe,eval} ...` over the library API."""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from .config import ARCHES, LOSSES, OBJECTIVES, PRECISIONS

PRETRAINED = Path(__file__).resolve().parents[1] / "checkpoints" / "pretrained"


def _labels(text: str) -> list[int]:
    try:
        return [int(t) for t in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"labels must be digits 0-9 separated by commas, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used by tests and --help)."""
    p = argparse.ArgumentParser(prog="python -m gancls", description="GAN-CLS on handwritten digits.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train (or resume) a model; writes checkpoints to --out")
    t.add_argument("--out", default="run", help="run directory for checkpoints (default: ./run)")
    t.add_argument("--data-dir", default=None, help="MNIST in torchvision's layout (else $GANCLS_DATA, download, embedded subset)")
    t.add_argument("--no-download", action="store_true", help="never try to download MNIST")
    t.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, mps")
    t.add_argument("--arch", default="fast", choices=ARCHES, help="network preset; 'seed' is the TF-1 original (default: fast)")
    t.add_argument("--objective", default=None, choices=OBJECTIVES,
                   help="gan-cls (wrong labels always wrong; default), plain (no real/wrong term), seed (wrong labels from a 2nd batch)")
    t.add_argument("--loss", default=None, choices=LOSSES, help="lsgan (the seed's, default) or bce (Reed et al.)")
    t.add_argument("--precision", default=None, choices=PRECISIONS,
                   help="fp32 (default) or bf16: matmuls and convs in bfloat16 under autocast, weights and Adam in fp32; "
                        "faster where the hardware has bf16 (recent GPUs, AVX-512 BF16 / AMX CPUs)")
    t.add_argument("--epochs", type=float, default=None, help="epochs of int(N / batch) iterations (preset default: 3)")
    t.add_argument("--max-steps", type=int, default=None, help="stop after this many iterations in total")
    t.add_argument("--max-seconds", type=float, default=None, help="stop after this many seconds of this call")
    t.add_argument("--batch-size", type=int, default=None, help="images per batch (seed: 10, fast: 64)")
    t.add_argument("--lr-d", type=float, default=None, help="Adam learning rate for D")
    t.add_argument("--lr-g", type=float, default=None, help="Adam learning rate for G")
    t.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    t.add_argument("--autosave-seconds", type=float, default=None, help="save every this many seconds (default 60; 0 = only at the end)")
    t.add_argument("--resume", action="store_true", help="continue the run saved in --out from its step")
    t.add_argument("--overwrite", action="store_true", help="start a new run even if --out already holds one")
    t.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: torch's choice; 1 is faster on a busy, shared machine)")
    t.add_argument("--quiet", action="store_true", help="no progress bar, one line at the end")

    s = sub.add_parser("sample", help="generate digits for labels; writes .npz (images, labels) or a .png grid")
    s.add_argument("--checkpoint", default=str(PRETRAINED), help="run directory or checkpoint file (default: the shipped model)")
    s.add_argument("--per-label", type=int, default=10, help="samples per label")
    s.add_argument("--labels", type=_labels, default=list(range(10)), help="labels, e.g. 0,3,7 (default: 0-9)")
    s.add_argument("--seed", type=int, default=0, help="noise seed")
    s.add_argument("--same-noise", action="store_true", help="one noise vector per column, shared by all labels")
    s.add_argument("--out", required=True, help="output .npz or .png")

    pr = sub.add_parser("probe", help="the discriminator's match score for an image and a label (or all ten)")
    pr.add_argument("--checkpoint", default=str(PRETRAINED), help="run directory or checkpoint file")
    pr.add_argument("--image", required=True, help="PNG/JPEG/... of a digit, any size, either polarity")
    pr.add_argument("--label", type=int, default=None, help="label 0-9 (default: all ten)")

    e = sub.add_parser("eval", help="judge-based quality of a checkpoint's samples (or of a samples .npz)")
    e.add_argument("--checkpoint", default=str(PRETRAINED), help="run directory, checkpoint file or samples .npz")
    e.add_argument("--per-label", type=int, default=500, help="samples per label to draw from a checkpoint")
    e.add_argument("--seed", type=int, default=0, help="noise seed")
    e.add_argument("--data-dir", default=None, help="MNIST for the real reference (else the usual sources)")
    e.add_argument("--json", default=None, help="also write the figures to this JSON file")
    return p


def cmd_train(a: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .checkpoint import resolve_path
    from .config import model_preset, train_preset, validate_train
    from .data import load_mnist
    from .device import keep_freed_memory, resolve_device
    from .train import CheckpointSaved, Finished, Metrics, Started, Trainer

    # Check the flags before loading data (which may mean a download): a typo should fail at once.
    budget = dict(epochs=a.epochs, max_steps=a.max_steps, max_seconds=a.max_seconds, autosave_seconds=a.autosave_seconds)
    resolve_device(a.device)
    if a.threads is not None:
        if not 1 <= a.threads <= 1024:
            raise ValueError(f"--threads must be from 1 to 1024 (got {a.threads})")
        import torch

        torch.set_num_threads(a.threads)
    if Path(a.out).exists() and not Path(a.out).is_dir():
        raise ValueError(f"--out {a.out} is a file; it must be a run directory")
    if a.resume:
        fixed = dict(objective=a.objective, loss=a.loss, batch_size=a.batch_size, lr_d=a.lr_d, lr_g=a.lr_g, seed=a.seed,
                     precision=a.precision)
        if any(v is not None for v in fixed.values()):
            raise ValueError("--resume continues a run with its own settings; only --epochs, --max-steps, "
                             "--max-seconds and --autosave-seconds may be given")
        train_preset(a.arch, **budget)  # validates the budget flags only; the run keeps its own settings
        resolve_path(a.out)
    else:
        if (Path(a.out) / "gancls.safetensors").exists() and not a.overwrite:
            raise ValueError(f"{a.out} already holds a run: continue it with --resume, or pass --overwrite "
                             "to start over (or choose another --out)")
        cfg = train_preset(a.arch, objective=a.objective, loss=a.loss, batch_size=a.batch_size, lr_d=a.lr_d,
                           lr_g=a.lr_g, seed=a.seed, precision=a.precision, **budget)
        if a.max_steps is not None and a.epochs is None:  # a step budget alone replaces the preset's epochs
            cfg = validate_train(dataclasses.replace(cfg, epochs=None))

    if resolve_device(a.device).type == "cpu":
        keep_freed_memory()  # this process only trains: keep big freed blocks for the next step
    data = load_mnist(a.data_dir, allow_download=not a.no_download, log=lambda m: print(f"data: {m}", file=sys.stderr))
    print(f"data: {data.description}", file=sys.stderr)
    if a.resume:
        trainer = Trainer.resume(a.out, data, device=a.device, **budget)
    else:
        trainer = Trainer(model_preset(a.arch), cfg, data, device=a.device, run_dir=a.out)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):  # finish the step, save, exit cleanly
        signal.signal(sig, lambda *_: stop.set())
    bar = None
    for ev in trainer.run(stop):
        if isinstance(ev, Started):
            total = ev.total_steps
            print(f"train: {'resuming at' if ev.resumed else 'starting at'} step {ev.step} on {ev.device}", file=sys.stderr)
            bar = tqdm(total=total, initial=ev.step, unit="it", disable=a.quiet, dynamic_ncols=True)
        elif isinstance(ev, Metrics) and bar is not None:
            bar.update(ev.step - bar.n)
            bar.set_postfix(loss_d=f"{ev.loss_d:.3f}", loss_g=f"{ev.loss_g:.3f}", real=f"{ev.d_real:.2f}",
                            fake=f"{ev.d_fake:.2f}", wrong=f"{ev.d_wrong:.2f}", img_s=f"{ev.images_per_s:.0f}")
        elif isinstance(ev, CheckpointSaved) and bar is not None:
            bar.write(f"checkpoint: step {ev.step} -> {ev.path}")
        elif isinstance(ev, Finished):
            if bar is not None:
                bar.close()
            m = trainer.last_metrics
            print(f"done: {ev.message} at step {ev.step}"
                  + (f" (loss_d {m['loss_d']:.4f}, loss_g {m['loss_g']:.4f})" if m else "")
                  + (f"; checkpoint {ev.path}" if ev.path else ""))
            return 0 if ev.reason != "diverged" else 3
    return 1


def cmd_sample(a: argparse.Namespace) -> int:
    from .checkpoint import load_checkpoint
    from .sampling import grid_image, label_grid, save_png

    ckpt = load_checkpoint(a.checkpoint)
    out = Path(a.out)
    if out.suffix.lower() not in (".npz", ".png"):
        raise ValueError(f"--out must end in .npz or .png (got {out.name})")
    images, labels = label_grid(ckpt.model, a.labels, a.per_label, a.seed, same_noise=a.same_noise)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npz":
        np.savez_compressed(out, images=images.numpy(), labels=labels.numpy().astype(np.int64))
    else:
        save_png(grid_image(images, nrow=a.per_label), out)
    print(f"wrote {len(images)} digits to {out}")
    return 0


def cmd_probe(a: argparse.Namespace) -> int:
    from .checkpoint import load_checkpoint
    from .images import to_mnist
    from .probe import label_scores, match_scores

    ckpt = load_checkpoint(a.checkpoint)
    digit = to_mnist(a.image)
    if a.label is not None:
        score = float(match_scores(ckpt.model, digit, [a.label])[0])
        print(f"D(image, {a.label}) = {score:.4f}")
    else:
        scores = label_scores(ckpt.model, digit)
        for k, s in enumerate(scores.tolist()):
            print(f"D(image, {k}) = {s:.4f}{'  <- best match' if k == int(scores.argmax()) else ''}")
    return 0


def cmd_eval(a: argparse.Namespace) -> int:
    from .report import evaluate_path

    report = evaluate_path(a.checkpoint, per_label=a.per_label, seed=a.seed, data_dir=a.data_dir)
    text = json.dumps(report, indent=1)
    print(text)
    if a.json:
        Path(a.json).write_text(text + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and run one command; user errors print one line and exit 2."""
    a = build_parser().parse_args(argv)
    try:
        return {"train": cmd_train, "sample": cmd_sample, "probe": cmd_probe, "eval": cmd_eval}[a.command](a)
    except ValueError as e:  # DataError, CheckpointError, ConfigError, ImageInputError are ValueErrors
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
