"""The app's cost model: what one request may ask of the server, in one place.

A public server is called directly too, without the page's sliders, so every endpoint checks its
inputs against these numbers before doing the work, and refuses beyond them with a message that
names the limit. `Limits` holds the ones a deployment may change (flags in main.py); the rest are
fixed because the page's layout depends on them.
"""

from __future__ import annotations

from dataclasses import dataclass

from gancls.errors import UserError

# Generate: one row per label, so at most ten rows of 32 (the file name lists the labels).
GENERATE_MAX_LABELS = 10
GENERATE_MAX_PER_LABEL = 32

# Images sent to Probe and the drawing pad: checked from the file size and the image header,
# before anything is decoded. The pad's canvas is 280x280; 2048 px a side leaves room for a
# high-DPI screen and keeps one decoded drawing (RGBA) under 17 MB.
DRAWING_MAX_SIDE = 2048
DRAWING_MAX_BYTES = 4 * 2**20
DRAWING_MAX_LAYERS = 4
PROBE_MAX_PIXELS = 16_000_000  # uploads to Probe: a 16 MP photo is fine, a decompression bomb is not

# Uploads: Gradio refuses bigger files before they reach a handler (a `seed` run's own checkpoint,
# optimiser state included, is about 151 MB, so it must fit).
MAX_UPLOAD_MB = 200

# Training admission: runs waiting for a training slot, over all visitors.
TRAIN_MAX_WAITING = 8


@dataclass(frozen=True)
class Limits:
    """What one visitor may ask of the server; the defaults suit a small public server (2 CPU cores)."""

    max_run_seconds: float = 3600.0  # one Train/Resume click
    max_batch: int = 1024  # one training step's batch; 8192 took 23 s and 3.5 GB per step on 2 cores
    idle_seconds: float = 15 * 60  # an idle session's trainer is saved to the runs folder and freed
    anonymous_seconds: float = 60.0  # a raw API call without a session: its state lives this long
    runs_quota_mb: float = 2048.0  # the kept-runs folder in total, oldest runs out first
    temp_quota_mb: float = 1024.0  # the app's live temp folder in total, idle sessions' files out first
    autosave_seconds: float = 30.0  # app runs save this often (into the runs folder: survives a crash)

    def __post_init__(self) -> None:
        for name in ("max_run_seconds", "idle_seconds", "anonymous_seconds", "runs_quota_mb", "temp_quota_mb",
                     "autosave_seconds"):
            if not getattr(self, name) > 0:
                raise UserError(f"{name.replace('_', ' ')} must be positive (got {getattr(self, name)!r})")
        if not 2 <= self.max_batch <= 8192:
            raise UserError(f"max batch must be from 2 to 8,192 (got {self.max_batch!r})")

    def batch_refusal(self, batch_size: object) -> str | None:
        """Why a run with this batch may not train here (an uploaded or restored run keeps its own), or None."""
        if type(batch_size) is not int or batch_size > self.max_batch:
            return f"it trains with batch {batch_size!r}, above this server's limit of {self.max_batch:,} (--max-batch)"
        return None
