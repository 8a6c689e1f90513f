"""The error contract: UserError is the one error a person sees as a message; anything else is a bug.

A UserError is bad input from a user or a file, with a message that says what to do (CLI: `error: …`,
exit 2; app: a toast). Any other exception that escapes the library is logged with its traceback
(`log_internal`) and shown as an internal error with a reference to find it in the log, never as if the
input were wrong.
"""

from __future__ import annotations

import logging
import secrets


class UserError(ValueError):
    """A setting, file or image we cannot use. The message is shown as it is (CLI: `error: …`; app: a toast).

    Anything else that escapes the library is a bug, not the user's mistake.
    """


# What a person is shown for a bug; `ref` names the log record that holds the traceback.
INTERNAL_ERROR = "Internal error — this is a bug, not your input; the server log has the details (ref {ref})"


def log_internal(logger: logging.Logger, where: str, err: BaseException) -> str:
    """Log `err` with its traceback as a bug in `where`; returns the short reference to show the user."""
    ref = secrets.token_hex(3).upper()
    logger.error("internal error in %s (ref %s): %s: %s", where, ref, type(err).__name__, err,
                 exc_info=(type(err), err, err.__traceback__))
    return ref


__all__ = ["INTERNAL_ERROR", "UserError", "log_internal"]
