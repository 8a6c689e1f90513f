"""Train the model that ships in checkpoints/pretrained and record how, with its judge figures.

    python scripts/train_pretrained.py --data-dir ../shared/data --steps 6000 --out checkpoints/pretrained

Trains the default preset on full MNIST, evaluates with the judge every --eval-every steps (1,000
samples, 2,000 test digits for D's figures: gancls.report.evaluate_model), and keeps the evaluated state with the best
label accuracy among those with diversity >= 0.9 (else the most diverse). Saves weights only.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gancls.checkpoint import save_checkpoint  # noqa: E402
from gancls.config import Budget, model_preset, train_preset  # noqa: E402
from gancls.data import load_mnist  # noqa: E402
from gancls.judge import load_judge  # noqa: E402
from gancls.report import evaluate_model  # noqa: E402
from gancls.train import Finished, Trainer  # noqa: E402


def evaluate(model, data, judge) -> dict:
    """The headline figures of the one evaluation protocol (gancls.report.evaluate_model)."""
    r = evaluate_model(model, data, judge, per_label=100, eval_digits=2000, seed=123)
    keep = ("label_accuracy", "diversity", "nn_diversity", "frechet_distance", "judge_confidence", "mismatch_auc")
    return {k: None if r[k] is None else round(float(r[k]), 4) for k in keep}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="../shared/data", help="full MNIST in torchvision's layout")
    p.add_argument("--arch", default="fast", help="model preset")
    p.add_argument("--steps", type=int, default=6000, help="training iterations")
    p.add_argument("--eval-every", type=int, default=500, help="iterations between evaluations")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--out", default="checkpoints/pretrained", help="output directory")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)

    data = load_mnist(a.data_dir, allow_download=False)
    judge = load_judge()
    cfg = train_preset(a.arch, seed=a.seed, autosave_seconds=0, sample_seconds=1e9)
    trainer = Trainer(model_preset(a.arch), cfg, data, device="cpu")
    best, best_key, log = None, None, []
    t0 = time.perf_counter()
    while trainer.step_count < a.steps:
        target = min(a.steps, trainer.step_count + a.eval_every)
        for event in trainer.run(Budget(steps=target)):
            if isinstance(event, Finished) and event.reason == "diverged":
                raise SystemExit(event.message)
        figures = {"step": trainer.step_count, "train_seconds": round(trainer.train_seconds, 1), **evaluate(trainer.model, data, judge)}
        log.append(figures)
        print(figures, flush=True)
        key = (figures["diversity"] >= 0.9, figures["label_accuracy"] if figures["diversity"] >= 0.9 else figures["diversity"])
        if best_key is None or key > best_key:
            best_key, best = key, (copy.deepcopy(trainer.model.state_dict()), trainer.meta(), figures)
    state, meta, figures = best
    trainer.model.load_state_dict(state)
    meta.update(history=[], how_trained=(f"python scripts/train_pretrained.py --data-dir {a.data_dir} --arch {a.arch} "
                                         f"--steps {a.steps} --eval-every {a.eval_every} --seed {a.seed}; kept step {figures['step']}"),
                eval=figures, eval_log=log, eval_protocol="gancls.report.evaluate_model(per_label=100, eval_digits=2000, seed=123)")
    path = save_checkpoint(a.out, trainer.model, meta)  # weights only: no optimiser state to ship
    print(f"saved {path} ({path.stat().st_size / 2**20:.1f} MB) from step {figures['step']}: {figures} "
          f"in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
