"""Checkpoints load without running anything from the file; every bad file gets one clear message.

Each bad file is tried through the API (`load_checkpoint` raises CheckpointError naming the file and
the problem) and through the CLI (`sample` exits 2 with one `error:` line and no traceback).
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from demo.harness.forge import empty_tensors, join_checkpoint, oversized_header, split_checkpoint, with_meta
from gancls.checkpoint import MAX_CHECKPOINT_BYTES, WEIGHTS_NAME, CheckpointError, load_checkpoint, save_checkpoint
from gancls.cli import main
from gancls.config import model_preset
from gancls.data import load_embedded
from gancls.models import GANCLS
from gancls.train import Trainer

REPO = Path(__file__).resolve().parents[1]
HUGE = {"model_config.g_fc": 65536, "model_config.d_fc": 65536}  # 106 M weights: refused from the config alone


class Payload:
    """Unpickling this creates `marker`: what a malicious checkpoint would do, harmlessly."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real small checkpoint (weights, optimiser state, metadata) to damage in many ways."""
    run = tmp_path_factory.mktemp("good")
    torch.manual_seed(0)
    save_checkpoint(run, GANCLS(model_preset("small")), {"step": 7}, {"rng.data": torch.zeros(5, dtype=torch.uint8)})
    return run / WEIGHTS_NAME


def _with_tensors(good: Path, change: Callable[[dict], None]) -> bytes:
    tensors = st_load(good.read_bytes())
    header, _ = split_checkpoint(good)
    change(tensors)
    return st_save(tensors, metadata=header["__metadata__"])


def _pickle(kind: str) -> Callable[[Path, Path], None]:
    def write(path: Path, marker: Path) -> None:
        if kind == "zip":
            torch.save({"state_dict": Payload(marker)}, path)
        elif kind == "legacy":
            torch.save(Payload(marker), path, _use_new_zipfile_serialization=False)
        else:
            import pickle

            path.write_bytes(pickle.dumps(Payload(marker)))
    return write


# ------------------------------------------------------------------------ pickles
PICKLES = [  # (where the file goes, how it is written)
    ("run/gancls.safetensors", "zip"),  # where a checkpoint is expected, found by directory
    ("evil.pt", "zip"),
    ("evil.pth", "legacy"),
    ("evil.pkl", "plain"),
]


