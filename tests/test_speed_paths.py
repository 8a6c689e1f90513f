"""The CPU speed paths give the same training as the plain ones: oneDNN linear, frozen-D G step, bf16, allocator."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from gancls.checkpoint import load_checkpoint
from gancls.config import Budget, ConfigError, model_preset, train_preset
from gancls.data import load_embedded
from gancls.device import describe_device
from gancls.linear import Linear, onednn_available
from gancls.models import GANCLS
from gancls.train import Metrics, Trainer

needs_onednn = pytest.mark.skipif(not onednn_available(), reason="this torch/CPU has no oneDNN matmul")


@pytest.fixture(scope="module")
def data():
    return load_embedded()


@needs_onednn
def test_loading_a_checkpoint_leaves_later_models_on_onednn(tiny_checkpoint) -> None:
    # load_checkpoint builds a model under torch.device("meta") to check shapes. When that was a process's
    # first oneDNN probe, the probe ran on meta tensors, failed, and every later model (the app's runs)
    # was left on MKL's matmul.
    onednn_available.cache_clear()
    try:
        loaded = load_checkpoint(tiny_checkpoint).model
        fresh = GANCLS(loaded.cfg)
        layers = [m for m in [*loaded.modules(), *fresh.modules()] if isinstance(m, Linear)]
        assert layers and all(m.onednn for m in layers)
    finally:
        onednn_available.cache_clear()


@needs_onednn
@pytest.mark.parametrize("batch, n_in, n_out, bias", [(10, 6272, 1024, True), (3, 48, 64, False), (1, 5, 1, True)])
def test_onednn_linear_matches_f_linear_forward_and_backward(batch: int, n_in: int, n_out: int, bias: bool) -> None:
    torch.manual_seed(0)
    layer = Linear(n_in, n_out, bias=bias)
    assert layer.onednn
    x = torch.randn(batch, n_in, requires_grad=True)
    g = torch.randn(batch, n_out)
    y = layer(x)
    y.backward(g)
    grads = (x.grad, layer.weight.grad, layer.bias.grad if bias else None)

    x2 = x.detach().double().requires_grad_()
    w2 = layer.weight.detach().double().requires_grad_()
    b2 = layer.bias.detach().double().requires_grad_() if bias else None
    y2 = F.linear(x2, w2, b2)
    y2.backward(g.double())
    assert torch.allclose(y.double(), y2, rtol=1e-4, atol=1e-4)
    for got, want in zip(grads, (x2.grad, w2.grad, b2.grad if bias else None)):
        if want is not None:
            assert torch.allclose(got.double(), want, rtol=1e-4, atol=1e-3)


@needs_onednn
def test_onednn_linear_computes_only_the_gradients_asked_for() -> None:
    layer = Linear(8, 4)
    layer.requires_grad_(False)  # as D during the G step
    x = torch.randn(2, 8, requires_grad=True)
    layer(x).sum().backward()
    assert x.grad is not None and layer.weight.grad is None and layer.bias.grad is None


def test_linear_is_a_drop_in_nn_linear() -> None:
    layer = Linear(6, 3)
    assert isinstance(layer, torch.nn.Linear)
    assert set(layer.state_dict()) == set(torch.nn.Linear(6, 3).state_dict())
    x = torch.randn(2, 4, 6)  # 3-D input: the plain path
    assert torch.allclose(layer(x), F.linear(x, layer.weight, layer.bias))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast still applies
        assert layer(torch.randn(2, 6)).dtype == torch.bfloat16


def test_g_step_leaves_d_trainable_and_its_grads_alone(data) -> None:
    t = Trainer(model_preset("small"), train_preset("small", batch_size=16), data, device="cpu")
    seen = {}

    def snapshot(name, step):
        def wrapped(*args, **kwargs):
            seen[name] = [p.grad.clone() for p in t.model.D.parameters()]
            seen[name + " frozen"] = not any(p.requires_grad for p in t.model.D.parameters())
            return step(*args, **kwargs)
        return wrapped

    t.opt_d.step = snapshot("d step", t.opt_d.step)
    t.opt_g.step = snapshot("g step", t.opt_g.step)
    t.step()
    # The G step added nothing to D's gradients, D was trainable again by then, and still is.
    assert all(torch.equal(a, b) for a, b in zip(seen["d step"], seen["g step"]))
    assert not seen["d step frozen"] and not seen["g step frozen"]
    assert all(p.requires_grad for p in t.model.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in t.model.G.parameters())


def test_bf16_training_runs_learns_and_says_so(data) -> None:
    cfg = train_preset("small", batch_size=32, metrics_every=20, metrics_seconds=1e9, sample_seconds=1e9,
                       autosave_seconds=0, precision="bf16")
    t = Trainer(model_preset("small"), cfg, data, device="cpu")
    events = list(t.run(Budget(steps=120)))
    assert "bf16 autocast" in events[0].device
    metrics = [e for e in events if isinstance(e, Metrics)]
    assert all(torch.isfinite(torch.tensor([m.loss_d, m.loss_g])).all() for m in metrics)
    assert metrics[-1].loss_d < metrics[0].loss_d
    assert all(p.dtype == torch.float32 for p in t.model.parameters())  # weights and Adam stay fp32
    assert t.meta()["train_config"]["precision"] == "bf16"


def test_precision_is_validated() -> None:
    with pytest.raises(ConfigError, match="precision must be one of fp32, bf16"):
        train_preset("small", precision="fp16")
    assert dataclasses.replace(train_preset("small"), precision="fp32").precision == "fp32"


def test_cli_precision_flag(tmp_path, capsys) -> None:
    # In-process (the same main() as `python -m gancls`): a fresh interpreter would add seconds of imports.
    import signal

    from gancls.cli import main

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    threads = torch.get_num_threads()
    try:
        args = ["train", "--arch", "small", "--max-steps", "5", "--no-download", "--quiet", "--out", str(tmp_path / "run"),
                "--precision", "bf16"]
        assert main(args) == 0, capsys.readouterr().err
        assert "bf16 autocast" in capsys.readouterr().err
        assert main(args[:-2] + ["--resume", "--precision", "fp32"]) == 2
        assert "--resume continues a run with its own settings" in capsys.readouterr().err
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        torch.set_num_threads(threads)


FAULTS = """
import resource, sys
from gancls.config import model_preset, train_preset
from gancls.data import load_embedded
from gancls.device import keep_freed_memory
from gancls.train import Trainer

t = Trainer(model_preset("seed"), train_preset("seed", batch_size=10, holdout=0), load_embedded(), device="cpu")

def faults_per_step():  # by default glibc trims and regrows the heap every few steps (~7,000 faults each)
    for _ in range(10):  # the heap settles first: fewer warm-up steps left 420 faults a step to count
        t.step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(30):
        t.step()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 30

default = faults_per_step()
print(keep_freed_memory(), keep_freed_memory(), default, faults_per_step())
"""


@pytest.mark.slow  # a fresh interpreter training the seed model
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_keep_freed_memory_stops_the_seed_step_page_faulting() -> None:
    # In a subprocess: it changes malloc for the whole process.
    done = subprocess.run([sys.executable, "-c", FAULTS], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    first, second, default, kept = done.stdout.split()
    assert first == second == "True"
    assert float(kept) < float(default) / 4, (default, kept)  # 1,000-2,500 -> 0-160 per step here


def test_describe_device_names_thread_counts() -> None:
    assert describe_device(torch.device("cpu"), 1) == "CPU (1 thread)"
    assert describe_device(torch.device("cpu"), 4) == "CPU (4 threads)"
