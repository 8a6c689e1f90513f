"""Time to quality: training seconds until the judge reads >= 95 % and >= 99 % of samples as their label.

    python -m bench.time_to_quality --data-dir ../shared/data --threads 1

Trains the default preset (`fast`) on full MNIST through the engine's own loop (`Trainer.run()`,
as the CLI and the app do: metrics reads, fixed-noise grids, no checkpoints), and every
--eval-every steps pauses the clock to evaluate on the side: 100 samples per digit
(`label_grid(model, range(10), 100, seed=123)`) through the judge (`evaluate_samples` against the
10,000 test digits: label accuracy, diversity, Fréchet distance), and D's mismatch AUC on 2,000
test digits. The generator is suspended while it evaluates, so no training happens off the clock.

Because the machine may be loaded, every point also records steps, images seen and the CPU
seconds the training used: on an idle machine, training seconds ≈ images ÷ (threads × images
per CPU-second), so a figure measured under load can be converted.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import (DEFAULT_DATA_DIR, RESULTS_DIR, format_table, header_lines,
                          load_average, machine_info, verdict, write_json)


# (name, accuracy, also diversity and AUC?, target seconds)
MILESTONES = (("acc ≥ 95 %", 0.95, False, 60.0), ("acc ≥ 99 %", 0.99, False, 300.0),
              ("acc ≥ 99 %, div ≥ 0.9, AUC ≥ 0.99", 0.99, True, 300.0))
MIN_DIVERSITY, MIN_AUC = 0.9, 0.99


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="folder holding MNIST/raw/")
    p.add_argument("--arch", default="fast", help="model preset (default fast, the default preset)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--precision", default=None, help="fp32 or bf16 (default: the preset's)")
    p.add_argument("--batch-size", type=int, default=None, help="default: the preset's")
    p.add_argument("--lr-scale", default="1", help="multiply both learning rates by this, or 'sqrt' for "
                   "sqrt(batch size / the preset's batch size) (a larger batch on a GPU)")
    p.add_argument("--eval-every", type=int, default=100, help="steps between evaluations (default 100)")
    p.add_argument("--max-seconds", type=float, default=360.0,
                   help="training seconds (clock paused for evaluations) before giving up (default 360)")
    p.add_argument("--keep-going", action="store_true", help="train the whole --max-seconds even after every milestone")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "time_to_quality.json", help="where to write the JSON")
    return p.parse_args(argv)


def evaluate(model: Any, data: Any, judge: Any) -> dict[str, float]:
    """The one evaluation protocol (gancls.report.evaluate_model): 100 samples per digit, 2,000 test digits."""
    from gancls.report import evaluate_model

    r = evaluate_model(model, data, judge, per_label=100, eval_digits=2000, seed=123)
    return {k: r[k] for k in ("label_accuracy", "diversity", "nn_diversity", "frechet_distance", "mismatch_auc")}


def reached(point: dict[str, Any], accuracy: float, strict: bool) -> bool:
    """Whether an evaluation point meets a milestone."""
    if point["label_accuracy"] < accuracy:
        return False
    return not strict or ((point["diversity"] or 0) >= MIN_DIVERSITY and point["mismatch_auc"] >= MIN_AUC)


def main(argv: list[str] | None = None) -> int:
    """Train with the clock paused for evaluations; print the milestones and write the JSON."""
    a = parse_args(argv)
    import torch

    from gancls.config import Budget, model_preset, train_preset
    from gancls.data import load_mnist
    from gancls.judge import load_judge
    from gancls.train import Finished, Metrics, Trainer

    from gancls.device import keep_freed_memory

    if a.threads:
        torch.set_num_threads(a.threads)
    keep_freed_memory()  # as `gancls train` does
    info = machine_info()
    info["threads"] = torch.get_num_threads()
    try:
        data = load_mnist(a.data_dir, allow_download=False)
        judge = load_judge()
        # No epoch or time limit of the engine's own: this bench decides when to stop.
        cfg = train_preset(a.arch, seed=a.seed, autosave_seconds=0, precision=a.precision, batch_size=a.batch_size)
        preset_batch = train_preset(a.arch).batch_size
        scale = (cfg.batch_size / preset_batch) ** 0.5 if a.lr_scale == "sqrt" else float(a.lr_scale)
        cfg = dataclasses.replace(cfg, lr_d=cfg.lr_d * scale, lr_g=cfg.lr_g * scale)
        trainer = Trainer(model_preset(a.arch), cfg, data, device=a.device)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    points: list[dict[str, Any]] = []
    hit: dict[str, dict[str, Any]] = {}
    train_s = cpu_s = 0.0
    next_eval = a.eval_every
    loads = [load_average()]
    events = trainer.run(Budget())  # no limit of the engine's own: this bench decides when to stop
    t0, c0 = time.perf_counter(), time.process_time()
    for event in events:
        if isinstance(event, Finished):
            break
        if not isinstance(event, Metrics) or event.step < next_eval:
            continue
        # Stop the clock: the generator stays suspended at this yield while we evaluate.
        train_s += time.perf_counter() - t0
        cpu_s += time.process_time() - c0
        next_eval = (event.step // a.eval_every + 1) * a.eval_every
        trainer.sync_model()  # the averaged G's BN statistics for this step (untimed, as the evaluation)
        point = {"step": event.step, "images_seen": event.images_seen, "train_seconds": train_s,
                 "train_cpu_seconds": cpu_s, "images_per_s": event.images_seen / train_s,
                 "images_per_cpu_s": event.images_seen / cpu_s, "load_1min": load_average()[:1],
                 **evaluate(trainer.model, data, judge)}
        points.append(point)
        print(f"step {point['step']:5d}  {train_s:6.1f} s  acc {point['label_accuracy']:.3f}  "
              f"div {point['diversity'] or float('nan'):.3f}  AUC {point['mismatch_auc']:.4f}  "
              f"FD {point['frechet_distance'] or float('nan'):.1f}  {point['images_per_s']:.0f} img/s  "
              f"load {point['load_1min']}", flush=True)
        for name, acc, strict, _ in MILESTONES:
            if name not in hit and reached(point, acc, strict):
                hit[name] = point
        if train_s >= a.max_seconds or (len(hit) == len(MILESTONES) and not a.keep_going):
            break
        if len(points) % 10 == 0:
            loads.append(load_average())
        t0, c0 = time.perf_counter(), time.process_time()
    events.close()  # ends the engine's loop (no run dir: nothing is saved)
    loads.append(load_average())
    info["load_average_at_end"] = load_average()

    rows, milestones = [], {}
    for name, acc, strict, target in MILESTONES:
        p = hit.get(name)
        milestones[name] = {"target_seconds": target, "point": p,
                            "verdict": verdict(p["train_seconds"], target, higher_is_better=False) if p else
                            f"not reached in {train_s:.0f} s"}
        rows.append([name, p and p["train_seconds"], p and p["step"], p and p["images_seen"],
                     p and p["train_cpu_seconds"], p and p["images_per_cpu_s"], p and p["label_accuracy"],
                     p and p["diversity"], p and p["mismatch_auc"], target, milestones[name]["verdict"]])
    out = {"machine": info, "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(a).items()},
           "train_config": cfg.to_dict(), "load_average_samples": loads, "milestones": milestones, "points": points}
    print()
    print("\n".join(header_lines(info)))
    print(f"threads: {info['threads']}; load samples (1/5/15 min): {loads}")
    print()
    print(format_table(["milestone", "train s", "steps", "images", "CPU s", "img/CPU-s", "acc", "diversity", "AUC",
                        "target s", "verdict"], rows))
    print("(train s = wall seconds of training with the clock paused for evaluation; on an idle machine "
          "expect about images ÷ (threads × img/CPU-s))")
    print(f"wrote {write_json(a.out, out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
