"""The one live-update loop: turn a stream of engine events into about one UI update per interval.

Train and Ablation both stream with it. A view records events cheaply (`feed`); plots and images
are built only when an update is actually sent, so events between updates cost a few attribute
writes and the training thread never waits for the browser.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable, Iterator, TypeVar

from gancls.memory import release_memory

T = TypeVar("T")
TRIM_EVERY = 30.0  # seconds between handing freed heap back to the OS during a long stream


def live(events: Iterable[T], feed: Callable[[T], bool], every: float,
         clock: Callable[[], float] = time.monotonic) -> Iterator[None]:
    """Feed each event to `feed`; yield when an update is due, or at once when `feed` returns True (a run
    started or ended). Closes `events` when done.

    Updates keep a fixed cadence (due at start + k·`every`), not `every` after the last one: events come
    at their own pace, and restarting the interval at each one would stretch it by up to one event's gap.
    So a run whose events arrive at least every `every` seconds gets one update per `every` seconds.
    """
    start = clock()
    next_at = start + every
    next_trim = start + TRIM_EVERY
    try:
        for event in events:
            urgent = feed(event)
            now = clock()
            if now >= next_at:
                next_at += every
                if next_at <= now:  # a stall longer than `every` (a slow step): start the cadence afresh
                    next_at = now + every
                yield
            elif urgent:
                yield
            if now >= next_trim:
                # Each update builds images and tables that glibc keeps once freed; without this a
                # 20-minute run's resident memory keeps creeping up (bench/long_run_memory.py).
                next_trim = now + TRIM_EVERY
                release_memory()
    finally:
        close = getattr(events, "close", None)
        if close is not None:  # a generator: end the run's loop (the engine saves on its way out)
            close()
