"""Crafted checkpoints against the safe loader: each must be refused or bounded, and memory must come back.

For each crafted file this loads it with `gancls.checkpoint.load_checkpoint` in this process and
reports the resident memory before, the peak while loading (sampled every 2 ms on a thread) and
after the refusal. Targets (issue 32): peak never more than 300 MB above before, after within
100 MB of before. A model that is accepted is then asked for what made the server die before the
cost bound: Generate 10 x 32 digits and D's scores for them.

    python -m bench.crafted_checkpoints            # writes bench/results/crafted_checkpoints.json
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import psutil

from bench.common import RESULTS_DIR, format_table, header_lines, machine_info, write_json
from demo.harness.forge import empty_tensors, join_checkpoint, oversized_header, split_checkpoint, with_meta

MB = 2**20


def crafted(good: Path) -> list[tuple[str, Callable[[Path], None]]]:
    """(case, write the file) for the issue's crafted checkpoints."""
    header, body = split_checkpoint(good)

    def meta(**changes: object) -> Callable[[Path], None]:
        return lambda p: p.write_bytes(with_meta(good, **changes))

    def padded(n: int) -> Callable[[Path], None]:
        return lambda p: p.write_bytes(join_checkpoint({**header, **empty_tensors(n)}, body))

    return [
        ("G with 65,536 deconv channels", meta(**{"model_config.g_deconv": 65536, "model_config.g_ch": 1})),
        ("D with 65,536 conv channels", meta(**{"model_config.d_conv1": 65536, "model_config.d_conv2": 1})),
        ("fc layers 65,536 wide", meta(**{"model_config.g_fc": 65536, "model_config.d_fc": 65536})),
        ("190 MB JSON header", lambda p: oversized_header(p, 190 * MB)),
        ("20 MB metadata string", meta(note="x" * (20 * MB))),
        ("300,000 empty tensors", padded(300_000)),
        # under the header cap, so the later caps are what refuse them
        ("5 MB metadata string", meta(note="x" * (5 * MB))),
        ("2,000 empty tensors", padded(2000)),
    ]


class PeakRss:
    """Resident memory of this process, sampled on a thread while the block runs."""

    def __init__(self, every: float = 0.002):
        self.proc, self.every, self.peak = psutil.Process(), every, 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.every)

    def __enter__(self) -> PeakRss:
        self.peak = self.proc.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def measure(path: Path) -> dict:
    import torch

    from gancls.checkpoint import CheckpointError, load_checkpoint
    from gancls.memory import release_memory

    release_memory()
    proc = psutil.Process()
    before = proc.memory_info().rss
    t0 = time.perf_counter()
    with PeakRss() as peak:
        try:
            ckpt = load_checkpoint(path)
            outcome = "accepted"
            labels = torch.arange(10).repeat_interleave(32)
            images = ckpt.model.sample(labels, torch.Generator().manual_seed(0))  # Generate 10 x 32
            ckpt.model.match_scores(images, labels)  # and D's view of them
            del ckpt, images
        except CheckpointError as e:
            outcome = f"refused: {str(e).split(': ', 1)[1][:90]}"
    seconds = time.perf_counter() - t0
    release_memory()
    after = proc.memory_info().rss
    return {"outcome": outcome, "seconds": round(seconds, 3), "rss_before_mb": round(before / MB, 1),
            "peak_above_mb": round((peak.peak - before) / MB, 1), "after_above_mb": round((after - before) / MB, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "crafted_checkpoints.json")
    a = parser.parse_args()
    import torch

    from gancls.checkpoint import save_checkpoint
    from gancls.config import model_preset
    from gancls.models import GANCLS

    info = machine_info()
    print("\n".join(header_lines(info)))
    rows, results = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        torch.manual_seed(0)
        good = save_checkpoint(folder / "good", GANCLS(model_preset("small")), {"step": 1})
        for case, write in crafted(good):
            path = folder / "crafted.safetensors"
            write(path)
            r = {"case": case, "file_mb": round(path.stat().st_size / MB, 1), **measure(path)}
            r["ok"] = r["peak_above_mb"] <= 300 and r["after_above_mb"] <= 100
            results.append(r)
            rows.append([case, r["file_mb"], r["outcome"][:60], r["peak_above_mb"], r["after_above_mb"], r["seconds"],
                         "yes" if r["ok"] else "NO"])
            path.unlink()
    print(format_table(["case", "file MB", "outcome", "peak +MB", "after +MB", "s", "within targets"], rows))
    write_json(a.out, {"machine": info, "targets": {"peak_above_mb": 300, "after_above_mb": 100}, "results": results})
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
