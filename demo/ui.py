"""What every tab shares: queue settings, curve names and colours, the error wrapper, and the small
pieces of HTML and plot tables the tabs show. Defined once here; tabs import them."""

from __future__ import annotations

import contextlib
import functools
import html
import inspect
import logging
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator

import gradio as gr
import pandas as pd
from gradio_client.exceptions import AppError

from gancls.draw import save_png_fast
from gancls.errors import INTERNAL_ERROR, UserError, log_internal

from .curves import LiveCurves
from .session import Session

PRIVATE = {"api_visibility": "private"}  # wiring the page needs but the public API does not
INFER = {"concurrency_id": "infer", "concurrency_limit": 4}  # Generate, Probe and friends share 4 workers
# Seconds between live updates of a streaming view: a little more than one a second, so the curves look
# live, and no more: each update costs the browser a pass over the page, and on a laptop that also
# trains, the page's CPU is training's (bench/ui_browser.py).
UPDATE_EVERY = 0.9
# Points per curve a plot is sent: enough for a smooth curve at any plot width, and a bounded message
# however long the run.
PLOT_POINTS = 100

LOSS_CURVES = {"loss_d": "D loss", "loss_g": "G loss"}
D_CURVES = {"d_real": "D(real, right label)", "d_fake": "D(fake, right label)", "d_wrong": "D(real, wrong label)"}
# Okabe-Ito colours: told apart by colour-blind viewers too.
LOSS_COLOURS = {"D loss": "#0072B2", "G loss": "#E69F00"}
D_COLOURS = {"D(real, right label)": "#009E73", "D(fake, right label)": "#E69F00", "D(real, wrong label)": "#D55E00"}
# Line styles as well, so overlapping curves stay apart without colour: the fake side (G loss, D on fakes)
# dashed, D(real, wrong label) dotted.
DASHES = {"#E69F00": "7 4", "#D55E00": "2 3"}
NOTHING_TRAINING = "Nothing is training in this session."

log = logging.getLogger(__name__)


def shown_error(err: Exception, where: str) -> gr.Error:
    """The toast a person sees for `err`, which escaped the handler `where`.

    A UserError's message as it is; anything else is a bug (or the server's disk), so it is logged with its
    traceback and the person is told so, with a reference to the log record, never the exception's text.
    """
    if isinstance(err, UserError):
        text = str(err)
    else:
        ref = log_internal(log, where, err)
        text = (f"could not read or write a file on the server (ref {ref})" if isinstance(err, OSError)
                else INTERNAL_ERROR.format(ref=ref))
    return gr.Error(html.escape(text[:1].upper() + text[1:]), print_exception=False)


@contextlib.contextmanager
def _contract(where: str) -> Iterator[None]:
    """Inside: a gr.Error passes as it is; any other exception becomes shown_error's toast."""
    try:
        yield
    except AppError:
        raise
    except Exception as e:
        raise shown_error(e, where) from None


def user_errors(fn: Callable) -> Callable:
    """Apply the error contract to a handler (plain, generator, async or async generator).

    A UserError's message becomes a clean gr.Error; any other exception is logged with its traceback and
    shown as an internal error (shown_error). A gr.Error the handler raises itself passes unchanged.
    """
    if getattr(fn, "follows_error_contract", False):
        return fn
    where = f"{getattr(fn, '__module__', None)}.{getattr(fn, '__qualname__', repr(fn))}"

    if inspect.isasyncgenfunction(fn):
        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            inner = fn(*args, **kwargs)
            try:
                with _contract(where):
                    async for item in inner:
                        yield item
            finally:
                await inner.aclose()  # a cancelled stream closes the handler's own generator now
    elif inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            with _contract(where):
                return await fn(*args, **kwargs)
    elif inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
            with _contract(where):
                yield from fn(*args, **kwargs)
    else:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with _contract(where):
                return fn(*args, **kwargs)
    wrapper.follows_error_contract = True  # type: ignore[attr-defined]
    return wrapper


def apply_error_contract(blocks: gr.Blocks) -> int:
    """Wrap every Python handler of `blocks` in user_errors (those a tab wrapped already stay as they are).

    So the contract holds for each event of the page, whichever tab wired it; returns how many were wrapped
    here. Call it once the page is built: Gradio has read each handler's kind (generator or not) by then,
    and the wrapper keeps it.
    """
    wrapped = 0
    for block_fn in blocks.fns.values():
        if block_fn.fn is not None and not getattr(block_fn.fn, "follows_error_contract", False):
            block_fn.fn = user_errors(block_fn.fn)
            wrapped += 1
    return wrapped


