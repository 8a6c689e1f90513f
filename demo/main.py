"""`python app.py`: parse the flags, load the shared model and data, build the page, serve it."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from .session import SessionStore

CSS_PATH = Path(__file__).with_name("style.css")


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def default_runs_dir() -> str | None:
    """$GANCLS_APP_RUNS; else on a Space /data/gancls-runs (its persistent storage) when writable, else the temp dir.

    None elsewhere (runs/app beside the code): a Space's source folder is not the place to write.
    """
    if os.environ.get("GANCLS_APP_RUNS"):
        return os.environ["GANCLS_APP_RUNS"]
    if os.environ.get("SYSTEM") != "spaces" and not os.environ.get("SPACE_ID"):
        return None
    data = Path("/data")
    if data.is_dir() and os.access(data, os.W_OK | os.X_OK):
        return str(data / "gancls-runs")
    return str(Path(tempfile.gettempdir()) / "gancls-runs")


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags (fast: imports nothing heavy)."""
    p = argparse.ArgumentParser(prog="python app.py", description="The GAN-CLS digits app (Gradio).")
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                   help="address to bind (default 127.0.0.1, this machine only; 0.0.0.0 = every interface)")
    p.add_argument("--port", type=int, default=_env_int("GRADIO_SERVER_PORT", 7860),
                   help="port to listen on (default 7860)")
    p.add_argument("--share", action="store_true", help="also open a temporary public gradio.live link")
    p.add_argument("--data-dir", default=None,
                   help="MNIST in torchvision's layout (else $GANCLS_DATA, a cached download, or the embedded subset)")
    p.add_argument("--checkpoint", default=os.environ.get("GANCLS_CHECKPOINT"),
                   help="the shared pretrained model: run dir or .safetensors (default: checkpoints/pretrained)")
    p.add_argument("--runs-dir", default=default_runs_dir(),
                   help="where runs of visitors who left are kept for 24 h, to restore (default runs/app; on a Space "
                        "/data/gancls-runs if /data is writable, else the temp dir; env GANCLS_APP_RUNS)")
    p.add_argument("--train-threads", type=int, default=_env_int("GANCLS_TRAIN_THREADS", 0),
                   help="torch CPU threads per training run (default 0: all cores, split between concurrent runs; "
                        "env GANCLS_TRAIN_THREADS); the rest of the app uses one")
    p.add_argument("--train-concurrency", type=int, default=_env_int("GANCLS_TRAIN_CONCURRENCY", 1),
                   help="training runs at the same time; others wait in a queue (default 1, env GANCLS_TRAIN_CONCURRENCY)")
    return p


def build_app(args: argparse.Namespace):
    """Load the shared state and build the Blocks (gradio and torch are imported here, not at import).

    Returns (Blocks, AppContext).
    """
    from .context import load_context
    from .page import build_demo
    from .zerogpu import make_gpu_chunk, zero_gpu_available

    gpu_chunk = make_gpu_chunk() if zero_gpu_available() else None
    ctx = load_context(checkpoint=args.checkpoint, data_dir=args.data_dir,
                       train_concurrency=args.train_concurrency, gpu_chunk=gpu_chunk, runs_dir=args.runs_dir,
                       train_threads=args.train_threads or None)
    return build_demo(ctx), ctx


def theme():
    """A soft theme with system fonts (no web-font downloads)."""
    import gradio as gr

    fonts = ["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "sans-serif"]
    return gr.themes.Soft(primary_hue="indigo", secondary_hue="slate", font=fonts,
                          font_mono=["ui-monospace", "Consolas", "monospace"])


def stop_sessions_on_exit(store: SessionStore, wait: float = 10.0) -> None:
    """On SIGTERM or Ctrl-C: stop every session's training, let it save, keep the checkpoints, then exit."""
    stopping = threading.Event()

    def handler(signum: int, frame: object) -> None:
        if stopping.is_set():  # a second Ctrl-C while waiting: leave now
            raise KeyboardInterrupt
        stopping.set()
        # The server keeps serving meanwhile, so each training loop sees its stop switch and saves.
        kept = store.shutdown(wait)
        print(f"{signal.Signals(signum).name}: stopped training, kept {kept} session run(s) in {store.keep_root}",
              file=sys.stderr, flush=True)
        raise KeyboardInterrupt  # Gradio closes the server on it (as on Ctrl-C); atexit removes the temp files

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse flags and serve the app; a bad flag, data dir or checkpoint exits with one line."""
    args = build_parser().parse_args(argv)
    try:
        demo, ctx = build_app(args)
    except ValueError as e:  # DataError, CheckpointError, ConfigError: the user's input, not a bug
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    stop_sessions_on_exit(ctx.store)
    demo.queue(max_size=64)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, theme=theme(),
                css=CSS_PATH.read_text(), footer_links=["api", "gradio"])
