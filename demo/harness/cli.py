"""The CLI in-process, for tests: `python -m gancls ARGV` without a subprocess."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gancls.cli import main

if TYPE_CHECKING:
    import pytest


def run_cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    """`python -m gancls ARGV` in-process: (exit code, stdout, stderr)."""
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse's usage errors
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err
