"""Many-users soak of the app: concurrent gradio_client sessions generate and probe while some sessions train.

    python -m bench.soak --users 20 --trainers 2 --seconds 120 --data-dir ../shared/data

Starts `python app.py` (its own runs folder and temp dir, one torch thread), then runs
demo.harness.soak's soak (the machinery, shared with tests/test_soak.py) `--rounds` times:
  * a reference session records the pretrained model's answers to a few fixed requests;
  * `--trainers` sessions each train a small model (different seeds) for `--train-steps` steps,
    at most `--train-concurrency` at a time (the app's queue), then generate and download;
  * `--users` sessions loop over Generate and label scores until `--seconds` have passed, and every
    answer must equal the pretrained model's (a session that did not train must never see
    another session's model);
  * the server's RSS (psutil) is sampled before, during and after, the last after every client
    has closed and the server has unloaded its sessions.
Pass: no failed request, no wrong answer, never more trainings at once than the limit, each
trainer's Generate equals its own downloaded checkpoint's output, and RSS back near the baseline.
Run from the repository root. tests/test_soak.py runs a short version.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from demo.harness.launch import launch
from demo.harness.soak import soak

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"


def pretrained_for_bench(work: Path, seconds: float) -> Path:
    """A small model trained for `seconds` on the embedded subset, as the app's shared model."""
    import torch

    from gancls.config import Budget, model_preset, train_preset
    from gancls.data import load_embedded
    from gancls.train import Trainer

    torch.set_num_threads(1)
    out = work / "pretrained"
    trainer = Trainer(model_preset("small"), train_preset("small"), load_embedded(),
                      device="cpu", run_dir=out)
    for _ in trainer.run(Budget(seconds=seconds)):
        pass
    return out


def main(argv: list[str] | None = None) -> int:
    """Parse flags, start the app, soak it, print and save the figures; exit 1 if the soak failed."""
    import tempfile

    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=20, help="sessions that generate and probe (default 20)")
    p.add_argument("--trainers", type=int, default=2, help="sessions that train meanwhile (default 2)")
    p.add_argument("--seconds", type=float, default=120, help="how long the users keep asking (default 120)")
    p.add_argument("--train-steps", type=int, default=60, help="steps each trainer trains (default 60)")
    p.add_argument("--rounds", type=int, default=2,
                   help="soaks one after another on the same server: memory must not grow round after round (default 2)")
    p.add_argument("--train-concurrency", type=int, default=1, help="the app's training limit (default 1)")
    p.add_argument("--checkpoint", default=None, help="the app's shared model (default: train a small one for 10 s)")
    p.add_argument("--data-dir", default=str(DEFAULT_DATA) if DEFAULT_DATA.is_dir() else None,
                   help="MNIST for the server (default ../shared/data if present, else the embedded subset)")
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "soak.json"), help="where to write the figures")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gancls-soak-") as tmp:
        work = Path(tmp)
        ckpt = Path(args.checkpoint) if args.checkpoint else pretrained_for_bench(work, 10)
        app = launch(ckpt, work, "--train-concurrency", str(args.train_concurrency),
                     data_dir=Path(args.data_dir) if args.data_dir else None)
        try:
            from gancls.checkpoint import load_checkpoint

            model = load_checkpoint(ckpt).model
            rounds = [soak(app, users=args.users, trainers=args.trainers, seconds=args.seconds,
                           train_steps=args.train_steps, warmup_steps=20 if k == 0 else 0, pretrained=model)
                      for k in range(args.rounds)]
        finally:
            app.stop()
    from bench.common import machine_info

    report = {"machine": machine_info(argv), "train_concurrency": args.train_concurrency, "rounds": rounds}
    print(json.dumps(rounds, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    ok = all(f["reference_is_pretrained"] and not f["failures"] and not f["wrong"] and all(f["trainers_own_model"]) and f["trainers_distinct"]
             and f["training_overlap_s"] <= 0 and f["sessions_unloaded"] for f in rounds)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
