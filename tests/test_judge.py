"""The shipped judge and the sample-quality metrics, on real MNIST test digits (full set or embedded subset)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gancls.evaluate import EvaluationError, evaluate_samples, frechet_distance, mismatch_auc, rank_auc
from gancls.judge import Judge, JudgeError, default_judge_path, judge_predict, load_judge, save_judge


@pytest.fixture(scope="module")
def test_digits(mnist) -> tuple[torch.Tensor, torch.Tensor]:
    """The first 2,000 MNIST test digits (all 1,000 of the embedded subset): uint8 [N, 28, 28], int64 [N]."""
    return mnist.data.test_images[:2000], mnist.data.test_labels[:2000]


def halves(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Even-indexed digits as the samples, odd-indexed as the reference: two disjoint, similar halves."""
    return images[0::2], labels[0::2], images[1::2], labels[1::2]


@pytest.fixture(scope="module")
def judge() -> Judge:
    torch.set_num_threads(2)
    return load_judge()


def test_shipped_judge_is_small_described_and_accurate(judge, test_digits):
    path = default_judge_path()
    assert path.stat().st_size <= 2_000_000
    info = json.loads(path.with_name("judge.json").read_text())
    assert info["test_accuracy"] >= 0.992
    assert {"architecture", "training_command", "seed", "epochs", "date", "reference_values"} <= info.keys()

    images, labels = test_digits
    n = len(labels)
    out = judge_predict(judge, images, batch_size=512)
    assert out.probs.shape == (n, 10) and out.features.shape == (n, judge.feature_dim)
    assert torch.allclose(out.probs.sum(1), torch.ones(n), atol=1e-5)
    # 0.992 on all 10,000; a 1,000-digit draw may hold a few more of the hard ones.
    assert (out.predictions == labels).float().mean().item() >= 0.985


def test_loading_never_unpickles(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("torch.load must not be used")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr("pickle.load", refuse)
    monkeypatch.setattr("pickle.loads", refuse)
    assert not load_judge().training


def test_save_load_round_trip_and_bad_files(tmp_path):
    torch.manual_seed(0)
    original = Judge(width=8, hidden=16).eval()
    path = save_judge(original, tmp_path / "j.safetensors")
    loaded = load_judge(path)
    x = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    assert torch.equal(judge_predict(original, x).probs, judge_predict(loaded, x).probs)

    with pytest.raises(JudgeError, match="not found"):
        load_judge(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(JudgeError, match="junk.safetensors"):
        load_judge(tmp_path / "junk.safetensors")


def test_judge_rejects_images_of_the_wrong_kind(judge):
    with pytest.raises(JudgeError, match="uint8"):
        judge_predict(judge, torch.rand(3, 28, 28))
    with pytest.raises(JudgeError, match="shape"):
        judge_predict(judge, torch.zeros(3, 32, 32, dtype=torch.uint8))


def test_real_digits_score_as_real(judge, test_digits):
    images, labels, ref_images, ref_labels = halves(*test_digits)
    m = evaluate_samples(images, labels, judge, ref_images, ref_labels)
    json.dumps(m)  # must be JSON-able as it stands
    assert m["n"] == len(labels)
    assert m["label_accuracy"] >= 0.98
    assert m["judge_confidence"] >= 0.95
    assert all(a is not None and a >= 0.95 for a in m["label_accuracy_per_label"])
    assert 0.8 <= m["diversity"] <= 1.25
    assert m["frechet_distance"] < 5.0


def test_shuffled_labels_are_caught(judge, test_digits):
    images, labels, ref_images, ref_labels = halves(*test_digits)
    shuffled = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(1))]
    m = evaluate_samples(images, shuffled, judge, ref_images, ref_labels)
    assert m["label_accuracy"] < 0.2
    assert m["judge_confidence"] < 0.2


def test_collapsed_samples_have_no_diversity_and_a_large_distance(judge, test_digits):
    images, labels, ref_images, ref_labels = halves(*test_digits)
    real = evaluate_samples(images, labels, judge, ref_images, ref_labels)
    # One real image per digit, repeated 30 times: perfectly legible, no variety at all.
    firsts = torch.stack([images[labels == d][0] for d in range(10)])  # [10, 28, 28]
    collapsed = firsts.repeat_interleave(30, dim=0)  # [300, 28, 28]
    collapsed_labels = torch.arange(10).repeat_interleave(30)
    m = evaluate_samples(collapsed, collapsed_labels, judge, ref_images, ref_labels)
    assert m["label_accuracy"] == 1.0
    assert m["diversity"] < 0.1
    assert m["frechet_distance"] > 10 * real["frechet_distance"]


