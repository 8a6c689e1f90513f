"""The app started the way a Space starts it serves the page, trains, and writes only where a Space can write."""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# device, data, seconds, epochs, max_steps, arch, batch, lr_d, lr_g, seed, objective, loss (as tests/test_app_api.py)
TRAIN_3S = ["auto", "embedded", 3, 0, 0, "small", 32, 4e-4, 1e-3, 0, "gan-cls", "lsgan"]


def load_deploy_script():
    """scripts/deploy_space.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("deploy_space", ROOT / "scripts" / "deploy_space.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# Gradio writes a type-stub file beside any module that defines a component subclass (demo/components.py,
# demo/curves.py; it swallows the error where it cannot, as on a read-only tree); like bytecode caches,
# that is not the app's doing.
GRADIO_STUBS = "demo/*.pyi"


def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under `root` (bytecode caches and Gradio's stubs aside) with its size and mtime."""
    return {rel: (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
            and not fnmatch.fnmatch(rel := p.relative_to(root).as_posix(), GRADIO_STUBS)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_page(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        assert proc.poll() is None, f"the app exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"{url} did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def device_dropdown(url: str) -> dict:
    """The Train tab's Device dropdown, as the page's config describes it."""
    with urllib.request.urlopen(url + "config", timeout=10) as r:
        config = json.load(r)
    found = [c["props"] for c in config["components"] if c.get("props", {}).get("label") == "Device"]
    assert found, "the page has no Device dropdown"
    return found[0]


def test_spaces_decorator_is_a_pass_through_off_zerogpu(monkeypatch: pytest.MonkeyPatch) -> None:
    spaces = pytest.importorskip("spaces", reason="the `spaces` package is not installed (requirements-dev.txt)")
    from demo.zerogpu import zero_gpu_available

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert not zero_gpu_available()  # installed, but not on ZeroGPU: the app trains in-process
    calls = []
    chunk = spaces.GPU(duration=40)(lambda trainer, seconds: calls.append((trainer, seconds)) or "ran here")
    assert chunk("t", 1.5) == "ran here" and calls == [("t", 1.5)]


@pytest.mark.slow
def test_app_starts_and_trains_as_on_a_space(tmp_path: Path) -> None:
    space = tmp_path / "space"  # no `shared` folder beside it
    load_deploy_script().stage(space, "cpu")
    tmp, home = tmp_path / "tmp", tmp_path / "home"
    tmp.mkdir()
    home.mkdir()
    before = tree_state(space)
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GANCLS_", "GRADIO_", "SPACES_")) and k not in ("PYTHONPATH", "SPACE_ID")}
    env.update(SYSTEM="spaces", SPACE_ID="test/gancls", GRADIO_SERVER_NAME="0.0.0.0", GRADIO_SERVER_PORT=str(port),
               GRADIO_ANALYTICS_ENABLED="False", TMPDIR=str(tmp), HOME=str(home), PYTHONUNBUFFERED="1",
               OMP_NUM_THREADS="2", HF_HUB_OFFLINE="1")
    log = tmp_path / "app.log"
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=space, env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_page(url, proc, log)
        device = device_dropdown(url)
        assert "CPU" in device["info"] and "ZeroGPU" not in device["info"], device["info"]

        from gradio_client import Client

        client = Client(url, verbose=False)
        t0 = time.monotonic()
        status, *_ = client.submit(*TRAIN_3S, api_name="/train").result(timeout=120)
        print(f"3 s of training through gradio_client took {time.monotonic() - t0:.1f} s")
        using = client.predict(api_name="/using")
        steps = int(using.split("trained for ")[1].split(" ")[0].replace(",", ""))
        assert steps > 0, using
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # the app stops training, keeps each session's run, and exits
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    assert tree_state(space) == before, "the app wrote into its source tree"
    kept = tmp / "gancls-runs"  # no /data here: the Space's temp dir
    assert (kept / ".browser-secret").is_file(), sorted(p.name for p in tmp.iterdir())
    assert list(kept.glob("*/gancls.safetensors")), "the trained run was not kept in the Space-writable folder"
    assert not (ROOT / "runs" / "app" / kept.name).exists()
