"""Command line: `python -m gancls {train,sample,write,probe,eval} ...` over the library API."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import Sequence

import numpy as np

from . import validate
from .config import ARCHES, LOSSES, OBJECTIVES, PRECISIONS
from .errors import UserError
from .shipped import shipped_path

PRETRAINED = shipped_path("pretrained")
MAX_SAMPLES = 100_000  # digits one `sample` call writes (labels x per-label); generated in chunks
EXIT_INTERNAL = 70  # a bug, not the user's input (sysexits' EX_SOFTWARE); 2 is a user error, 3 a diverged run


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
    t.add_argument("--max-seconds", type=float, default=None, help="stop after this many seconds of training in this run (a resume is a new run)")
    t.add_argument("--batch-size", type=int, default=None, help="images per batch (seed: 10, fast: 32)")
    t.add_argument("--lr-d", type=float, default=None, help="Adam learning rate for D")
    t.add_argument("--lr-g", type=float, default=None, help="Adam learning rate for G")
    t.add_argument("--mode-seeking", type=float, default=None,
                   help="weight of G's mode-seeking term, which keeps digits of one label varied (fast: 0.005, "
                        "then 0.02 after 25,600 images; a weight given here holds for the whole run; 0 = off)")
    t.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    t.add_argument("--autosave-seconds", type=float, default=None, help="save every this many seconds (default 60; 0 = only at the end)")
    t.add_argument("--resume", action="store_true", help="continue the run saved in --out from its step")
    t.add_argument("--overwrite", action="store_true", help="start a new run even if --out already holds one")
    t.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: the cores not kept busy by other work, measured at the start)")
    t.add_argument("--quiet", action="store_true", help="no progress bar, one line at the end")

    s = sub.add_parser("sample", help="generate digits for labels; writes .npz (images, labels) or a .png grid")
    s.add_argument("--checkpoint", default=str(PRETRAINED), help="run directory or checkpoint file (default: the shipped model)")
    s.add_argument("--per-label", type=int, default=None, help="samples per label (default 10; 1 with --style-from); "
                   f"at most {MAX_SAMPLES:,} digits in all")
    s.add_argument("--labels", type=_labels, default=list(range(10)), help="labels, e.g. 0,3,7 (default: 0-9)")
    s.add_argument("--seed", type=int, default=0, help="noise seed")
    s.add_argument("--same-noise", action="store_true", help="one noise vector per column, shared by all labels")
    s.add_argument("--style-from", default=None, metavar="IMAGE",
                   help="write the labels in the handwriting style of this digit image (PNG/JPEG/...)")
    s.add_argument("--out", required=True, help="output .npz or .png")

    w = sub.add_parser("write", help="write a number (up to 16 digits) in one handwriting style, as one .png")
    w.add_argument("--checkpoint", default=str(PRETRAINED), help="run directory or checkpoint file (default: the shipped model)")
    w.add_argument("--text", required=True, help="the digits to write, e.g. 2026 (1 to 16 digits)")
    style = w.add_mutually_exclusive_group()
    style.add_argument("--style-from", default=None, metavar="IMAGE", help="copy the style of this digit image")
    style.add_argument("--seed", type=int, default=None, help="the style of this noise seed (default 0)")
    w.add_argument("--out", required=True, help="output .png")

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

    from .checkpoint import load_checkpoint
    from .config import DEFAULT_EPOCHS, Budget, constant_mode_seeking, model_preset, train_preset
    from .data import load_mnist
    from .device import busy_cores, default_threads, keep_freed_memory, resolve_device, usable_cores
    from .train import CheckpointSaved, Finished, Metrics, Started, Trainer

    # Check the flags before loading data (which may mean a download): a typo should fail at once.
    device = resolve_device(a.device)
    if a.threads is not None:
        validate.whole("--threads", a.threads, 1, 1024)
    if Path(a.out).exists() and not Path(a.out).is_dir():
        raise UserError(f"--out {a.out} is a file; it must be a run directory")
    if a.resume:
        fixed = dict(objective=a.objective, loss=a.loss, batch_size=a.batch_size, lr_d=a.lr_d, lr_g=a.lr_g, seed=a.seed,
                     precision=a.precision, mode_seeking=a.mode_seeking)
        if any(v is not None for v in fixed.values()):
            raise UserError("--resume continues a run with its own settings; only --epochs, --max-steps, "
                            "--max-seconds and --autosave-seconds may be given")
        arch = load_checkpoint(a.out).model.cfg.arch
    else:
        if (Path(a.out) / "gancls.safetensors").exists() and not a.overwrite:
            raise UserError(f"{a.out} already holds a run: continue it with --resume, or pass --overwrite "
                            "to start over (or choose another --out)")
        arch = a.arch
        cfg = train_preset(a.arch, objective=a.objective, loss=a.loss, batch_size=a.batch_size, lr_d=a.lr_d,
                           lr_g=a.lr_g, seed=a.seed, precision=a.precision, autosave_seconds=a.autosave_seconds,
                           **constant_mode_seeking(a.mode_seeking))
    # A step budget alone replaces the preset's epochs; with neither, the preset's epochs apply.
    epochs = a.epochs if a.epochs is not None or a.max_steps is not None else DEFAULT_EPOCHS[arch]
    budget = Budget(steps=a.max_steps, epochs=epochs, seconds=a.max_seconds)

    if device.type == "cpu":
        keep_freed_memory()  # this process only trains: keep big freed blocks for the next step
    data = load_mnist(a.data_dir, allow_download=not a.no_download, log=lambda m: print(f"data: {m}", file=sys.stderr))
    print(f"data: {data.description}", file=sys.stderr)
    if a.resume:
        trainer = Trainer.resume(a.out, data, device=a.device, autosave_seconds=a.autosave_seconds)
    else:
        trainer = Trainer(model_preset(a.arch), cfg, data, device=a.device, run_dir=a.out)
    if a.threads is None and device.type == "cpu":  # chosen once everything else is good
        cores, busy = usable_cores(), busy_cores()
        a.threads = default_threads(cores=cores, busy=busy)
        print(f"threads: {a.threads} (usable cores: {cores}, kept busy by other work: {busy:.1f}; --threads sets it)",
              file=sys.stderr)
    if a.threads is not None:
        import torch

        torch.set_num_threads(a.threads)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):  # finish the step, save, exit cleanly
        signal.signal(sig, lambda *_: stop.set())
    bar = None
    for ev in trainer.run(budget, stop):
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
    from .sampling import grid_image, label_grid, save_png, write_atomic

    out = Path(a.out)
    if out.suffix.lower() not in (".npz", ".png"):
        raise UserError(f"--out must end in .npz or .png (got {out.name})")
    if a.style_from is not None:
        if a.per_label not in (None, 1) or a.same_noise:
            raise UserError("--style-from gives one style, so one digit per label: "
                            "leave out --per-label (or give 1) and --same-noise")
        return _sample_style(a, out)
    per_label = 10 if a.per_label is None else a.per_label
    total = len(a.labels or []) * per_label
    if total > MAX_SAMPLES:  # before loading anything: 100,000 digits are 78 MB as uint8, far more on the way
        raise UserError(f"at most {MAX_SAMPLES:,} digits per call (asked for {len(a.labels):,} labels x "
                        f"{per_label:,} samples per label = {total:,}): split it into several calls")
    ckpt = load_checkpoint(a.checkpoint)
    images, labels = label_grid(ckpt.model, a.labels, per_label, a.seed, same_noise=a.same_noise)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npz":
        write_atomic(out, lambda f: np.savez_compressed(f, images=images.numpy(),
                                                        labels=labels.numpy().astype(np.int64)))
    else:
        save_png(grid_image(images, nrow=per_label), out)
    print(f"wrote {len(images)} digits to {out}")
    return 0


def _sample_style(a: argparse.Namespace, out: Path) -> int:
    """`sample --style-from IMAGE`: the labels in IMAGE's style, one row (npz: images, labels)."""
    from .checkpoint import load_checkpoint
    from .encoder import source_digit, transfer
    from .sampling import grid_image, save_png

    ckpt = load_checkpoint(a.checkpoint)
    source_digit(a.style_from)  # a bad image fails before any encoder training
    result = transfer(ckpt.model, _style_encoder(ckpt, a.checkpoint), a.style_from, a.labels)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npz":
        np.savez_compressed(out, images=result.images, labels=result.labels.astype(np.int64))
    else:
        import torch

        save_png(grid_image(torch.from_numpy(result.images), nrow=len(result.images)), out)
    print(f"wrote {len(result.images)} digits in the style of {Path(a.style_from).name} to {out}")
    return 0


