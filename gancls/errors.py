"""The one error type a person sees: bad input from a user or a file, with a message that says what to do."""

from __future__ import annotations


class UserError(ValueError):
    """A setting, file or image we cannot use. The message is shown as it is (CLI: `error: …`; app: a toast).

    Anything else that escapes the library is a bug, not the user's mistake.
    """


__all__ = ["UserError"]