@pytest.mark.parametrize("name, kind", PICKLES, ids=[n for n, _ in PICKLES])
def test_a_pickle_is_refused_and_never_run(tmp_path: Path, capsys: pytest.CaptureFixture, name: str, kind: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / name
    path.parent.mkdir(exist_ok=True)
    _pickle(kind)(path, marker)
    # The payload is live: an unsafe loader would have run it. (A copy: torch.load treats a
    # .safetensors name specially.)
    control = tmp_path / "control.bin"
    control.write_bytes(path.read_bytes())
    if kind == "plain":
        import pickle

        pickle.loads(control.read_bytes())
    else:
        torch.load(control, weights_only=False)
    assert marker.exists()
    marker.unlink()

    target = path.parent if name.startswith("run/") else path
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(target)
    assert str(path) in str(e.value) and "not a safetensors file" in str(e.value)
    with pytest.raises(CheckpointError):
        Trainer.resume(target, load_embedded(), device="cpu")
    commands = [["sample", "--checkpoint", str(target), "--out", str(tmp_path / "o.png")],
                ["probe", "--checkpoint", str(target), "--image", str(tmp_path / "none.png")]]
    if target.is_dir():  # train --resume takes a run directory
        commands.append(["train", "--resume", "--out", str(target), "--no-download"])
    for argv in commands:
        rc = main(argv)
        err = capsys.readouterr().err  # train may first say which data it loaded, one "data:" line each
        assert rc == 2 and err.splitlines()[-1].startswith(f"error: {path}") and "Traceback" not in err
    assert not marker.exists() and not (tmp_path / "o.png").exists()


@pytest.mark.slow  # a fresh interpreter (the in-process cases above cover every file)
def test_the_real_cli_refuses_a_pickle(tmp_path: Path) -> None:
    """End to end through `python -m gancls`, in a fresh interpreter."""
    marker = tmp_path / "pwned"
    (tmp_path / "run").mkdir()
    _pickle("zip")(tmp_path / "run" / WEIGHTS_NAME, marker)
    r = subprocess.run([sys.executable, "-m", "gancls", "sample", "--checkpoint", str(tmp_path / "run"),
                        "--out", str(tmp_path / "o.png")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert str(tmp_path / "run" / WEIGHTS_NAME) in r.stderr
    assert not marker.exists() and not (tmp_path / "o.png").exists()


# --------------------------------------------------------------------- bad files
def _drop(name: str) -> Callable[[dict], None]:
    return lambda t: t.pop(name)


def _sparse(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        f.truncate(size)  # a sparse file: the size without the disk space


BAD: list[tuple[str, Callable[[Path, Path], object], str]] = [
    # (id, write the bad file at `path` from the good one and return what to load, expected words)
    ("empty-file", lambda g, p: p.write_bytes(b""), "the file is empty"),
    ("five-bytes", lambda g, p: p.write_bytes(b"\x10\0\0\0\0"), "file too short"),
    ("truncated-header", lambda g, p: p.write_bytes(g.read_bytes()[:200]), "truncated"),
    ("truncated-tensors", lambda g, p: p.write_bytes(g.read_bytes()[:-1000]), "truncated"),
    ("truncated-last-byte", lambda g, p: p.write_bytes(g.read_bytes()[:-1]), "truncated"),
    ("huge-header-length", lambda g, p: p.write_bytes(b"\xff" * 8 + b"{}"), "header of 18446744073709551615 bytes"),
    ("non-json-header", lambda g, p: p.write_bytes(struct.pack("<Q", 12) + b"not json {{{"), "unreadable header"),
    ("binary-header", lambda g, p: p.write_bytes(struct.pack("<Q", 4) + b"\xff\xfe\x00\x80"), "unreadable header"),
    ("json-list-header", lambda g, p: p.write_bytes(join_checkpoint([1, 2], b"")), "unexpected header"),  # type: ignore[arg-type]
    ("text-file", lambda g, p: p.write_text("hello, I am not a checkpoint\n" * 20), "not a safetensors file"),
    ("png-file", lambda g, p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100), "not a safetensors file"),
    ("safetensors-not-gancls", lambda g, p: p.write_bytes(st_save({"w": torch.zeros(3)})), "not a gancls checkpoint"),
    ("metadata-not-json", lambda g, p: p.write_bytes(st_save({"w": torch.zeros(3)}, metadata={"gancls": "{oops"})),
     "not a gancls checkpoint"),
    ("format-version-99", lambda g, p: p.write_bytes(with_meta(g, format_version=99)), "format version 99"),
    ("format-version-missing", lambda g, p: p.write_bytes(with_meta(g, format_version=None)), "format version None"),
    ("step-not-a-number", lambda g, p: p.write_bytes(with_meta(g, step="abc")), "step 'abc'"),
    ("unknown-arch", lambda g, p: p.write_bytes(with_meta(g, **{"model_config.arch": "huge"})), "unknown arch 'huge'"),
    ("unknown-config-field", lambda g, p: p.write_bytes(with_meta(g, **{"model_config.colour": 1})), "unknown ModelConfig fields"),
    ("config-says-fast", lambda g, p: p.write_bytes(with_meta(g, **{"model_config.arch": "fast", "model_config.g_fc": 256})),
     "has shape (64, 48), expected (256, 48)"),
    ("config-layer-width-float", lambda g, p: p.write_bytes(with_meta(g, **{"model_config.g_fc": 64.0})), "g_fc must be a whole number"),
    ("config-leak-text", lambda g, p: p.write_bytes(with_meta(g, **{"model_config.leak": "x"})), "leak must be a number"),
    ("config-huge-layers", lambda g, p: p.write_bytes(with_meta(g, **HUGE)),
     "model too large to run here: 106,183,034 weights"),  # refused from its config: nothing is built
    # A few kB of weights, but 65,536 channels: Generate 10 x 32 with it took 22 GB and the server with it.
    ("config-wide-g-deconv", lambda g, p: p.write_bytes(with_meta(g, **{"model_config.g_deconv": 65536, "model_config.g_ch": 1})),
     "model too large to run here"),
    ("config-wide-d-conv", lambda g, p: p.write_bytes(with_meta(g, **{"model_config.d_conv1": 65536, "model_config.d_conv2": 1})),
     "activations per image"),
    ("header-over-the-cap", lambda g, p: oversized_header(p, 190 * 2**20), "its header is 190.0 MB, more than the 8 MB"),
    ("metadata-string-over-the-cap", lambda g, p: p.write_bytes(with_meta(g, note="x" * (5 * 2**20))),
     "metadata entry 'gancls' is 5.0 MB, more than the 4 MB"),
    ("too-many-tensors", lambda g, p: p.write_bytes(join_checkpoint({**split_checkpoint(g)[0], **empty_tensors(2000)}, split_checkpoint(g)[1])),
     "2,031 tensors, more than the 1,024"),  # counted before safetensors parses them
    ("missing-tensor", lambda g, p: p.write_bytes(_with_tensors(g, _drop("model.D.out.bias"))), "missing tensors for this architecture: D.out.bias"),
    ("extra-tensor", lambda g, p: p.write_bytes(_with_tensors(g, lambda t: t.update({"model.G.extra": torch.zeros(2)}))),
     "unexpected tensors (another architecture?): G.extra"),
    ("wrong-shape", lambda g, p: p.write_bytes(_with_tensors(g, lambda t: t.update({"model.D.out.bias": torch.zeros(3)}))),
     "D.out.bias has shape (3,), expected (1,)"),
    ("wrong-dtype", lambda g, p: p.write_bytes(_with_tensors(g, lambda t: t.update({"model.D.out.bias": torch.zeros(1, dtype=torch.float64)}))),
     "dtype torch.float64, expected torch.float32"),
    ("nan-weights", lambda g, p: p.write_bytes(_with_tensors(g, lambda t: t["model.G.fc1.weight"].view(-1).__setitem__(3, float("nan")))),
     "G.fc1.weight holds NaN or Inf"),
    ("inf-weights", lambda g, p: p.write_bytes(_with_tensors(g, lambda t: t["model.D.fc.bias"].fill_(float("inf")))), "D.fc.bias holds NaN or Inf"),
    ("damaged-tensor-entry", lambda g, p: p.write_bytes(join_checkpoint({**split_checkpoint(g)[0], "model.x": {"dtype": "F99", "shape": [1], "data_offsets": [0, 4]}}, split_checkpoint(g)[1])),
     "damaged tensor data"),
    ("non-integer-offsets", lambda g, p: p.write_bytes(join_checkpoint({**split_checkpoint(g)[0], "model.x": {"dtype": "F32", "shape": [1], "data_offsets": [0, "4"]}}, split_checkpoint(g)[1])),
     "damaged tensor data"),
    ("over-the-size-limit", lambda g, p: _sparse(p, MAX_CHECKPOINT_BYTES + 1), "larger than the 256 MB limit"),
    ("empty-directory", lambda g, p: p.mkdir(), "no checkpoint in this directory"),
    ("no-such-path", lambda g, p: None, "no such file or directory"),
    ("fifo", lambda g, p: os.mkfifo(p), "not a regular file"),  # reading one would block forever
]


@pytest.mark.parametrize("make, words", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_bad_checkpoint_gets_one_clear_message(good: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                 make, words: str) -> None:
    path = tmp_path / "bad.safetensors"
    make(good, path)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    msg = str(e.value)
    assert str(path) in msg and words in msg and "\n" not in msg

    out = tmp_path / "o.png"
    rc = main(["sample", "--checkpoint", str(path), "--out", str(out), "--per-label", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and err == f"error: {msg}\n" and not out.exists()


def test_the_good_checkpoint_loads(good: Path, tmp_path: Path) -> None:
    ckpt = load_checkpoint(good.parent)
    assert ckpt.step == 7 and ckpt.path == good and set(ckpt.train_state) == {"rng.data"}
    assert main(["sample", "--checkpoint", str(good), "--out", str(tmp_path / "o.png"), "--per-label", "2"]) == 0
    assert (tmp_path / "o.png").stat().st_size > 0


def test_the_size_limit_is_a_parameter(good: Path) -> None:
    with pytest.raises(CheckpointError, match="larger than the 0 MB limit"):
        load_checkpoint(good, max_bytes=1000)


@pytest.mark.parametrize("widths", [HUGE, {"model_config.g_deconv": 65536, "model_config.g_ch": 1},
                                    {"model_config.d_conv1": 65536, "model_config.d_conv2": 1}],
                         ids=["wide-fc", "wide-g", "wide-d"])
def test_a_forged_config_builds_nothing(good: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        widths: dict) -> None:
    """A config the app cannot afford is refused from its numbers: no network is built, not even on "meta"."""
    import gancls.checkpoint

    built: list[object] = []
    monkeypatch.setattr(gancls.checkpoint, "GANCLS", lambda *a, **k: built.append(a))
    path = tmp_path / "forged.safetensors"
    path.write_bytes(with_meta(good, **widths))
    with pytest.raises(CheckpointError, match="model too large to run here"):
        load_checkpoint(path)
    assert built == []


def test_an_oversized_header_is_refused_from_its_first_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The header's length is checked before the file is read: a 190 MB header is never read nor parsed."""
    import gancls.checkpoint

    path = tmp_path / "big-header.safetensors"
    oversized_header(path, 190 * 2**20)
    parsed: list[object] = []
    monkeypatch.setattr(gancls.checkpoint.json, "loads", lambda *a, **k: parsed.append(a))
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail(f"read the whole of {self}"))
    with pytest.raises(CheckpointError, match="its header is 190.0 MB"):
        load_checkpoint(path)
    assert parsed == []


def test_a_preset_sized_model_is_within_the_cost_limit() -> None:
    """Every preset (the seed's widths are the largest) fits; the limit is twice the seed's on each measure."""
    from gancls.config import MAX_COST, MODEL_PRESETS

    for cfg in MODEL_PRESETS.values():
        n = sum(p.numel() for p in GANCLS(cfg).parameters())
        assert cfg.cost.params == n  # counted from the widths, exactly what gets built
        assert cfg.cost.params <= MAX_COST.params // 2 and cfg.cost.activations <= MAX_COST.activations // 2


def test_a_good_file_is_checked_on_meta_then_built_once(good: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Shapes are checked on a model on the "meta" device (no memory); the real one is built once, after."""
    import gancls.checkpoint as checkpoint

    built: list[str] = []  # the default device of every model load_checkpoint builds

    def recording(cfg):
        built.append(torch.get_default_device().type)
        return GANCLS(cfg)

    monkeypatch.setattr(checkpoint, "GANCLS", recording)
    load_checkpoint(good)
    assert built == ["meta", "cpu"]
