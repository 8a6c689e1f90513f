"""Kill soak: SIGKILL `python -m gancls train` at random moments, resume, and check that nothing is lost.

    python -m bench.kill_soak --kills 200 --data-dir ../shared/data --out /tmp/soak

Each cycle starts `train` (with --resume once a checkpoint exists) and kills it with SIGKILL at a
random moment: during start-up, during training, or the instant a checkpoint's temp file appears
(mid-write). After every kill, `check_after_kill` looks at the run directory:
  * the checkpoint loads (`load_checkpoint`), from `gancls.safetensors` and nothing else;
  * its step never goes back, and is at least the last step the process reported saving;
  * little work is lost: every step the process printed more than `autosave + slack` seconds before
    the kill is in the checkpoint, and the checkpoint is at most that old (or younger than the
    process's training);
  * any leftover temp file is either a complete checkpoint or refused with a CheckpointError;
  * the next `train --resume` starts exactly at the checkpoint's step.
Run from the repository root. The cycles and checks live in demo.harness.kill_soak;
tests/test_crash_safety.py runs the same cycles, fewer of them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from demo.harness.kill_soak import Cycle, soak, summary

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    """Run the soak and print a JSON summary; exit 1 if any cycle found a problem."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=200, help="start-and-kill cycles")
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"), help="MNIST in torchvision's layout")
    ap.add_argument("--out", default="/tmp/gancls-kill-soak", help="run directory (reused: cycles resume)")
    ap.add_argument("--seed", type=int, default=0, help="seed for the kill moments")
    ap.add_argument("--autosave", type=float, default=0.5, help="--autosave-seconds for train")
    ap.add_argument("--slack", type=float, default=1.0, help="allowed loss beyond the autosave interval (s)")
    a = ap.parse_args()
    t0 = time.monotonic()

    def log(c: Cycle) -> None:
        print(f"[{time.monotonic() - t0:6.1f}s] kill {c.index + 1}/{a.kills} {c.mode:7s} step {c.step} "
              f"lost {c.lost_seconds if c.lost_seconds is None else round(c.lost_seconds, 2)} s "
              f"temps {c.temps}{'  PROBLEM: ' + '; '.join(c.problems) if c.problems else ''}", flush=True)

    cycles = soak(a.kills, Path(a.out), Path(a.data_dir), seed=a.seed, autosave=a.autosave, slack=a.slack, log=log)
    report = summary(cycles)
    report["seconds"] = round(time.monotonic() - t0, 1)
    print(json.dumps(report, indent=1))
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
