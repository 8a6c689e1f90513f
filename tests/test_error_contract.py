"""The error contract: only a UserError reaches a person as a message. Anything else (a ValueError from a
bug, a KeyError, torch's RuntimeError) is logged with its traceback and shown as an internal error, in the
app (plain and streaming endpoints, through gradio_client) and in the CLI; a real user error keeps its message."""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any, AsyncIterator, Iterator

import gradio as gr
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from demo.ui import user_errors
from gancls import cli
from gancls.errors import UserError

PLANTED = "planted: mat1 and mat2 shapes cannot be multiplied (3x4 and 5x6)"  # reads like torch's own
INTERNAL = re.compile(r"Internal error — this is a bug, not your input; the server log has the details "
                      r"\(ref ([0-9A-F]{6})\)")

# What the tiny app's endpoints call; a test replaces `step` to plant an error inside them.
work = SimpleNamespace(step=lambda n: n + 1)


@user_errors
def plain(n: float) -> float:
    return work.step(n)


@user_errors
def stream(n: float) -> Iterator[float]:
    yield n
    yield work.step(n)


@user_errors
async def astream(n: float) -> AsyncIterator[float]:
    yield n
    await asyncio.sleep(0)
    yield work.step(n)


@user_errors
def told(n: float) -> float:
    raise gr.Error("a message the handler chose")


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with gr.Blocks(analytics_enabled=False) as blocks:
        x, y = gr.Number(), gr.Number()
        for fn, name in ((plain, "plain"), (stream, "stream"), (astream, "astream"), (told, "told")):
            gr.Button(name).click(fn, x, y, api_name=name)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    blocks.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield Client(f"http://127.0.0.1:{port}/", verbose=False)
    finally:
        blocks.close()