def cmd_write(a: argparse.Namespace) -> int:
    from .checkpoint import load_checkpoint
    from .encoder import check_text, source_digit, write_number
    from .sampling import save_png

    out = Path(a.out)
    if out.suffix.lower() != ".png":
        raise UserError(f"--out must end in .png (got {out.name})")
    check_text(a.text)
    ckpt = load_checkpoint(a.checkpoint)
    encoder = None
    if a.style_from is not None:
        source_digit(a.style_from)  # a bad image fails before any encoder training
        encoder = _style_encoder(ckpt, a.checkpoint)
    image = write_number(ckpt.model, encoder, a.text, style_image=a.style_from, seed=a.seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_png(image, out)
    print(f"wrote {a.text.strip()} ({image.shape[1]}x{image.shape[0]} px) to {out}")
    return 0


def _style_encoder(ckpt, checkpoint_arg: str):
    """The checkpoint's style encoder S, or one trained now (a few seconds) with a note on stderr."""
    from .encoder import train_encoder

    if ckpt.encoder is not None:
        return ckpt.encoder
    why = "was saved for another G" if ckpt.encoder_stale else "is not in the checkpoint"
    print(f"note: the style encoder {why}; training one now (a few seconds, not saved; to keep one, run "
          f"scripts/train_encoder.py from the repository: python -m scripts.train_encoder --checkpoint {checkpoint_arg})",
          file=sys.stderr)
    return train_encoder(ckpt.model)


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
    """Parse arguments and run one command.

    Exit 2 with one `error:` line for a user error (a bad flag, file or image: UserError, or a file the OS
    cannot read or write); anything else is a bug: its traceback, then one `internal error:` line, exit
    EXIT_INTERNAL.
    """
    a = build_parser().parse_args(argv)
    try:
        return {"train": cmd_train, "sample": cmd_sample, "write": cmd_write, "probe": cmd_probe,
                "eval": cmd_eval}[a.command](a)
    except UserError as e:  # DataError, CheckpointError, ConfigError, ImageInputError, ...
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a path the user gave that is missing, unreadable or not writable
        print(f"error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    except Exception as e:
        traceback.print_exc()
        print(f"internal error: {type(e).__name__} in gancls {a.command} — this is a bug, not your input "
              "(the traceback above has the details)", file=sys.stderr)
        return EXIT_INTERNAL
