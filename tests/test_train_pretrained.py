"""scripts/train_pretrained.py's choices: replay frames dense early, metrics thinned, the kept step by the targets."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def script():
    path = Path(__file__).resolve().parents[1] / "scripts" / "train_pretrained.py"
    spec = importlib.util.spec_from_file_location("train_pretrained", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_frames_start_at_zero_and_are_dense_early(script) -> None:
    steps = script.frame_steps(6000, 130)
    assert steps[0] == 0 and steps[-1] == 6000 and steps == sorted(set(steps))
    assert 100 <= len(steps) <= 131
    assert sum(s <= 500 for s in steps) > len(steps) / 2  # digits form in the first few hundred steps


def test_metrics_are_thinned_to_the_cap_keeping_both_ends(script) -> None:
    history = [{"step": i} for i in range(10_001)]
    thin = script.thin_metrics(history, 500)
    assert len(thin) <= 500 and thin[0] == history[0] and thin[-1] == history[-1]
    assert [h["step"] for h in thin] == sorted(h["step"] for h in thin)
    assert script.thin_metrics(history[:10], 500) == history[:10]


def test_shortfall_is_zero_only_when_every_target_is_met(script) -> None:
    ok = {"label_accuracy": 0.996, "diversity": 0.93, "nn_diversity": 0.86}
    assert script.shortfall(ok) == 0
    assert script.shortfall({**ok, "nn_diversity": 0.80}) == pytest.approx(0.05)
    assert script.shortfall({**ok, "diversity": None}) == pytest.approx(0.92)


def test_kept_step_prefers_targets_then_accurate_and_diverse(script) -> None:
    met = {"label_accuracy": 0.999, "diversity": 0.93, "nn_diversity": 0.86}
    accurate = {"label_accuracy": 0.999, "diversity": 0.88, "nn_diversity": 0.82}
    diverse_but_wrong = {"label_accuracy": 0.97, "diversity": 0.95, "nn_diversity": 0.95}
    assert script.rank(met) > script.rank(accurate) > script.rank(diverse_but_wrong)
    assert script.rank({**accurate, "nn_diversity": 0.83}) > script.rank(accurate)
    # Among states that meet every target, the one furthest inside all of them: a state just over one line
    # loses to one with room on every figure, however high its other figures are.
    just_over = {"label_accuracy": 0.998, "diversity": 0.9219, "nn_diversity": 0.898}
    with_room = {"label_accuracy": 0.999, "diversity": 0.932, "nn_diversity": 0.881}
    assert script.rank(with_room) > script.rank(just_over) > script.rank(accurate)


def test_frames_thin_by_a_third_keeping_both_ends(script) -> None:
    frames = [(s, None) for s in range(130)]
    thin = script.thin_frames(frames)
    assert thin[0] == frames[0] and thin[-1] == frames[-1]
    assert 85 <= len(thin) <= 88 and [s for s, _ in thin] == sorted(s for s, _ in thin)
    assert script.thin_frames(frames[:2]) == frames[:2]
