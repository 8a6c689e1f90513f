"""How many torch threads a training run gets when nobody says: the selection logic, not its speed."""

from __future__ import annotations

import os

import pytest
import torch

from demo.harness.cli import run_cli
from gancls.device import busy_cores, default_threads, usable_cores


@pytest.mark.parametrize("kwargs, expected", [
    (dict(cores=2), 2),  # an idle machine, nothing else of ours running: every core
    (dict(cores=2, reserve=1), 1),  # a program that keeps a core for other work of its own
    (dict(cores=2, busy=1.2), 1),  # another job keeps a core busy
    (dict(cores=2, busy=0.4), 2),  # a little background noise does not cost a thread
    (dict(cores=2, busy=9.0), 1),  # overloaded: still one
    (dict(cores=1, reserve=1), 1),  # never zero
    (dict(cores=16, reserve=1), 15),
    (dict(cores=16, reserve=1, runs=2), 7),  # concurrent runs split the free cores
    (dict(cores=16, busy=3.6, runs=3), 4),
])
def test_default_threads(kwargs, expected):
    assert default_threads(**kwargs) == expected


@pytest.mark.parametrize("kwargs", [dict(cores=0), dict(cores=2, reserve=-1), dict(cores=2, busy=-1.0),
                                    dict(cores=2, runs=0)])
def test_default_threads_refuses_nonsense(kwargs):
    with pytest.raises(ValueError, match="need cores"):
        default_threads(**kwargs)


def test_usable_cores_respect_the_affinity_mask_and_torch():
    n = usable_cores()
    assert 1 <= n <= torch.get_num_threads()
    if hasattr(os, "sched_getaffinity"):
        assert n <= len(os.sched_getaffinity(0))
    assert default_threads() == n  # no reserve, nothing busy: all of them


def test_busy_cores_is_a_share_of_the_machine():
    assert 0.0 <= busy_cores(0.05) <= (os.cpu_count() or 1) + 1e-9


def test_cli_says_how_many_threads_it_chose(tmp_path, capsys):
    before = torch.get_num_threads()
    try:
        rc, _, err = run_cli(["train", "--arch", "small", "--no-download", "--out", str(tmp_path / "a"),
                              "--max-steps", "1", "--quiet", "--device", "cpu"], capsys)
        assert rc == 0, err
        line = next(x for x in err.splitlines() if x.startswith("threads: "))
        assert 1 <= int(line.split()[1]) <= usable_cores()
        assert "on CPU (" in err or "CPU (" in err
        rc, _, err = run_cli(["train", "--arch", "small", "--no-download", "--out", str(tmp_path / "b"),
                              "--max-steps", "1", "--quiet", "--device", "cpu", "--threads", "1"], capsys)
        assert rc == 0 and "threads: " not in err  # asked for: nothing to choose
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_the_app_trains_with_the_cores_other_work_leaves(monkeypatch):
    from demo import context

    seen = {}
    monkeypatch.setattr(context, "default_threads", lambda **kw: seen.update(kw) or 1)
    monkeypatch.setattr(context, "busy_cores", lambda: 0.75)  # what /proc/stat said other processes used

    class Stop(Exception):
        pass

    def stop(*a, **k):
        raise Stop

    monkeypatch.setattr(context, "ComputeThreads", lambda threads, workers, **kw: (seen.update(threads=threads), stop())[1])
    with pytest.raises(Stop):
        context.load_context(train_concurrency=2)
    assert seen == {"busy": 0.75, "runs": 2, "threads": 1}


@pytest.mark.parametrize("argv, env, expected", [
    ([], None, True), (["--no-pin-cores"], None, False), ([], "0", False), ([], "off", False), ([], "1", True)])
def test_pinning_the_training_threads_can_be_turned_off(monkeypatch, argv, env, expected):
    from demo.main import build_parser

    if env is None:
        monkeypatch.delenv("GANCLS_PIN_CORES", raising=False)
    else:
        monkeypatch.setenv("GANCLS_PIN_CORES", env)
    assert build_parser().parse_args(argv).pin_cores is expected
