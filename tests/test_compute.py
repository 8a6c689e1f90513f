"""The app's training threads: thread counts, streaming, errors, and closing early (the visitor left)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
import torch

from demo.compute import ComputeThreads
from gancls.device import team_workers

needs_two_cores = pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or not Path("/proc/self/task").is_dir() or len(os.sched_getaffinity(0)) < 2,
    reason="pinning threads to cores needs Linux and at least 2 usable cores")


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def compute(restore_threads):
    threads = ComputeThreads(1)
    yield threads
    threads.close()


def test_training_threads_keep_their_count_and_the_rest_get_one(restore_threads) -> None:
    compute = ComputeThreads(3, workers=2)
    try:
        assert torch.get_num_threads() == 1  # the building thread, and threads made from now on
        fresh = []
        t = threading.Thread(target=lambda: fresh.append(torch.get_num_threads()))
        t.start()
        t.join()
        assert fresh == [1]
        seen = {compute.call(lambda: (threading.current_thread().name, torch.get_num_threads())) for _ in range(6)}
        assert {n for _, n in seen} == {3}
        assert all(name.startswith("gancls-train") for name, _ in seen)
    finally:
        compute.close()


def test_stream_yields_in_order_on_a_training_thread(compute: ComputeThreads) -> None:
    consumer = threading.current_thread().name

    def gen():
        for i in range(5):
            yield i, threading.current_thread().name

    got = list(compute.stream(gen))
    assert [i for i, _ in got] == list(range(5))
    assert all(name != consumer and name.startswith("gancls-train") for _, name in got)


def test_stream_raises_the_sources_error_here(compute: ComputeThreads) -> None:
    def gen():
        yield 1
        raise ValueError("bad setting")

    items = compute.stream(gen)
    assert next(items) == 1
    with pytest.raises(ValueError, match="bad setting"):
        next(items)
    with pytest.raises(RuntimeError, match="no source"):  # an error before the first item, too
        list(compute.stream(lambda: (_ for _ in ()).throw(RuntimeError("no source"))))


def test_closing_the_stream_closes_the_source_there_and_waits(compute: ComputeThreads) -> None:
    cleaned = []

    def endless():
        try:
            while True:
                time.sleep(0.01)
                yield "tick"
        finally:
            time.sleep(0.2)  # as the engine's final save
            cleaned.append(threading.current_thread().name)

    items = compute.stream(endless)
    assert next(items) == "tick"
    items.close()
    assert len(cleaned) == 1 and cleaned[0].startswith("gancls-train")  # done before close() returned
    assert compute.call(lambda: "free again") == "free again"


def test_bad_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ComputeThreads(0)


def test_a_consumer_that_stops_taking_items_frees_the_thread(compute: ComputeThreads) -> None:
    cleaned = threading.Event()

    def endless():
        try:
            while True:
                time.sleep(0.01)
                yield "tick"
        finally:
            cleaned.set()

    items = compute.stream(endless, abandon_after=0.3)
    assert next(items) == "tick"  # ... and then nothing is taken (no close either)
    assert cleaned.wait(10), "the source should be closed once nobody takes its items"
    assert compute.call(lambda: "free again") == "free again"
    del items


def test_a_slow_source_with_an_attentive_consumer_is_not_abandoned(compute: ComputeThreads) -> None:
    def slow():
        for i in range(3):
            time.sleep(0.3)  # longer than abandon_after between items
            yield i

    assert list(compute.stream(slow, abandon_after=0.1)) == [0, 1, 2]


def team_at_work() -> tuple[set[int], dict[int, set[int]]]:
    """On the calling thread: its cores, and the cores of each other thread that works while it runs parallel ops."""
    return os.sched_getaffinity(0), {tid: os.sched_getaffinity(tid) for tid in team_workers(0.3)}


@needs_two_cores
def test_a_training_team_gets_a_core_per_thread(restore_threads) -> None:
    cores = sorted(os.sched_getaffinity(0))
    compute = ComputeThreads(2)
    try:
        assert compute.pinned
        mine, workers = compute.call(team_at_work)
        assert mine == {cores[0]}
        assert list(workers.values()) == [{cores[1]}]  # its one OpenMP worker, on the other core
        assert os.sched_getaffinity(0) == set(cores)  # the rest of the process is left free
        assert compute.call(lambda: float(torch.ones(1 << 20).sum())) == 2.0 ** 20
    finally:
        compute.close()


@needs_two_cores
def test_teams_are_left_free_when_asked_or_when_cores_are_short(restore_threads) -> None:
    cores = set(os.sched_getaffinity(0))
    for threads, workers, pin in [(2, 1, False), (len(cores), 2, True), (1, 1, True)]:
        compute = ComputeThreads(threads, workers=workers, pin_cores=pin)
        try:
            assert not compute.pinned
            assert compute.call(lambda: os.sched_getaffinity(0)) == cores
        finally:
            compute.close()