def plant(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    def step(n: float) -> float:
        raise error
    monkeypatch.setattr(work, "step", step)


def logged_ref(caplog: pytest.LogCaptureFixture, shown: str) -> None:
    """The ref the person was shown names a log record holding the planted error's traceback."""
    ref = INTERNAL.search(shown)
    assert ref, f"not an internal-error message: {shown!r}"
    records = [r for r in caplog.records if r.name == "demo.ui" and ref.group(1) in r.getMessage()]
    assert len(records) == 1 and records[0].levelno == logging.ERROR and records[0].exc_info
    assert "Traceback" in caplog.text and "in step" in caplog.text and PLANTED in caplog.text


def call(client: Client, api: str, n: float = 1.0) -> list[Any]:
    """Every output of the endpoint (raises AppError with the shown message if it fails)."""
    job = client.submit(n, api_name=f"/{api}")
    result = job.result(timeout=60)
    return [*job.outputs()] if api in ("stream", "astream") else [result]


@pytest.mark.parametrize("api", ["plain", "stream", "astream"])
@pytest.mark.parametrize("error", [ValueError(PLANTED), RuntimeError(PLANTED), KeyError(PLANTED)],
                         ids=["ValueError", "RuntimeError", "KeyError"])
def test_a_bug_inside_an_endpoint_is_shown_as_an_internal_error_and_logged(
        client: Client, api: str, error: Exception, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    assert call(client, api)[-1] == 2.0  # the endpoint works until something inside it breaks
    plant(monkeypatch, error)
    with caplog.at_level(logging.ERROR, logger="demo.ui"), pytest.raises(AppError) as shown:
        call(client, api)
    assert "planted" not in str(shown.value) and "mat1" not in str(shown.value)  # not as if the input were wrong
    logged_ref(caplog, str(shown.value))


@pytest.mark.parametrize("api", ["plain", "stream", "astream"])
def test_a_user_error_inside_an_endpoint_keeps_its_message(client: Client, api: str,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    plant(monkeypatch, UserError("labels must be whole numbers from 0 to 9 <b>"))
    with caplog.at_level(logging.ERROR, logger="demo.ui"), pytest.raises(AppError) as shown:
        call(client, api)
    assert str(shown.value) == "Labels must be whole numbers from 0 to 9 &lt;b&gt;"  # capitalised, HTML-escaped
    assert not caplog.records, "a user's mistake is not a bug to log"


def test_a_gr_error_the_handler_raises_passes_unchanged(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="demo.ui"), pytest.raises(AppError, match="^a message the handler"):
        call(client, "told")
    assert not caplog.records


def test_a_file_the_server_cannot_write_is_not_the_users_mistake(monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    plant(monkeypatch, OSError(28, "No space left on device"))
    with caplog.at_level(logging.ERROR, logger="demo.ui"), pytest.raises(gr.Error) as shown:
        plain(1.0)
    assert re.fullmatch(r"Could not read or write a file on the server \(ref [0-9A-F]{6}\)", shown.value.message)
    assert "No space left on device" in caplog.text and caplog.records[0].exc_info


def test_closing_a_stream_closes_the_handlers_generator() -> None:
    closed = []

    @user_errors
    def gen() -> Iterator[int]:
        try:
            yield 1
            yield 2
        finally:
            closed.append("sync")

    @user_errors
    async def agen() -> AsyncIterator[int]:
        try:
            yield 1
            yield 2
        finally:
            closed.append("async")

    g = gen()
    next(g)
    g.close()

    async def first_then_close() -> None:
        a = agen()
        await a.__anext__()
        await a.aclose()
    asyncio.run(first_then_close())
    assert closed == ["sync", "async"]


# ----------------------------------------------------------------------------- CLI
def test_a_bug_in_the_cli_is_an_internal_error_with_its_traceback(tiny_checkpoint: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture) -> None:
    from gancls import sampling

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ValueError(PLANTED)
    monkeypatch.setattr(sampling, "label_grid", broken)
    rc = cli.main(["sample", "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "x.png")])
    err = capsys.readouterr().err
    assert rc == cli.EXIT_INTERNAL and rc not in (0, 1, 2, 3)  # 1 is an unfinished run, 2 a user error, 3 diverged
    assert "Traceback" in err and f"ValueError: {PLANTED}" in err and "in broken" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("internal error: ValueError in gancls sample") and "this is a bug, not your input" in last
    assert "error: planted" not in err and not any(line.startswith("error:") for line in err.splitlines())


def test_a_user_error_in_the_cli_is_still_one_error_line(tiny_checkpoint: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    rc = cli.main(["sample", "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "x.txt")])
    err = capsys.readouterr().err
    assert (rc, err) == (2, "error: --out must end in .npz or .png (got x.txt)\n")
    rc = cli.main(["train", "--device", "tpu", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert (rc, err) == (2, "error: unknown device 'tpu': choose one of auto, cpu, cuda, mps\n")


# ------------------------------------------------------------------------ app start
def test_app_start_a_bad_flag_is_one_error_line_and_a_bug_is_not(monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture) -> None:
    from demo import context, main
    from gancls import device

    monkeypatch.setattr(device, "share_malloc_arenas", lambda: None)  # main's process-wide setting: not here
    with pytest.raises(SystemExit) as exit_:
        main.main(["--train-concurrency", "0"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "error: train concurrency must be at least 1 (got 0)\n"

    def broken(*args: Any, **kwargs: Any) -> float:
        raise ValueError(PLANTED)
    monkeypatch.setattr(context, "busy_cores", broken)  # the first thing load_context asks
    with pytest.raises(ValueError, match="^planted"):  # not turned into `error: …` exit 2: a traceback
        main.main(["--train-concurrency", "1"])
    assert "error:" not in capsys.readouterr().err


def test_a_bad_number_in_the_environment_is_named(monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    from demo.main import build_parser

    monkeypatch.setenv("GANCLS_MAX_BATCH", "lots")
    monkeypatch.setenv("GANCLS_IDLE_MINUTES", "7.5")
    with caplog.at_level(logging.WARNING, logger="demo.main"):
        args = build_parser().parse_args([])
    assert (args.max_batch, args.idle_minutes) == (1024, 7.5)
    assert [r.getMessage() for r in caplog.records] == ["GANCLS_MAX_BATCH='lots' is not a whole number; using 1024"]


@pytest.mark.parametrize("refusal", ["BusyError", "RunNotFoundError"])
def test_a_sessions_refusals_are_shown_as_messages(refusal: str, monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    from demo import session

    plant(monkeypatch, getattr(session, refusal)("that run is no longer kept"))
    with caplog.at_level(logging.ERROR, logger="demo.ui"), pytest.raises(gr.Error) as shown:
        plain(1.0)
    assert shown.value.message == "That run is no longer kept" and not caplog.records


# ------------------------------------------------------------------------ the real page
def test_every_handler_of_the_page_follows_the_contract(tiny_checkpoint: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    from demo.context import load_context
    from demo.page import build_demo
    from demo.tabs import classroom

    page = build_demo(load_context(checkpoint=str(tiny_checkpoint), work_dir=str(tmp_path / "work"),
                                   runs_dir=tmp_path / "runs"))
    handlers = [f for f in page.fns.values() if f.fn is not None]
    assert len(handlers) > 40 and all(getattr(f.fn, "follows_error_contract", False) for f in handlers)
    # Gradio read each handler's kind when it was wired; the wrapper is of the same kind.
    assert all(f.types_generator == (inspect.isgeneratorfunction(f.fn) or inspect.isasyncgenfunction(f.fn))
               for f in handlers)

    # A handler no tab wrapped itself (the lesson link, read on page load), with a bug planted inside it.
    def broken(*args: Any, **kwargs: Any) -> None:
        raise KeyError(PLANTED)
    monkeypatch.setattr(classroom, "read_lesson", broken)
    lesson = next(f.fn for f in handlers if f.name == "lesson")
    with caplog.at_level(logging.ERROR, logger="demo.ui"), pytest.raises(gr.Error) as shown:
        lesson(SimpleNamespace(query_params={"seed": "3"}))
    assert INTERNAL.fullmatch(shown.value.message) and "demo.tabs.classroom.ClassTab.lesson" in caplog.text
    assert PLANTED in caplog.text and "Traceback" in caplog.text
