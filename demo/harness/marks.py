"""pytest marks the tests share (the one harness module that imports pytest)."""

from __future__ import annotations

import pytest

from .browser import CHROMIUM

needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"Debian chromium is not installed at {CHROMIUM}")