def test_small_and_partial_sample_sets_are_handled(judge, test_digits):
    images, labels, ref_images, ref_labels = halves(*test_digits)
    m = evaluate_samples(images[:1], labels[:1], judge, ref_images, ref_labels)
    assert m["n"] == 1 and m["diversity"] is None and m["frechet_distance"] > 0
    assert sum(a is not None for a in m["label_accuracy_per_label"]) == 1
    with pytest.raises(EvaluationError, match="labels"):
        evaluate_samples(images[:10], labels[:9], judge, ref_images, ref_labels)
    with pytest.raises(EvaluationError, match="0–9"):
        evaluate_samples(images[:2], torch.tensor([3, 10]), judge, ref_images, ref_labels)


def test_frechet_distance_matches_the_closed_form_for_diagonal_gaussians():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 3, generator=g, dtype=torch.float64)
    b = torch.randn(20000, 3, generator=g, dtype=torch.float64) * 2 + 1
    # Exact value for N(0, I) vs N(1, 4I) in 3-D: 3·1² + 3·(1 + 4 − 2·2) = 6.
    assert frechet_distance(a, b) == pytest.approx(6.0, rel=0.05)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # Fewer samples than dimensions leaves singular covariances; the distance must stay finite.
    small = frechet_distance(a[:2], b[:2])
    assert 0.0 <= small < float("inf")


def test_rank_auc_counts_ties_half():
    assert rank_auc(torch.tensor([3.0, 4.0]), torch.tensor([1.0, 2.0])) == 1.0
    assert rank_auc(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])) == 0.0
    # Pairs: (2>1)=1, (2=2)=½, (1=1)=½, (1<2)=0 → 2/4.
    assert rank_auc(torch.tensor([2.0, 1.0]), torch.tensor([1.0, 2.0])) == 0.5


def test_mismatch_auc_of_perfect_random_and_constant_scores(test_digits):
    images, labels = test_digits
    true_labels = dict(zip(map(bytes, images.flatten(1).numpy()), labels.tolist()))

    def oracle(x: torch.Tensor, lab: torch.Tensor) -> torch.Tensor:
        truth = torch.tensor([true_labels[bytes(row)] for row in x.flatten(1).numpy()])
        return (truth == lab).float()

    g = torch.Generator().manual_seed(0)
    assert mismatch_auc(oracle, images, labels, torch.Generator().manual_seed(0), batch_size=300) == 1.0
    random_auc = mismatch_auc(lambda x, lab: torch.rand(len(lab), generator=g), images, labels, g)
    assert abs(random_auc - 0.5) < 0.05
    assert mismatch_auc(lambda x, lab: torch.zeros(len(lab)), images, labels, g) == 0.5


def test_mismatch_auc_draws_every_wrong_label_and_never_the_right_one(test_digits):
    images, labels = test_digits
    seen: list[torch.Tensor] = []

    def record(x: torch.Tensor, lab: torch.Tensor) -> torch.Tensor:
        seen.append(lab.clone())
        return torch.zeros(len(lab))

    mismatch_auc(record, images, labels, torch.Generator().manual_seed(0), batch_size=len(labels))
    right, wrong = seen
    assert torch.equal(right, labels)
    assert not (wrong == labels).any()
    offsets = (wrong - labels) % 10
    counts = torch.bincount(offsets, minlength=10)
    assert counts[0] == 0 and counts[1:].min() > 0.7 * len(labels) / 9  # ≈ n/9 each (222 of 2,000)

    with pytest.raises(EvaluationError, match="one score per image"):
        mismatch_auc(lambda x, lab: torch.zeros(3), images, labels, torch.Generator().manual_seed(0))


@pytest.mark.slow  # the script end to end: all of MNIST read, a judge trained
def test_training_script_smoke_run_learns_and_writes_nothing(mnist, tmp_path, capsys):
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "scripts" / "train_judge.py"
    spec = importlib.util.spec_from_file_location("train_judge", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    acc = module.main(["--data-dir", str(mnist.root), "--out", str(tmp_path), "--dry-run", "--threads", "2"])
    assert acc > 0.5  # 16 steps on 2,000 digits already beat chance by far
    assert "epoch 1/1" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []
