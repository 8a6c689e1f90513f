"""Handing freed memory back to the operating system."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc


def release_memory(collect: bool = True) -> None:
    """Free what was dropped and hand it back to the OS (glibc keeps freed heap for the process otherwise).

    `collect`: run the garbage collector first, for objects in reference cycles (a model and its
    optimiser: modules, hooks); without it only what reference counting already freed is handed back.
    """
    if collect:
        gc.collect()
    name = ctypes.util.find_library("c")
    if name and hasattr(ctypes.CDLL(name), "malloc_trim"):
        ctypes.CDLL(name).malloc_trim(0)
