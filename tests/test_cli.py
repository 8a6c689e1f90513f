"""The CLI end to end: the entry point and a training run in fresh interpreters, as a user runs them; the other
commands through the same main() in this process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gancls.data import load_embedded

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow  # end to end: every test here reads a run trained in a fresh interpreter


def gancls(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """`python -m gancls ARGS` in a fresh interpreter with a bare environment, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "gancls", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={"PATH": "/usr/bin:/bin", "GANCLS_CACHE": "/nonexistent-cache"})


@pytest.fixture
def cli(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch):
    """`gancls ARGS` in this process (the same main() the entry point calls), as a CompletedProcess.

    The entry point itself and a whole training run go through `gancls()` (a fresh interpreter each: seconds
    of torch import); the other commands run here, with the same bare data settings, and leave no signal
    handlers or thread count behind."""
    import signal

    import torch

    from gancls.cli import main

    monkeypatch.delenv("GANCLS_DATA", raising=False)
    monkeypatch.setenv("GANCLS_CACHE", "/nonexistent-cache")
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    threads = torch.get_num_threads()

    def run(*args: str) -> subprocess.CompletedProcess:
        try:
            rc = main(list(args))
        except SystemExit as e:  # argparse's usage errors and --help
            rc = e.code
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["gancls", *args], rc, out, err)

    yield run
    for sig, handler in handlers.items():
        signal.signal(sig, handler)
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, mnist) -> Path:
    out = tmp_path_factory.mktemp("run")
    data = ["--data-dir", str(mnist.root)]  # the tests' MNIST: full when it is here, else the subset as IDX files
    r = gancls("train", *data, "--device", "cpu", "--arch", "small", "--max-steps", "40", "--batch-size", "32",
               "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    assert "done: reached the step limit at step 40" in r.stdout
    return out


def test_help_lists_the_commands(cli) -> None:
    r = gancls("--help")
    assert r.returncode == 0
    for cmd in ("train", "sample", "probe", "eval"):
        assert cmd in r.stdout
    r = cli("train", "--help")
    for flag in ("--data-dir", "--device", "--max-seconds", "--out", "--epochs", "--max-steps", "--batch-size",
                 "--arch", "--seed", "--resume"):
        assert flag in r.stdout


def test_resume_continues_from_the_saved_step(run_dir: Path, mnist, cli) -> None:
    data = ["--data-dir", str(mnist.root)]
    r = cli("train", *data, "--device", "cpu", "--max-steps", "60", "--out", str(run_dir), "--resume", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "resuming at step 40" in r.stderr and "at step 60" in r.stdout


def test_sample_npz_and_png(run_dir: Path, tmp_path: Path, cli) -> None:
    r = cli("sample", "--checkpoint", str(run_dir), "--per-label", "7", "--seed", "0", "--out", str(tmp_path / "s.npz"))
    assert r.returncode == 0, r.stderr
    with np.load(tmp_path / "s.npz") as z:
        assert z["images"].shape == (70, 28, 28) and z["images"].dtype == np.uint8
        assert z["labels"].dtype == np.int64 and np.bincount(z["labels"]).tolist() == [7] * 10
    r = cli("sample", "--checkpoint", str(run_dir / "gancls.safetensors"), "--per-label", "3", "--labels", "2,7",
               "--out", str(tmp_path / "g.png"))
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "g.png").size[1] > 2 * 28


def test_probe_one_label_and_all(run_dir: Path, tmp_path: Path, cli) -> None:
    Image.fromarray(load_embedded().test_images[0].numpy()).save(tmp_path / "d.png")
    r = cli("probe", "--checkpoint", str(run_dir), "--image", str(tmp_path / "d.png"), "--label", "7")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("D(image, 7) = ")
    r = cli("probe", "--checkpoint", str(run_dir), "--image", str(tmp_path / "d.png"))
    assert r.returncode == 0 and r.stdout.count("D(image, ") == 10 and "best match" in r.stdout


def test_user_errors_are_one_line(tmp_path: Path, cli) -> None:
    r = cli("sample", "--checkpoint", str(tmp_path), "--out", str(tmp_path / "x.png"))
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr
    r = cli("train", "--data-dir", str(tmp_path / "nope"), "--out", str(tmp_path / "r"))
    assert r.returncode == 2 and "error: " in r.stderr and "Traceback" not in r.stderr


def test_train_does_not_overwrite_a_saved_run(run_dir: Path, cli) -> None:
    before = (run_dir / "gancls.safetensors").read_bytes()
    r = cli("train", "--no-download", "--arch", "small", "--max-steps", "1", "--out", str(run_dir))
    assert r.returncode == 2 and "already holds a run" in r.stderr and "--resume" in r.stderr
    assert (run_dir / "gancls.safetensors").read_bytes() == before


def test_a_mode_seeking_weight_given_by_hand_holds_for_the_whole_run(tmp_path: Path, cli) -> None:
    from gancls.checkpoint import load_checkpoint

    configs = {}
    for name, flags in (("preset", []), ("off", ["--mode-seeking", "0"])):
        r = cli("train", "--no-download", "--device", "cpu", "--max-steps", "1", "--out", str(tmp_path / name),
                   "--quiet", *flags)
        assert r.returncode == 0, r.stderr
        configs[name] = load_checkpoint(tmp_path / name).meta["train_config"]
    assert (configs["preset"]["mode_seeking"], configs["preset"]["mode_seeking_after"]) == (0.005, 25_600)
    assert (configs["off"]["mode_seeking"], configs["off"]["mode_seeking_after"]) == (0.0, 0)  # off means off
