"""Train the model that ships in checkpoints/pretrained, record how (a replay for the class) and its judge figures.

    python -m scripts.train_pretrained --data-dir ../shared/data --steps 6000 --threads 1 --out checkpoints/pretrained

Trains the default preset on full MNIST (its averaged G, TrainConfig.ema_decay, is what is evaluated
and saved), evaluates with the judge every --eval-every steps (1,000 samples, 2,000 test digits for
D's figures: gancls.report.evaluate_model) and keeps, of the evaluated states that meet the shipping
targets (label accuracy >= 0.995, diversity >= 0.92, nearest-neighbour diversity >= 0.85), the one
furthest inside all of them (the largest smallest margin: one evaluation is noisy, so a state just over
a line may fall under it in another); if none does, the most diverse (diversity + nearest-neighbour
diversity) among those with label accuracy >= 0.995; failing that, the most accurate. Saves
weights only, and `replay.npz` beside them (gancls.replay): the fixed-noise grid at about --frames
steps spaced geometrically (digits form in the first few hundred steps) up to the kept step, the
metrics history and the evaluations up to it.
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch


from gancls.checkpoint import save_checkpoint
from gancls.config import Budget, constant_mode_seeking, model_preset, train_preset
from gancls.data import load_mnist
from gancls.judge import load_judge
from gancls.replay import save_replay
from gancls.report import evaluate_model
from gancls.train import Finished, Samples, Trainer

TARGETS = {"label_accuracy": 0.995, "diversity": 0.92, "nn_diversity": 0.85}
MAX_REPLAY_MB = 4.0


def evaluate(model, data, judge) -> dict:
    """The headline figures of the one evaluation protocol (gancls.report.evaluate_model)."""
    r = evaluate_model(model, data, judge, per_label=100, eval_digits=2000, seed=123)
    keep = ("label_accuracy", "diversity", "nn_diversity", "frechet_distance", "judge_confidence", "mismatch_auc")
    return {k: None if r[k] is None else round(float(r[k]), 4) for k in keep}


def rank(figures: dict) -> tuple:
    """Larger is better: all targets met (then the smallest margin), else accurate and diverse."""
    if shortfall(figures) == 0:
        return (2, min(figures[k] - target for k, target in TARGETS.items()))
    if figures["label_accuracy"] >= TARGETS["label_accuracy"]:
        return (1, (figures["diversity"] or 0.0) + (figures["nn_diversity"] or 0.0))
    return (0, figures["label_accuracy"])


def shortfall(figures: dict) -> float:
    """How far the figures are below the shipping targets, summed (0 = all met)."""
    return sum(max(0.0, target - (figures[k] or 0.0)) for k, target in TARGETS.items())


def frame_steps(steps: int, frames: int) -> list[int]:
    """Step 0 and about `frames` steps up to `steps`, spaced geometrically from step 4."""
    geo = np.geomspace(4, steps, frames).round().astype(int)
    return sorted({0, *geo.tolist()})


def thin_frames(frames: list) -> list:
    """Two frames in three (every third left out), the first and last kept."""
    inner = frames[1:-1]
    return frames if len(frames) <= 2 else frames[:1] + [f for i, f in enumerate(inner) if i % 3 != 2] + frames[-1:]


def thin_metrics(history: list[dict], cap: int) -> list[dict]:
    """At most `cap` entries, evenly spread, the first and last kept."""
    if len(history) <= cap:
        return history
    idx = np.linspace(0, len(history) - 1, cap).round().astype(int)
    return [history[i] for i in sorted(set(idx.tolist()))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="../shared/data", help="full MNIST in torchvision's layout")
    p.add_argument("--arch", default="fast", help="model preset")
    p.add_argument("--steps", type=int, default=6000, help="training iterations")
    p.add_argument("--eval-every", type=int, default=250, help="iterations between evaluations")
    p.add_argument("--frames", type=int, default=130, help="about how many fixed-noise grids the replay records")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--out", default="checkpoints/pretrained", help="output directory")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--mode-seeking", type=float, default=None, help="weight of G's mode-seeking term for the whole "
                   "run (default: the preset's schedule, TrainConfig.mode_seeking_at)")
    p.add_argument("--max-minutes", type=float, default=0, help="stop after the first evaluation past this "
                   "much wall-clock time and keep the best so far (0 = no limit)")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)  # tiny values early in training can make CPU steps several times slower

    data = load_mnist(a.data_dir, allow_download=False)
    judge = load_judge()
    cfg = train_preset(a.arch, seed=a.seed, autosave_seconds=0, sample_seconds=1e9, **constant_mode_seeking(a.mode_seeking))
    trainer = Trainer(model_preset(a.arch), cfg, data, device="cpu")
    evals_at = set(range(a.eval_every, a.steps + 1, a.eval_every))
    stops = sorted({s for s in frame_steps(a.steps, a.frames) if s > 0} | evals_at)
    grids = [(0, trainer.samples().images)]
    best, best_key, log = None, None, []
    t0 = time.perf_counter()
    for stop in stops:
        for event in trainer.run(Budget(steps=stop)):  # ends with the grid at `stop` (the averaged G)
            if isinstance(event, Finished) and event.reason == "diverged":
                raise SystemExit(event.message)
            if isinstance(event, Samples) and event.step == stop:
                grids.append((event.step, event.images))
        if stop not in evals_at:
            continue
        over_time = bool(a.max_minutes) and time.perf_counter() - t0 > 60 * a.max_minutes
        figures = {"step": trainer.step_count, "images_seen": trainer.images_seen,
                   "train_seconds": round(trainer.train_seconds, 1), **evaluate(trainer.model, data, judge)}
        log.append(figures)
        print(figures, flush=True)
        key = rank(figures)
        if best_key is None or key > best_key:
            best_key, best = key, (copy.deepcopy(trainer.model.state_dict()), trainer.meta(), figures)
        if over_time:
            print(f"stopping at step {trainer.step_count}: --max-minutes {a.max_minutes:g} reached", flush=True)
            break
    state, meta, figures = best
    kept = figures["step"]
    trainer.model.load_state_dict(state)
    how = (f"python -m scripts.train_pretrained --data-dir {a.data_dir} --arch {a.arch} --steps {a.steps} "
           f"--eval-every {a.eval_every} --frames {a.frames} --seed {a.seed} --threads {a.threads}"
           + (f" --max-minutes {a.max_minutes:g}" if a.max_minutes else "")
           + (f" --mode-seeking {a.mode_seeking:g}" if a.mode_seeking is not None else "")
           + f"; trained {trainer.step_count} steps, kept step {kept}")
    meta.update(history=[], how_trained=how, eval=figures, eval_log=log,
                eval_protocol="gancls.report.evaluate_model(per_label=100, eval_digits=2000, seed=123)")
    path = save_checkpoint(a.out, trainer.model, meta)  # weights only: no optimiser state to ship
    metrics = [m for m in trainer.history if m["step"] <= kept]
    frames = [(s, g) for s, g in grids if s <= kept]
    replay_meta = {"how_trained": how, "train_config": cfg.to_dict(), "kept_step": kept, "targets": TARGETS}
    cap = min(len(metrics), 2000)
    while True:  # within the size budget: thin the metrics, then the frames (spacing stays about geometric)
        replay = save_replay(a.out, grids=frames, cols=cfg.sample_cols, metrics=thin_metrics(metrics, cap),
                             evals=[e for e in log if e["step"] <= kept], meta=replay_meta)
        if replay.stat().st_size <= MAX_REPLAY_MB * 2**20 or len(frames) <= 2:
            break
        if cap > 500:
            cap = 500
        else:
            frames = thin_frames(frames)
    print(f"saved {path} ({path.stat().st_size / 2**20:.1f} MB) from step {kept}: {figures} "
          f"in {time.perf_counter() - t0:.0f} s; replay {replay} ({replay.stat().st_size / 2**20:.2f} MB, "
          f"{len(frames)} grids, {min(len(metrics), cap)} metric entries)")
    if replay.stat().st_size > MAX_REPLAY_MB * 2**20:
        raise SystemExit(f"the replay is larger than {MAX_REPLAY_MB} MB even with the metrics thinned")


if __name__ == "__main__":
    main()