def session_hash(request: gr.Request | None) -> str | None:
    """The Gradio session a request comes from (None for a raw call without one)."""
    return getattr(request, "session_hash", None)


def png(session: Session, image: Any, name: str) -> str:
    """Write a uint8 [H, W] image into the session's folder; returns the path Gradio serves."""
    session.run_dir.mkdir(parents=True, exist_ok=True)
    return save_png_fast(image, session.run_dir / name)


# ------------------------------------------------------------------- plots
def thin(history: list[dict[str, float]], max_points: int) -> list[dict[str, float]]:
    """At most `max_points` evenly spaced entries of a metric history, always keeping the last."""
    if len(history) <= max_points:
        return history
    stride = -(-len(history) // max_points)  # ceil division
    return history[::stride] + ([history[-1]] if (len(history) - 1) % stride else [])


def curves(history: list[dict[str, float]], names: dict[str, str], max_points: int = PLOT_POINTS) -> pd.DataFrame:
    """Long-format table (step, value, curve) for a LiveCurves plot (loss_plot, d_plot)."""
    points = thin(history, max_points)
    # Explicit dtypes, so an empty table has the same column types as a full one.
    return pd.DataFrame({
        "step": pd.Series([int(h["step"]) for h in points for _ in names], dtype="int64"),
        "value": pd.Series([float(h[key]) for h in points for key in names], dtype="float64"),
        "curve": pd.Series([name for _ in points for name in names.values()], dtype="object"),
    })


def start_curves(history: list[dict[str, float]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The plots before any run: the pretrained model's curves, else one point per curve."""
    if not all(k in h for h in history[:1] for k in ("step", *LOSS_CURVES, *D_CURVES)):
        history = []
    history = history or [dict(step=0, loss_d=0.0, loss_g=0.0, d_real=0.5, d_fake=0.5, d_wrong=0.5)]
    return curves(history, LOSS_CURVES), curves(history, D_CURVES)


def loss_plot(value: Any, title: str = "Losses", **kwargs: Any) -> LiveCurves:
    """A plot of D's and G's losses (the Train, Class and replay views draw the same one)."""
    return LiveCurves(value, title=title, y_title="loss (batch sum)", colours=LOSS_COLOURS, dashes=DASHES, **kwargs)


def d_plot(value: Any, title: str = "Discriminator outputs", **kwargs: Any) -> LiveCurves:
    """A plot of D's three mean outputs (the Train, Ablation, Class and replay views draw the same one)."""
    return LiveCurves(value, title=title, y_title="mean D score", colours=D_COLOURS, dashes=DASHES, y_lim=(0, 1),
                      **kwargs)


# ------------------------------------------------------------------ status
def status_html(*, state: str, message: str, progress: float | None = None,
                stats: dict[str, Any] | None = None) -> str:
    """A status box: a progress bar, key figures and one line of explanation."""
    bar = "" if progress is None else (
        f'<div class="gc-bar"><div style="width:{100 * min(max(progress, 0.0), 1.0):.1f}%"></div></div>')
    figures = "".join(f"<span>{html.escape(k)} <b>{html.escape(str(v))}</b></span>" for k, v in (stats or {}).items())
    return (f'<div class="gc-status gc-{state}">{bar}<div class="gc-stats">{figures}</div>'
            f'<div class="gc-msg">{html.escape(message)}</div></div>')


def using_text(steps: int | None, pretrained_note: str, training: bool = False, fine_tuned: bool = False) -> str:
    """The 'Using: …' line that says which model Generate and Probe use."""
    if steps is None:
        text = f"**Using:** {pretrained_note}"
    elif fine_tuned:
        text = f"**Using:** the pretrained model fine-tuned by your run for {steps:,} more steps"
    else:
        text = f"**Using:** your model trained for {steps:,} steps"
    return text + (" · a new run is training; it takes over when it stops" if training else "")


def kept_file(path: Path | None) -> str | None:
    """A path Gradio may serve, or None."""
    return str(path) if path is not None and Path(path).is_file() else None
