"""Sample-quality metrics read through the judge, and the discriminator's mismatch AUC."""

from __future__ import annotations

import math
from typing import Callable

import torch

from gancls.errors import UserError
from gancls.judge import Judge, JudgeError, JudgeOutput, images_to_float, judge_predict

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


EvaluationError = UserError  # bad input to a metric: mismatched lengths, labels outside 0–9, wrong shapes


def _check_labels(labels: torch.Tensor, n: int, what: str) -> torch.Tensor:
    """Labels as int64 [n] on CPU, or a clear error."""
    if not isinstance(labels, torch.Tensor) or labels.dtype.is_floating_point or labels.dim() != 1:
        raise EvaluationError(f"{what} labels must be a 1-D integer tensor.")
    if labels.shape[0] != n:
        raise EvaluationError(f"{what}: {n} images but {labels.shape[0]} labels.")
    if n and (labels.min() < 0 or labels.max() > 9):
        raise EvaluationError(f"{what} labels must lie in 0–9.")
    return labels.long().cpu()


def _check_images(images_u8: torch.Tensor, what: str) -> None:
    """Raise EvaluationError unless images are uint8 [N, 28, 28]."""
    try:
        images_to_float(images_u8[:0] if isinstance(images_u8, torch.Tensor) else images_u8)
    except JudgeError as err:
        raise EvaluationError(f"{what}: {err}") from None


