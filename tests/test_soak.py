"""Many users at once: 20 sessions generate and probe for 15 s while two sessions train (bench/soak.py, short)."""

from __future__ import annotations

from pathlib import Path

import pytest

from demo.harness.launch import launch
from demo.harness.soak import soak
from gancls.checkpoint import load_checkpoint

# Memory bounds, in MB. The first round's growth is what pools and arenas keep once (61 MB seen, Xeon
# with AVX-512/AMX, 2 shared cores); a second round under the same load must reuse that memory, so its
# growth over the first round's end is the leak signal. A leak of 200 MB or more fails either bound.
FIRST_ROUND_GROWTH_MB = 200
SECOND_ROUND_GROWTH_MB = 100
PEAK_GROWTH_MB = 600


@pytest.mark.slow
def test_twenty_users_and_two_trainers(tiny_checkpoint: Path, data_dir: Path | None, tmp_path: Path) -> None:
    app = launch(tiny_checkpoint, tmp_path, "--train-concurrency", "1", data_dir=data_dir)
    pretrained = load_checkpoint(tiny_checkpoint).model
    try:
        f = soak(app, users=20, trainers=2, seconds=15, train_steps=40, pretrained=pretrained)
        assert app.proc.poll() is None
        kept_after_first = len(app.kept_runs())
        # The same load again, shorter: per-session memory that is never freed grows again here.
        again = soak(app, users=20, trainers=2, seconds=10, train_steps=20, warmup_steps=0, pretrained=pretrained)
        assert app.proc.poll() is None
    finally:
        app.stop()
    print("\nsoak:", {k: v for k, v in f.items() if k not in ("failures", "wrong")})
    print("again:", {k: v for k, v in again.items() if k not in ("failures", "wrong")})
    assert f["reference_is_pretrained"]  # what users are checked against is the shared model's own output
    # A count, not a throughput: every user was answered on average (how many depends on the machine's load).
    assert f["served"] > f["users"] + 2 * f["trainers"] and not f["failures"], f["failures"][:5]
    assert not f["wrong"], f["wrong"][:5]  # users who never trained always got the pretrained model
    assert f["trainers_own_model"] == [True, True]  # each trainer's Generate is its own checkpoint's
    assert f["trainers_distinct"]  # ... and differs from the other trainer's and the pretrained one
    assert len(f["train_spans_s"]) == 2 and f["training_overlap_s"] <= 0  # limit 1: one after the other
    assert f["sessions_unloaded"] and kept_after_first == 3  # warm-up + 2 trainers, kept after they left
    assert not again["failures"] and not again["wrong"] and again["sessions_unloaded"], again
    # Memory: per-session models are freed when sessions end; the second round measures against the first.
    assert f["rss_after_mb"] - f["rss_before_mb"] < FIRST_ROUND_GROWTH_MB, f
    assert f["rss_peak_mb"] - f["rss_before_mb"] < PEAK_GROWTH_MB, f
    assert again["rss_after_mb"] - f["rss_after_mb"] < SECOND_ROUND_GROWTH_MB, (f, again)
