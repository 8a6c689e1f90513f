"""`python app.py`: parse the flags, load the shared model and data, build the page, serve it."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from .frame_guard import frame_guard_middleware
from .limits import MAX_UPLOAD_MB

if TYPE_CHECKING:
    from .store import SessionStore

CSS_PATH = Path(__file__).with_name("style.css")
QUEUE_SIZE = 256  # short requests waiting for a worker, over all visitors

log = logging.getLogger(__name__)


def _env_number(name: str, default: float, kind: type) -> Any:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        return kind(text)
    except ValueError:  # int()/float() of the text: a typo in the environment, told and not fatal
        log.warning("%s=%r is not a %s; using %s", name, text, "whole number" if kind is int else "number", default)
        return default


def _env_int(name: str, default: int) -> int:
    return _env_number(name, default, int)


def _env_float(name: str, default: float) -> float:
    return _env_number(name, default, float)


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
                   help="torch CPU threads per training run (default 0: the cores other processes leave free, split "
                        "between concurrent runs; env GANCLS_TRAIN_THREADS); the rest of the app uses one")
    p.add_argument("--no-pin-cores", dest="pin_cores", action="store_false",
                   default=os.environ.get("GANCLS_PIN_CORES", "1").strip().lower() not in ("0", "false", "no", "off"),
                   help="let the kernel move training threads between cores (default: each training thread keeps a "
                        "core of its own where there are enough; env GANCLS_PIN_CORES=0)")
    p.add_argument("--train-concurrency", type=int, default=_env_int("GANCLS_TRAIN_CONCURRENCY", 1),
                   help="training runs at the same time; others wait in a queue (default 1, env GANCLS_TRAIN_CONCURRENCY)")
    limits = p.add_argument_group("limits per visitor (for public servers; see demo/limits.py)")
    limits.add_argument("--max-run-seconds", type=float, default=_env_float("GANCLS_MAX_RUN_SECONDS", 3600),
                        help="the longest one Train/Resume click may train, whatever its budget asks "
                             "(default 3600; env GANCLS_MAX_RUN_SECONDS)")
    limits.add_argument("--max-batch", type=int, default=_env_int("GANCLS_MAX_BATCH", 1024),
                        help="the largest batch size a run may ask for (default 1024; env GANCLS_MAX_BATCH)")
    limits.add_argument("--idle-minutes", type=float, default=_env_float("GANCLS_IDLE_MINUTES", 15),
                        help="an idle visitor's run is saved to the runs folder and freed after this (default 15; "
                             "the visitor can restore it)")
    limits.add_argument("--runs-quota-mb", type=float, default=_env_float("GANCLS_RUNS_QUOTA_MB", 2048),
                        help="the runs folder's size limit; the oldest runs go first (default 2048)")
    limits.add_argument("--temp-quota-mb", type=float, default=_env_float("GANCLS_TEMP_QUOTA_MB", 1024),
                        help="the app's temp folder's size limit; the oldest pictures go first (default 1024)")
    limits.add_argument("--autosave-seconds", type=float, default=_env_float("GANCLS_AUTOSAVE_SECONDS", 30),
                        help="how often a run saves into the runs folder, so a crash loses at most this (default 30)")
    return p


def read_limits(args: argparse.Namespace):
    """The Limits the flags ask for (a UserError names a bad one)."""
    from .limits import Limits

    return Limits(max_run_seconds=args.max_run_seconds, max_batch=args.max_batch, idle_seconds=args.idle_minutes * 60,
                  runs_quota_mb=args.runs_quota_mb, temp_quota_mb=args.temp_quota_mb,
                  autosave_seconds=args.autosave_seconds)


def sweep_idle_sessions(store: SessionStore, every: float = 30.0) -> threading.Thread:
    """Free idle sessions and keep the folders within their quotas, every `every` s, on a daemon thread."""
    def loop() -> None:
        while True:
            time.sleep(every)
            try:
                store.sweep()
            except OSError as e:  # a full or vanished disk must not end the sweeping
                print(f"session sweep: {e.strerror or e}", file=sys.stderr, flush=True)

    thread = threading.Thread(target=loop, name="gancls-sweep", daemon=True)
    thread.start()
    return thread


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
                       train_threads=args.train_threads or None, pin_cores=args.pin_cores, limits=read_limits(args))
    return build_demo(ctx), ctx


def theme():
    """A soft theme with system fonts (no web-font downloads)."""
    import gradio as gr

    fonts = ["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "sans-serif"]
    return gr.themes.Soft(primary_hue="indigo", secondary_hue="slate", font=fonts,
                          font_mono=["ui-monospace", "Consolas", "monospace"])


def atomic_image_cache() -> None:
    """Make Gradio write the pictures it caches atomically (gradio 6.31's save_pil_to_cache truncates in place).

    Gradio names a cached picture by its content's hash, so visitors shown the same picture share one
    file, and it rewrites that file on every request: a second visitor's request truncated it while the
    first one's download was being served ("Too little data for declared Content-Length"; 4 of 36
    Probe answers failed in bench/hostile_soak.py with ten visitors probing one digit). Same name means
    same bytes, so a file already there is reused; a new one is written aside and renamed into place.
    """
    import uuid

    from gradio import processing_utils as pu

    def save_pil_to_cache(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:
        data = pu.encode_pil_to_bytes(img, format)
        folder = Path(cache_dir) / pu.hash_bytes(data)
        folder.mkdir(exist_ok=True, parents=True)
        path = (folder / f"{name}.{format}").resolve()
        try:
            if path.stat().st_size == len(data):
                os.utime(path)  # delete_cache ages files by time: one handed out again is kept
                return str(path)
        except OSError:
            pass
        tmp = path.with_name(f".{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return str(path)

    pu.save_pil_to_cache = save_pil_to_cache  # save_img_array_to_cache and image_utils look it up here


def calm_queue(queue: Any, poll: float = 0.02, progress: float = 0.1) -> None:
    """Let Gradio's queue look for new requests every `poll` s and for progress to send every `progress` s.

    Its defaults on Linux are 1 ms and 10 ms: over a thousand wake-ups a second of the server's event loop,
    training or idle, each taking the interpreter lock from the training thread. A new request now waits
    at most `poll` s longer to start.
    """
    queue.sleep_when_free = max(queue.sleep_when_free, poll)
    queue.progress_update_sleep_when_free = max(queue.progress_update_sleep_when_free, progress)


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
    # Where handlers' internal errors go, with their tracebacks (demo/ui.py), unless the host set logging up.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    from gancls.device import share_malloc_arenas
    from gancls.errors import UserError

    share_malloc_arenas()  # before the server starts its threads
    try:
        demo, ctx = build_app(args)
    except UserError as e:  # DataError, CheckpointError, ConfigError: the user's input; anything else is a bug
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"training: {ctx.compute.threads} CPU thread(s) per run"
          + (", each on a core of its own" if ctx.compute.pinned else ""), file=sys.stderr, flush=True)
    stop_sessions_on_exit(ctx.store)
    sweep_idle_sessions(ctx.store)
    atomic_image_cache()
    # What is built by now (torch, Gradio, the app) lives as long as the process: hundreds of thousands of
    # objects that each full collection would walk while holding the interpreter lock, stalling training
    # for as long. Frozen, collections look only at newer objects.
    gc.freeze()
    # Training waits in its own line (TrainingGate), so this queue only holds short requests.
    demo.queue(max_size=QUEUE_SIZE)
    calm_queue(demo._queue)  # private: Gradio has no setting for it (tests/test_frame_guard.py checks the names)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, theme=theme(),
                css=CSS_PATH.read_text(), footer_links=["api", "gradio"], max_file_size=f"{MAX_UPLOAD_MB}mb",
                app_kwargs={"middleware": [frame_guard_middleware()]})