def frechet_distance(feats_a: torch.Tensor, feats_b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to features [Na, F] and [Nb, F] (the FID formula)."""
    a, b = feats_a.double(), feats_b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)  # [F]
    cov_a, cov_b = _cov(a), _cov(b)  # [F, F]
    # tr sqrt(Ca Cb) = Σ sqrt(eig(sqrt(Ca) Cb sqrt(Ca))): the inner matrix is symmetric PSD, so
    # eigh is stable even when N < F makes the covariances singular (no inverse, no scipy).
    sqrt_a = _psd_sqrt(cov_a)
    inner = sqrt_a @ cov_b @ sqrt_a
    tr_covmean = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp(min=0).sqrt().sum()
    fd = (mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * tr_covmean
    return max(fd.item(), 0.0)  # rounding can leave a tiny negative for identical sets


def _cov(x: torch.Tensor) -> torch.Tensor:
    """Unbiased covariance of rows x [N, F]; zero for a single row (a point has no spread)."""
    if x.shape[0] < 2:
        return torch.zeros(x.shape[1], x.shape[1], dtype=x.dtype)
    return torch.cov(x.T)


def _psd_sqrt(m: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a positive semi-definite matrix [F, F]."""
    vals, vecs = torch.linalg.eigh((m + m.T) / 2)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def _spread(feats: torch.Tensor) -> float:
    """sqrt(trace(covariance)) of features [N, F]: the RMS distance to the centroid, Bessel-corrected."""
    return feats.double().var(dim=0, unbiased=True).sum().sqrt().item()


def _none_if_nan(v: float) -> float | None:
    """NaN becomes None so the result stays valid JSON."""
    return None if math.isnan(v) else v


@torch.no_grad()
def evaluate_samples(
    images_u8: torch.Tensor,
    labels: torch.Tensor,
    judge: Judge,
    real_images_u8: torch.Tensor,
    real_labels: torch.Tensor,
) -> dict:
    """Judge-based quality metrics of conditioned samples against real digits, as a JSON-able dict.

    Keys:
      n                        number of samples.
      label_accuracy           share of samples the judge reads as their conditioning label.
      label_accuracy_per_label 10 entries; None where a label has no samples.
      judge_confidence         mean probability the judge gives the conditioning label.
      judge_max_prob           mean of the judge's top probability, whatever the label (how clearly
                               the sample looks like *some* digit).
      frechet_distance         FID-style distance between the judge's penultimate features of the
                               samples and of the real images (0 = same Gaussian statistics);
                               it ignores the labels, so it measures realism, not conditioning.
      diversity                mean over labels of spread(samples) / spread(real), where spread is
                               sqrt(trace(covariance)) of the features of that label's digits;
                               1 = as varied as real digits, near 0 = mode collapse, well above
                               1 = the label is ignored (digits of several kinds mixed). Labels with
                               fewer than 2 samples or 2 real digits are skipped; None if all are.
      diversity_per_label      10 entries of that ratio, None where skipped.
      nn_diversity             mean over labels of the mean distance from each sample to its nearest
                               other sample of that label ÷ the same for real digits, at equal group
                               sizes (see nearest_neighbour_diversity); None if every label is skipped.
      nn_diversity_per_label   10 entries of that ratio, None where skipped.
    """
    _check_images(images_u8, "samples")
    _check_images(real_images_u8, "real images")
    labels = _check_labels(labels, images_u8.shape[0], "samples")
    real_labels = _check_labels(real_labels, real_images_u8.shape[0], "real images")
    if images_u8.shape[0] == 0 or real_images_u8.shape[0] == 0:
        raise EvaluationError("Need at least one sample and one real image to evaluate.")

    fake: JudgeOutput = judge_predict(judge, images_u8)
    real: JudgeOutput = judge_predict(judge, real_images_u8)
    correct = (fake.predictions == labels).float()  # [N]

    acc_per_label: list[float | None] = []
    div_per_label: list[float | None] = []
    for digit in range(10):
        mask, real_mask = labels == digit, real_labels == digit
        acc_per_label.append(correct[mask].mean().item() if mask.any() else None)
        if mask.sum() >= 2 and real_mask.sum() >= 2:
            real_spread = _spread(real.features[real_mask])
            div_per_label.append(_spread(fake.features[mask]) / real_spread if real_spread > 0 else None)
        else:
            div_per_label.append(None)
    ratios = [r for r in div_per_label if r is not None]
    nn_per_label = _nn_diversity_per_label(fake.features, labels, real.features, real_labels)
    nn_ratios = [r for r in nn_per_label if r is not None]

    return {
        "n": int(images_u8.shape[0]),
        "label_accuracy": correct.mean().item(),
        "label_accuracy_per_label": acc_per_label,
        "judge_confidence": fake.probs.gather(1, labels[:, None]).mean().item(),
        "judge_max_prob": fake.probs.max(dim=1).values.mean().item(),
        "frechet_distance": _none_if_nan(frechet_distance(fake.features, real.features)),
        "diversity": sum(ratios) / len(ratios) if ratios else None,
        "diversity_per_label": div_per_label,
        "nn_diversity": sum(nn_ratios) / len(nn_ratios) if nn_ratios else None,
        "nn_diversity_per_label": nn_per_label,
    }


def rank_auc(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> float:
    """Mann–Whitney AUC: P(positive scores above negative), ties counted half."""
    scores = torch.cat([pos_scores, neg_scores]).double()  # [P + Q]
    uniq, inverse, counts = torch.unique(scores, sorted=True, return_inverse=True, return_counts=True)
    # A run of tied values shares the average of the 1-based ranks it spans.
    avg_rank = counts.cumsum(0).double() - (counts.double() - 1) / 2  # [U]
    ranks = avg_rank[inverse]  # [P + Q]
    n_pos, n_neg = pos_scores.numel(), neg_scores.numel()
    u = ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2
    return (u / (n_pos * n_neg)).item()


@torch.no_grad()
def mismatch_auc(
    score_fn: ScoreFn,
    images_u8: torch.Tensor,
    labels: torch.Tensor,
    generator: torch.Generator,
    batch_size: int = 1000,
) -> float:
    """AUC of score_fn separating (real image, its label) from (same image, a uniformly drawn wrong label).

    score_fn(images_u8 [B, 28, 28], labels [B]) -> scores [B]; higher should mean "matches".
    Wrong labels come from `generator` (a CPU generator) so the result is reproducible.
    """
    _check_images(images_u8, "images")
    n = images_u8.shape[0]
    labels_cpu = _check_labels(labels, n, "images")
    if n == 0:
        raise EvaluationError("mismatch_auc needs at least one image.")
    # Adding 1–9 modulo 10 gives each of the nine other labels with equal chance.
    offsets = torch.randint(1, 10, (n,), generator=generator)
    wrong = ((labels_cpu + offsets) % 10).to(labels.device)  # [N]

    def scores(lab: torch.Tensor) -> torch.Tensor:
        out = []
        for start in range(0, n, batch_size):
            s = score_fn(images_u8[start : start + batch_size], lab[start : start + batch_size])
            b = min(batch_size, n - start)
            if not isinstance(s, torch.Tensor) or s.numel() != b:
                raise EvaluationError(f"score_fn must return one score per image ({b}), got {getattr(s, 'shape', s)}.")
            out.append(s.detach().reshape(-1).double().cpu())
        s = torch.cat(out)  # [N]
        if not torch.isfinite(s).all():
            raise EvaluationError("score_fn returned NaN or infinite scores.")
        return s

    return rank_auc(scores(labels), scores(wrong))


@torch.no_grad()
def reference_values(judge: Judge, data_test_images: torch.Tensor, data_test_labels: torch.Tensor) -> dict:
    """Metric values for real test digits (even-index half against odd-index half), and with shuffled labels.

    These are the yardsticks for generated samples: "real" is the best a generator can hope for,
    "shuffled_labels" is what ignoring the condition looks like.
    """
    _check_images(data_test_images, "test images")
    labels = _check_labels(data_test_labels, data_test_images.shape[0], "test images")
    if data_test_images.shape[0] < 4:
        raise EvaluationError("reference_values needs at least 4 test digits.")
    # Interleaved halves, because MNIST's test file is ordered by writer group (cleaner digits first).
    a_x, a_y = data_test_images[0::2], labels[0::2]
    b_x, b_y = data_test_images[1::2], labels[1::2]
    shuffled = a_y[torch.randperm(a_y.shape[0], generator=torch.Generator().manual_seed(0))]
    full = judge_predict(judge, data_test_images)
    return {
        "judge_test_accuracy": (full.predictions == labels).float().mean().item(),
        "n_test": int(data_test_images.shape[0]),
        "split": "samples = even-index test digits, real = odd-index test digits",
        "real": evaluate_samples(a_x, a_y, judge, b_x, b_y),
        "shuffled_labels": evaluate_samples(a_x, shuffled, judge, b_x, b_y),
    }


def _mean_nn_distance(feats: torch.Tensor, k: int) -> float:
    """Mean distance from each row to its nearest other row, within disjoint groups of k rows [N, F].

    Nearest-neighbour distances shrink as a set grows, so samples and real digits are compared at
    the same group size k; groups come from a fixed shuffle (MNIST's files are ordered by writer).
    """
    order = torch.randperm(feats.shape[0], generator=torch.Generator().manual_seed(0))
    x = feats.double()[order]
    means = []
    for start in range(0, x.shape[0] - k + 1, k):
        d = torch.cdist(x[start : start + k], x[start : start + k])  # [k, k]
        d.fill_diagonal_(float("inf"))
        means.append(d.min(dim=1).values.mean().item())
    return sum(means) / len(means)


def _nn_diversity_per_label(
    fake_feats: torch.Tensor, labels: torch.Tensor, real_feats: torch.Tensor, real_labels: torch.Tensor
) -> list[float | None]:
    """Per label: mean nearest-neighbour distance among samples ÷ the same among real digits (equal group sizes)."""
    out: list[float | None] = []
    for digit in range(10):
        f, r = fake_feats[labels == digit], real_feats[real_labels == digit]
        k = min(f.shape[0], r.shape[0])
        if k < 2:
            out.append(None)
            continue
        real_nn = _mean_nn_distance(r, k)
        out.append(_mean_nn_distance(f, k) / real_nn if real_nn > 0 else None)
    return out


@torch.no_grad()
def nearest_neighbour_diversity(
    images_u8: torch.Tensor,
    labels: torch.Tensor,
    judge: Judge,
    real_images_u8: torch.Tensor,
    real_labels: torch.Tensor,
) -> float:
    """Mean over labels of (mean judge-feature distance from each sample to its nearest other sample of
    that label) ÷ (the same for real digits of that label).

    1 = samples sit as far apart as real digits do; near 0 = near-duplicates (memorised or collapsed
    modes), which the covariance-based `diversity` can miss. Both sides are measured in groups of
    the same size k = min(#samples, #real) per label, averaged over the disjoint groups that fit.
    Labels with fewer than 2 samples or 2 real digits are skipped; EvaluationError if all are.
    """
    _check_images(images_u8, "samples")
    _check_images(real_images_u8, "real images")
    labels = _check_labels(labels, images_u8.shape[0], "samples")
    real_labels = _check_labels(real_labels, real_images_u8.shape[0], "real images")
    fake = judge_predict(judge, images_u8).features
    real = judge_predict(judge, real_images_u8).features
    ratios = [r for r in _nn_diversity_per_label(fake, labels, real, real_labels) if r is not None]
    if not ratios:
        raise EvaluationError("nearest_neighbour_diversity needs at least 2 samples and 2 real digits of some label.")
    return sum(ratios) / len(ratios)
