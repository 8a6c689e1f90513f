"""Style encoder S: training, round trips on the shipped model, checkpoints with and without S, the CLI
(`sample --style-from`, `write`) end to end, and every bad input refused with one clear message."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from demo.harness.cli import run_cli
from gancls.checkpoint import (
    CheckpointError,
    add_encoder,
    load_checkpoint,
    save_checkpoint,
)
from gancls.config import model_preset
from gancls.data import load_embedded
from gancls.encoder import (
    EncoderConfig,
    EncoderTrainConfig,
    StyleEncoder,
    StyleError,
    latent_error,
    render,
    source_digit,
    style_of,
    train_encoder,
    transfer,
    write_number,
)
from gancls.errors import UserError
from gancls.judge import judge_predict, load_judge
from gancls.models import GANCLS

REPO = Path(__file__).resolve().parents[1]
PRETRAINED = REPO / "checkpoints" / "pretrained"
FAST = EncoderTrainConfig(steps=20, recon_weight=0.0)  # an S to save, load and run, not a good one


@pytest.fixture(scope="module")
def small() -> GANCLS:
    torch.manual_seed(0)
    return GANCLS(model_preset("small")).eval()


@pytest.fixture(scope="module")
def small_encoder(small: GANCLS) -> StyleEncoder:
    return train_encoder(small, FAST)


@pytest.fixture(scope="module")
def pretrained():
    return load_checkpoint(PRETRAINED)


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """Real test digits from the embedded subset: uint8 [1000, 28, 28], int64 [1000]."""
    sub = load_embedded()
    return sub.test_images, sub.test_labels


@pytest.fixture(scope="module")
def digit_png(tmp_path_factory: pytest.TempPathFactory, digits) -> Path:
    """A real test 7 as an upload would come: 10x larger, dark ink on white paper."""
    x, y = digits
    seven = x[(y == 7).nonzero()[0, 0]].numpy()
    path = tmp_path_factory.mktemp("img") / "seven.png"
    Image.fromarray(255 - seven).resize((280, 280), Image.Resampling.BILINEAR).save(path)
    return path


# ------------------------------------------------------------------------------------ training
def test_training_reduces_the_latent_loss(pretrained) -> None:
    # the shipped G (an untrained small G barely varies with z: nothing to invert)
    model = pretrained.model
    g_before = {k: v.clone() for k, v in model.G.state_dict().items()}
    untrained = StyleEncoder(EncoderConfig(), generator=torch.Generator().manual_seed(0))
    before = latent_error(model, untrained, n=500)
    trained = train_encoder(model, EncoderTrainConfig(steps=100, recon_weight=0.0))
    after = latent_error(model, trained, n=500)
    assert after < 0.95 * before, (before, after)  # ~0.91 vs ~1.01; the shipped S reaches ~0.87
    assert trained.info["steps_done"] == 100 and not trained.training
    # G is left as it was: eval mode, gradients on, same weights
    assert not model.G.training and all(p.requires_grad for p in model.G.parameters())
    assert all(torch.equal(v, g_before[k]) for k, v in model.G.state_dict().items())


def test_training_is_reproducible_and_stoppable(small: GANCLS) -> None:
    a, b = train_encoder(small, dataclasses.replace(FAST, steps=5)), train_encoder(small, dataclasses.replace(FAST, steps=5))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    import threading

    stop = threading.Event()
    stop.set()
    assert train_encoder(small, FAST, stop=stop).info["steps_done"] == 0


def test_pixel_term_trains_on_real_digits(small: GANCLS, digits) -> None:
    enc = train_encoder(small, EncoderTrainConfig(steps=3, recon_weight=10.0), real=digits)
    assert enc.info["train_config"]["recon_weight"] == 10.0
    with pytest.raises(StyleError, match="uint8"):
        train_encoder(small, EncoderTrainConfig(steps=1), real=(digits[0].float(), digits[1]))


@pytest.mark.parametrize("field, value, words", [
    ("steps", 0, "training steps"), ("steps", 2.5, "training steps"), ("lr", float("nan"), "learning rate"),
    ("recon_weight", -1.0, "reconstruction weight"), ("batch_size", True, "batch size"), ("seed", -1, "seed")])
def test_bad_training_settings_are_refused(field: str, value: object, words: str) -> None:
    with pytest.raises(UserError, match=words):
        EncoderTrainConfig(**{field: value})
    assert EncoderTrainConfig(steps=3.0).steps == 3 and type(EncoderTrainConfig(steps=3.0).steps) is int


# ------------------------------------------------------------------------- the shipped model
def test_shipped_model_has_a_style_encoder_that_inverts_g(pretrained) -> None:
    model, enc = pretrained.model, pretrained.encoder
    assert enc is not None, "checkpoints/pretrained should ship S: python -m scripts.train_encoder"
    # G ignores part of its noise, so z comes back only in part; predicting 0 would score 1.0
    assert latent_error(model, enc, n=500) < 0.92
    g = torch.Generator().manual_seed(5)
    z, y = model.noise(200, g), torch.arange(10).repeat(20)
    x = render(model, z, y)  # [200, 28, 28]
    again = render(model, style_of(enc, x), y)
    other = render(model, model.noise(200, g), y)
    err = lambda a, b: float((a.float() - b.float()).div(255).square().mean())  # noqa: E731
    assert err(again, x) < 0.4 * err(other, x), (err(again, x), err(other, x))


def test_transfer_writes_every_label_in_the_source_style(pretrained, digits) -> None:
    x, y = digits
    judge = load_judge()
    result = transfer(pretrained.model, pretrained.encoder, x[0].numpy())
    assert result.source.dtype == np.uint8 and result.source.shape == (28, 28)
    assert np.array_equal(result.source, x[0].numpy())  # an MNIST digit is read as it is
    assert result.images.dtype == np.uint8 and result.images.shape == (10, 28, 28)
    assert result.labels.tolist() == list(range(10)) and result.noise.shape == (38,)
    assert (judge_predict(judge, torch.from_numpy(result.images)).predictions == torch.arange(10)).sum() >= 9
    # the style is the source's: its own label re-rendered is closer to it than random styles are
    feats = lambda a: judge_predict(judge, torch.as_tensor(a)).features  # noqa: E731
    same = feats(result.images[int(y[0])][None]) - feats(x[:1])
    rand = feats(render(pretrained.model, pretrained.model.noise(20, torch.Generator().manual_seed(0)), [int(y[0])] * 20))
    assert same.norm() < (rand - feats(x[:1])).norm(dim=1).median()


def test_write_number_is_one_strip_of_the_rendered_digits(pretrained) -> None:
    model = pretrained.model
    img = write_number(model, None, " 2026 ", seed=3)
    assert img.dtype == np.uint8 and img.shape == (28, 4 * 28)
    z = model.noise(1, torch.Generator().manual_seed(3))
    tiles = render(model, z.expand(4, -1), [2, 0, 2, 6]).numpy()
    assert np.array_equal(img, np.concatenate(list(tiles), axis=1))
    assert np.array_equal(write_number(model, None, "7"), write_number(model, None, "7", seed=0))


def test_seed_arch_renders_independently_of_the_batch(digits) -> None:
    # arch=seed normalises with batch statistics even when sampling: render decodes among a fixed batch
    torch.manual_seed(1)
    seedlike = GANCLS(dataclasses.replace(model_preset("small"), batch_stats_always=True)).eval()
    z = seedlike.noise(1, torch.Generator().manual_seed(0)).expand(10, -1)
    together = render(seedlike, z, range(10))
    alone = torch.cat([render(seedlike, z[:1], [k]) for k in range(10)])
    assert torch.equal(together, alone)
    assert len({bytes(t.numpy()) for t in together}) == 10  # and the label still matters
    enc = train_encoder(seedlike, dataclasses.replace(FAST, steps=5))
    assert transfer(seedlike, enc, digits[0][0], [1, 2]).images.shape == (2, 28, 28)


# -------------------------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip_with_s(tmp_path: Path, small: GANCLS, small_encoder: StyleEncoder, digits) -> None:
    path = save_checkpoint(tmp_path, small, {"step": 3}, encoder=small_encoder)
    ck = load_checkpoint(tmp_path)
    assert ck.encoder is not None and not ck.encoder_stale
    assert ck.encoder.cfg == small_encoder.cfg and ck.encoder.info["steps_done"] == FAST.steps
    assert torch.equal(style_of(ck.encoder, digits[0][:8]), style_of(small_encoder, digits[0][:8]))
    assert ck.meta["style_encoder"]["config"] == small_encoder.cfg.to_dict()
    assert sum(k.startswith("S.") for k in load_file(path)) == len(small_encoder.state_dict())


def test_old_checkpoint_without_s_loads_and_add_encoder_keeps_the_rest(tmp_path: Path, small: GANCLS,
                                                                       small_encoder: StyleEncoder) -> None:
    path = save_checkpoint(tmp_path, small, {"step": 7, "note": "old"}, train_state={"opt": torch.arange(3.0)})
    ck = load_checkpoint(tmp_path)
    assert ck.encoder is None and not ck.encoder_stale and "style_encoder" not in ck.meta
    before = load_file(path)
    add_encoder(tmp_path, small_encoder)
    after = load_file(path)
    assert set(after) - set(before) == {f"S.{k}" for k in small_encoder.state_dict()}
    assert all(torch.equal(before[k], after[k]) and before[k].dtype == after[k].dtype for k in before)
    ck2 = load_checkpoint(tmp_path)
    assert ck2.encoder is not None and ck2.meta["note"] == "old" and ck2.step == 7
    assert (tmp_path / "gancls.json").read_text().count('"style_encoder"') == 1
    # saving the model again (e.g. after more training) does not carry a stale S description along
    save_checkpoint(tmp_path, small, ck2.meta)
    assert load_checkpoint(tmp_path).encoder is None


def test_s_for_another_g_is_not_loaded(tmp_path: Path, small_encoder: StyleEncoder) -> None:
    torch.manual_seed(9)
    other = GANCLS(model_preset("small"))
    path = save_checkpoint(tmp_path, other, {"step": 1})
    tensors, meta = load_file(path), load_checkpoint(path).meta
    save_checkpoint(tmp_path, other, meta, encoder=small_encoder)
    t = load_file(path)
    t.update({k: v + 1 for k, v in tensors.items() if k.startswith("model.G.fc1")})  # G changes after S was saved
    _rewrite(path, t)
    ck = load_checkpoint(path)
    assert ck.encoder is None and ck.encoder_stale


def _rewrite(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    save_file(tensors, str(path), metadata=meta)


@pytest.mark.parametrize("damage, words", [
    (lambda t: t.update({"S.fc.weight": t["S.fc.weight"] * float("nan")}), "NaN"),
    (lambda t: t.update({"S.out.bias": torch.zeros(5)}), "shape"),
    (lambda t: t.update({"S.out.bias": t["S.out.bias"].double()}), "dtype"),
    (lambda t: t.pop("S.conv1.weight"), "missing"),
    (lambda t: t.update({"S.extra": torch.zeros(1)}), "unexpected"),
])
def test_damaged_s_tensors_are_refused(tmp_path: Path, small: GANCLS, small_encoder: StyleEncoder, damage, words) -> None:
    path = save_checkpoint(tmp_path, small, {"step": 1}, encoder=small_encoder)
    t = load_file(path)
    damage(t)
    _rewrite(path, t)
    with pytest.raises(CheckpointError, match=words):
        load_checkpoint(path)


def test_s_tensors_without_metadata_are_refused(tmp_path: Path, small: GANCLS, small_encoder: StyleEncoder) -> None:
    path = save_checkpoint(tmp_path, small, {"step": 1})
    t = load_file(path)
    t.update({f"S.{k}": v for k, v in small_encoder.state_dict().items()})
    _rewrite(path, t)
    with pytest.raises(CheckpointError, match="no style_encoder metadata"):
        load_checkpoint(path)


# ------------------------------------------------------------------------------------------ CLI
def test_cli_sample_style_from(tmp_path: Path, digit_png: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "ten.npz"
    rc, _, err = run_cli(["sample", "--checkpoint", str(PRETRAINED), "--style-from", str(digit_png),
                               "--labels", "0,1,2,3,4,5,6,7,8,9", "--per-label", "1", "--out", str(out)], capsys)
    assert rc == 0, err
    with np.load(out) as npz:
        images, labels = npz["images"], npz["labels"]
    assert images.dtype == np.uint8 and images.shape == (10, 28, 28)
    assert labels.dtype == np.int64 and labels.tolist() == list(range(10))
    rc, _, err = run_cli(["sample", "--style-from", str(digit_png), "--labels", "3,5", "--out", str(tmp_path / "a.png")], capsys)
    assert rc == 0, err
    assert Image.open(tmp_path / "a.png").size == (2 * 30 + 2, 32)  # one row: 28 px digits, 2 px padding


def test_cli_write(tmp_path: Path, digit_png: Path, capsys: pytest.CaptureFixture) -> None:
    for extra in (["--seed", "4"], ["--style-from", str(digit_png)], []):
        out = tmp_path / "n.png"
        rc, _, err = run_cli(["write", "--text", "2026", "--out", str(out), *extra], capsys)
        assert rc == 0, err
        img = Image.open(out)
        assert img.mode == "L" and img.size == (4 * 28, 28)
        assert np.asarray(img).dtype == np.uint8


def test_cli_trains_s_on_the_fly_for_a_checkpoint_without_one(tmp_path: Path, small: GANCLS, digit_png: Path,
                                                               capsys: pytest.CaptureFixture,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import gancls.encoder

    real_train = gancls.encoder.train_encoder  # the CLI's full default takes seconds; 20 steps show the path
    monkeypatch.setattr(gancls.encoder, "train_encoder", lambda model: real_train(model, FAST))
    save_checkpoint(tmp_path, small, {"step": 1})
    rc, _, err = run_cli(["write", "--checkpoint", str(tmp_path), "--text", "12", "--style-from", str(digit_png),
                          "--out", str(tmp_path / "w.png")], capsys)
    assert rc == 0, err
    assert "note: the style encoder is not in the checkpoint" in err and "scripts/train_encoder.py" in err
    assert Image.open(tmp_path / "w.png").size == (56, 28)


# ------------------------------------------------------------------------------- bad inputs
def _bad_images(root: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:240, 0:320]
    photo = np.stack([127 + 60 * np.sin(xx / 20) + 50 * np.cos(yy / 15), 90 + 80 * np.sin(yy / 9),
                      128 + 100 * np.cos((xx + yy) / 31)], -1).clip(0, 255).astype(np.uint8)
    images = {"blank": np.full((200, 200), 255, np.uint8), "one_pixel": np.zeros((1, 1), np.uint8),
              "noise": rng.integers(0, 256, (64, 64), dtype=np.uint8), "photo": photo,
              "rgb_noise": rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)}
    paths = {}
    for name, a in images.items():
        paths[name] = root / f"{name}.png"
        Image.fromarray(a).save(paths[name])
    paths["blank_drawing"] = root / "blank_drawing.png"
    Image.new("RGBA", (300, 300), (0, 0, 0, 0)).save(paths["blank_drawing"])  # an untouched sketchpad
    (root / "not_an_image.png").write_text("hello")
    paths["not_an_image"] = root / "not_an_image.png"
    return paths


BAD_IMAGES = [("blank", "blank"), ("blank_drawing", "blank"), ("one_pixel", "blank"), ("noise", "photo"),
              ("photo", "photo"), ("rgb_noise", "photo"), ("not_an_image", "not an image")]


@pytest.mark.parametrize("name, words", BAD_IMAGES)
def test_bad_style_images_are_refused(tmp_path: Path, pretrained, name: str, words: str,
                                      capsys: pytest.CaptureFixture) -> None:
    path = _bad_images(tmp_path)[name]
    with pytest.raises(StyleError, match=words):
        transfer(pretrained.model, pretrained.encoder, path)
    for argv in (["sample", "--style-from", str(path), "--out", str(tmp_path / "x.npz")],
                 ["write", "--text", "12", "--style-from", str(path), "--out", str(tmp_path / "x.png")]):
        rc, _, err = run_cli(argv, capsys)
        assert rc == 2 and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and words in err, err


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels, with a token of data: a decompression bomb's shape."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_huge_upload_is_refused_before_decoding(tmp_path: Path, pretrained, capsys: pytest.CaptureFixture) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header_only(30_000, 30_000))  # 900 MP claimed in 100 bytes
    with pytest.raises(StyleError, match="too large"):
        transfer(pretrained.model, pretrained.encoder, bomb)
    with pytest.raises(StyleError, match="too large"):
        transfer(pretrained.model, pretrained.encoder, bomb.read_bytes())
    rc, _, err = run_cli(["write", "--text", "1", "--style-from", str(bomb), "--out", str(tmp_path / "x.png")], capsys)
    assert rc == 2 and err.startswith("error: ") and "too large" in err


def test_real_digits_and_drawings_are_accepted(digits) -> None:
    x, _ = digits
    big = Image.fromarray(x[5].numpy()).resize((400, 400), Image.Resampling.BICUBIC)
    assert source_digit(big).shape == (28, 28)
    drawing = Image.new("RGBA", (300, 300), (0, 0, 0, 0))  # dark strokes on a transparent canvas
    from PIL import ImageDraw

    ImageDraw.Draw(drawing).line([(80, 60), (220, 60), (120, 260)], fill=(20, 20, 20, 255), width=18)
    assert source_digit(drawing).max() == 255
    assert source_digit({"background": None, "layers": [drawing], "composite": None}).shape == (28, 28)


@pytest.mark.parametrize("text, words", [("20a6", "only the digits"), ("", "nothing to write"), ("   ", "nothing to write"),
                                         ("1" * 40, "at most 16"), ("2026-12-31", "only the digits"), (None, "text")])
def test_bad_text_is_refused(tmp_path: Path, pretrained, text, words: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(StyleError, match=words):
        write_number(pretrained.model, pretrained.encoder, text)
    if text is not None:
        rc, _, err = run_cli(["write", "--text", text, "--out", str(tmp_path / "x.png")], capsys)
        assert rc == 2 and err.startswith("error: ") and words in err and len(err.strip().splitlines()) == 1, err


def test_other_bad_arguments_are_refused(tmp_path: Path, pretrained, digit_png: Path, small: GANCLS,
                                         capsys: pytest.CaptureFixture) -> None:
    model, enc = pretrained.model, pretrained.encoder
    with pytest.raises(StyleError, match="not both"):
        write_number(model, enc, "12", style_image=digit_png, seed=1)
    with pytest.raises(StyleError, match="no style encoder"):
        write_number(model, None, "12", style_image=digit_png)
    with pytest.raises(UserError, match="seed"):
        write_number(model, None, "12", seed=-1)
    with pytest.raises(UserError, match="label"):
        transfer(model, enc, digit_png, [3, 11])
    with pytest.raises(StyleError, match="noise dimensions"):
        transfer(model, StyleEncoder(EncoderConfig(noise_dim=5)), digit_png)
    cases = [(["write", "--text", "12", "--out", str(tmp_path / "x.jpg")], ".png"),
             (["sample", "--style-from", str(digit_png), "--per-label", "3", "--out", str(tmp_path / "x.npz")], "one digit per label"),
             (["sample", "--style-from", str(tmp_path / "missing.png"), "--out", str(tmp_path / "x.npz")], "no such image"),
             (["sample", "--style-from", str(digit_png), "--labels", "1,12", "--out", str(tmp_path / "x.npz")], "label 12")]
    for argv, words in cases:
        rc, _, err = run_cli(argv, capsys)
        assert rc == 2 and err.startswith("error: ") and words in err, (argv, err)
    rc, _, err = run_cli(["write", "--text", "1", "--seed", "1", "--style-from", str(digit_png), "--out", "x.png"], capsys)
    assert rc == 2 and "not allowed with" in err  # argparse: the two style sources exclude each other
