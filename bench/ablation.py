"""Ablation bench: GAN-CLS against the plain conditional GAN (and/or the seed's wrong labels), same budget.

    python -m bench.ablation --data-dir ../shared/data --seconds 60 --seed 0 [--objectives gan-cls,plain]

Every arm starts from the same weights and sees the same data order; the arms take turns in
short slices so both see the same machine load, and each gets the same training wall time
(or, with --steps, the same number of steps). Then each is evaluated: judge label accuracy of
its samples, D's mismatch AUC and D-as-classifier accuracy on real test digits, Fréchet distance
and diversity. Prints a table and writes JSON (default bench/results/ablation.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from gancls.data import load_mnist
from gancls.device import describe_device
from gancls.teach import Ablation, Evaluated, results_table
from gancls.train import Finished, Metrics

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "ablation.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=None,
                   help="folder holding MNIST/raw/ (default: download, else the embedded subset)")
    p.add_argument("--objectives", default="gan-cls,plain", help="comma-separated: gan-cls, plain, seed")
    p.add_argument("--arch", default="fast", help="model preset: fast (default), small or seed")
    p.add_argument("--seconds", type=float, default=None, help="training wall time per arm (default 60)")
    p.add_argument("--steps", type=int, default=None, help="train each arm this many steps instead of --seconds")
    p.add_argument("--seed", type=int, default=0, help="seed shared by every arm")
    p.add_argument("--slice", type=float, default=0.25, help="seconds each arm trains before the next takes a turn")
    p.add_argument("--samples-per-label", type=int, default=100, help="samples per digit for the judge metrics")
    p.add_argument("--eval-digits", type=int, default=10_000, help="real test digits for D's metrics and FD")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (1: on a shared machine extra threads mostly wait for each other)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON results")
    p.add_argument("--dry-run", action="store_true", help="a few seconds on the small preset, to check the bench runs")
    return p.parse_args(argv)


def format_table(headers: list[str], rows: list[list]) -> str:
    """A plain-text table with right-aligned numbers."""
    cells = [headers] + [["-" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the ablation, print progress and the table, write the JSON."""
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.dry_run:
        a.arch, a.seconds, a.steps, a.samples_per_label, a.eval_digits = "small", 2.0, None, 10, 500
    try:
        data = load_mnist(a.data_dir, log=lambda line: print(f"[data] {line}", file=sys.stderr))
        ab = Ablation(data, a.objectives, arch=a.arch, seconds=a.seconds, steps=a.steps, seed=a.seed,
                      slice_seconds=a.slice, device=a.device, samples_per_label=a.samples_per_label,
                      eval_digits=a.eval_digits)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    budget = f"{a.steps} steps" if a.steps else f"{ab.seconds:g} s"
    print(f"ablation: {', '.join(ab.objectives)} on {a.arch}, {budget} per arm, seed {a.seed}, "
          f"{describe_device(ab.device)}, data: {data.description}")
    if ab.judge_error:
        print(f"warning: {ab.judge_error} (judge metrics will be missing)", file=sys.stderr)
    t0, last_print = time.perf_counter(), {}
    for arm, ev in ab.run():
        if isinstance(ev, Metrics) and ev.elapsed - last_print.get(arm, -1e9) >= 10:
            last_print[arm] = ev.elapsed
            print(f"  {arm:8s} step {ev.step:6d}  {ev.elapsed:5.1f} s  loss_d {ev.loss_d:7.3f}  loss_g {ev.loss_g:7.3f}"
                  f"  D(real) {ev.d_real:.2f}  D(fake) {ev.d_fake:.2f}  D(wrong) {ev.d_wrong:.2f}", flush=True)
        elif isinstance(ev, Finished):
            print(f"  {arm:8s} finished at step {ev.step}: {ev.message}", flush=True)
        elif isinstance(ev, Evaluated):
            print(f"  {arm:8s} evaluated in {ev.results['eval_seconds']:.1f} s", flush=True)
    headers, rows = results_table(ab.results)
    print()
    print(format_table(headers, rows))
    report = {
        "command": " ".join(shlex.quote(s) for s in ["python", "bench/ablation.py", *(argv or sys.argv[1:])]),
        "settings": {"objectives": ab.objectives, "arch": a.arch, "seconds_per_arm": ab.seconds,
                     "steps_per_arm": ab.steps, "seed": a.seed, "slice_seconds": a.slice,
                     "samples_per_label": a.samples_per_label, "eval_digits": a.eval_digits,
                     "train_config": {k: t.cfg.to_dict() for k, t in ab.trainers.items()}},
        "environment": {"device": describe_device(ab.device), "torch": torch.__version__, "threads": a.threads,
                        "cpus": os.cpu_count(), "python": platform.python_version(), "data": data.description,
                        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                        "wall_seconds": round(time.perf_counter() - t0, 1)},
        "table": {"headers": headers, "rows": rows},
        "results": ab.results,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nwrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
