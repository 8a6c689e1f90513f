"""Many users at once: 20 sessions generate and probe for 30 s while two sessions train (bench/soak.py, short)."""

from __future__ import annotations

from pathlib import Path

from bench.soak import launch, soak
from conftest import SHARED_DATA
from gancls.checkpoint import load_checkpoint


def test_twenty_users_and_two_trainers(tiny_checkpoint: Path, tmp_path: Path) -> None:
    app = launch(tiny_checkpoint, tmp_path, "--train-concurrency", "1",
                 data_dir=SHARED_DATA if SHARED_DATA.is_dir() else None)
    try:
        f = soak(app, users=20, trainers=2, seconds=30, train_steps=100,
                 pretrained=load_checkpoint(tiny_checkpoint).model)
        assert app.proc.poll() is None
    finally:
        app.stop()
    print("\nsoak:", {k: v for k, v in f.items() if k not in ("failures", "wrong")})
    assert f["reference_is_pretrained"]  # what users are checked against is the shared model's own output
    assert f["served"] > 100 and not f["failures"], f["failures"][:5]
    assert not f["wrong"], f["wrong"][:5]  # users who never trained always got the pretrained model
    assert f["trainers_own_model"] == [True, True]  # each trainer's Generate is its own checkpoint's
    assert f["trainers_distinct"]  # ... and differs from the other trainer's and the pretrained one
    assert len(f["train_spans_s"]) == 2 and f["training_overlap_s"] <= 0  # limit 1: one after the other
    assert f["sessions_unloaded"] and f["kept_runs"] == 3  # warm-up + 2 trainers, kept after they left
    # Memory: per-session models are freed when sessions end (allocator pools may keep a little).
    assert f["rss_after_mb"] - f["rss_before_mb"] < 150, f
    assert f["rss_peak_mb"] - f["rss_before_mb"] < 600, f

