"""Nearest-neighbour diversity: samples that sit closer together than real digits do score below 1."""

from __future__ import annotations

import pytest
import torch

from gancls.evaluate import EvaluationError, evaluate_samples, nearest_neighbour_diversity
from gancls.judge import load_judge


@pytest.fixture(scope="module")
def judge():
    return load_judge()


@pytest.fixture(scope="module")
def digits(mnist) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to 2,000 test digits (the embedded subset has 1,000)."""
    return mnist.data.test_images[:2000], mnist.data.test_labels[:2000]


def test_real_digits_against_real_digits_score_about_one(judge, digits):
    images, labels = digits
    nn = nearest_neighbour_diversity(images[0::2], labels[0::2], judge, images[1::2], labels[1::2])
    assert 0.85 < nn < 1.15


def test_fewer_samples_than_real_digits_are_compared_at_the_same_group_size(judge, digits):
    # 10 real digits per label as "samples" against every other real digit: nearest neighbours among
    # 10 are farther apart than among 50-100, so a ratio taken at unequal sizes reads about 1.27.
    images, labels = digits
    a_x, a_y = images[0::2], labels[0::2]
    keep = torch.cat([torch.nonzero(a_y == d).flatten()[:10] for d in range(10)])
    nn = nearest_neighbour_diversity(a_x[keep], a_y[keep], judge, images[1::2], labels[1::2])
    assert 0.85 < nn < 1.15


def test_duplicated_samples_score_near_zero_where_covariance_diversity_does_not(judge, digits):
    images, labels = digits
    a_x, a_y = images[0::2], labels[0::2]
    # Each of 20 real digits per label, twice: the spread is real-like, but every sample has a twin.
    keep = torch.cat([torch.nonzero(a_y == d).flatten()[:20] for d in range(10)])
    twins_x, twins_y = a_x[keep].repeat(2, 1, 1), a_y[keep].repeat(2)
    m = evaluate_samples(twins_x, twins_y, judge, images[1::2], labels[1::2])
    assert m["diversity"] > 0.7
    assert m["nn_diversity"] < 0.05
    assert m["nn_diversity"] == pytest.approx(
        nearest_neighbour_diversity(twins_x, twins_y, judge, images[1::2], labels[1::2]))
    assert len(m["nn_diversity_per_label"]) == 10


def test_labels_without_two_samples_are_skipped(judge, digits):
    images, labels = digits
    only_sevens = torch.nonzero(labels == 7).flatten()[:30]
    m = evaluate_samples(images[only_sevens], labels[only_sevens], judge, images[:500], labels[:500])
    assert [v is not None for v in m["nn_diversity_per_label"]] == [d == 7 for d in range(10)]
    with pytest.raises(EvaluationError, match="at least 2 samples"):
        nearest_neighbour_diversity(images[:1], labels[:1], judge, images, labels)


def test_bad_input_gets_a_clear_error(judge, digits):
    images, labels = digits
    with pytest.raises(EvaluationError, match="labels"):
        nearest_neighbour_diversity(images[:10], labels[:9], judge, images, labels)
    with pytest.raises(EvaluationError, match="uint8"):
        nearest_neighbour_diversity(images[:10].float(), labels[:10], judge, images, labels)
