"""The teaching views on a tiny model: D's match matrix, style versus label, timeline export, the ablation."""

from __future__ import annotations

import csv
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from gancls import draw, teach
from gancls.config import Budget, model_preset, train_preset
from gancls.data import load_embedded
from gancls.errors import UserError
from gancls.judge import default_judge_path
from gancls.models import GANCLS
from gancls.probe import match_scores
from gancls.sampling import sample
from gancls.train import Finished, Metrics, Started, Trainer


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # The test machine's two cores are shared; one thread per process wastes least on contention.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data():
    return load_embedded()  # 10,000 / 1,000 real MNIST digits shipped in the repo


@pytest.fixture(scope="module")
def trained(data) -> Trainer:
    """The "small" preset after 200 GAN-CLS steps (about 4 s idle): enough for D to read labels (a
    diagonal-minus-rest gap of 0.11 against the 0.05 asked; 0.05 after 150 steps, 0.25 after 300)."""
    cfg = train_preset("small", metrics_every=20, metrics_seconds=1e9, sample_seconds=0.0, autosave_seconds=0, seed=0)
    t = Trainer(model_preset("small"), cfg, data, device="cpu")
    assert list(t.run(Budget(steps=200)))[-1].reason == "steps"
    return t


# ------------------------------------------------------------------ D's view
def test_match_matrix_lights_up_the_diagonal(trained, data):
    m = teach.match_matrix(trained.model, data.test_images, data.test_labels, per_class=50)
    assert m.shape == (10, 10) and m.dtype == np.float32
    assert ((m >= 0) & (m <= 1)).all()
    s = teach.matrix_summary(m)
    assert s["diagonal_mean"] > s["off_diagonal_mean"] + 0.05, s
    # Rows are true digits, columns the label D is told: check one off-diagonal cell by hand.
    fours = data.test_images[data.test_labels == 4][:50]
    assert m[4, 9] == pytest.approx(match_scores(trained.model, fours, [9]).mean().item(), abs=1e-5)
    acc = teach.d_classifier_accuracy(trained.model, data.test_images, data.test_labels)
    assert 0.3 < acc <= 1.0  # chance is 0.1


def test_untrained_d_does_not_read_labels(data):
    torch.manual_seed(0)
    m = teach.match_matrix(GANCLS(model_preset("small")), data.test_images, data.test_labels, per_class=20)
    assert abs(teach.matrix_summary(m)["gap"]) < 0.02


def test_cell_examples_are_the_cells_digits_best_first(trained, data):
    ex = teach.cell_examples(trained.model, data.test_images, data.test_labels, i=4, j=9, k=6, per_class=50)
    assert ex.images.shape == (6, 28, 28) and ex.images.dtype == np.uint8
    assert (data.test_labels[ex.indices] == 4).all()
    assert np.all(np.diff(ex.scores) <= 0)  # highest first
    again = match_scores(trained.model, ex.images, [9]).numpy()
    np.testing.assert_allclose(ex.scores, again, atol=1e-5)
    low = teach.cell_examples(trained.model, data.test_images, data.test_labels, 4, 9, k=6, per_class=50,
                              order="lowest")
    assert low.scores.max() <= ex.scores.min()


def test_heatmap_colours_low_and_high_cells_differently():
    m = np.zeros((10, 10))
    m[3, 3] = 1.0
    img = draw.heatmap_image(m, cell=40)
    assert img.mode == "RGB" and img.width > 400 and img.height > 400
    left, top = 40 + 24, 40  # the layout without a title
    high = img.getpixel((left + 3 * 40 + 2, top + 3 * 40 + 2))
    low = img.getpixel((left + 2, top + 2))
    assert high[0] > 200 and high[1] > 200 and high[2] < 100  # yellow
    assert low[2] > low[1] and sum(low) < 250  # dark purple
    with pytest.raises(UserError, match="square"):
        draw.heatmap_image(np.zeros((3, 4)))
    with pytest.raises(UserError, match="finite"):
        draw.heatmap_image(np.full((2, 2), np.nan))


# ------------------------------------------------------------ style vs label
def test_style_grid_rows_keep_style_columns_change_label():
    # The shipped pretrained G (the 200-step fixture's digits are too rough for the judge to read).
    from pathlib import Path

    from gancls.checkpoint import load_checkpoint
    from gancls.judge import judge_predict, load_judge

    model = load_checkpoint(Path(__file__).resolve().parents[1] / "checkpoints" / "pretrained").model
    judge, labels = load_judge(), list(range(10))

    def read_as_labels(grid: np.ndarray) -> float:
        """Share of cells the judge reads as their column's label."""
        pred = judge_predict(judge, torch.from_numpy(grid.reshape(-1, 28, 28).copy())).predictions
        return (pred.view(grid.shape[:2]) == torch.tensor(labels)).float().mean().item()

    def ink_by_row(grid: np.ndarray) -> tuple[float, float]:
        """(spread of the rows' mean ink / mean ink, share of ink variance the row explains once labels are removed)."""
        ink = grid.reshape(*grid.shape[:2], -1).astype(np.float64).sum(-1)  # [rows, labels]
        residual = ink - ink.mean(0, keepdims=True)  # each label's own amount of ink removed
        explained = (residual.mean(1) ** 2).sum() * grid.shape[1] / (residual ** 2).sum()
        return float(ink.mean(1).std() / ink.mean()), float(explained)

    g = teach.style_grid(model, 8, labels, seed=11)
    assert g.shape == (8, 10, 28, 28) and g.dtype == np.uint8
    assert read_as_labels(g) >= 0.9  # columns change label: the judge reads each column as its digit (1.0 seen)
    spread, explained = ink_by_row(g)
    # Rows keep style: the noise sets stroke weight, so a row's digits are all heavy or all light
    # (spread 0.3 and share 0.75 seen), and rows differ from each other.
    assert spread >= 0.1 and explained >= 0.5, (spread, explained)
    for c in range(10):  # one label, eight noise vectors
        assert len({g[r, c].tobytes() for r in range(8)}) == 8
    np.testing.assert_array_equal(g, teach.style_grid(model, 8, labels, seed=11))
    assert not np.array_equal(g, teach.style_grid(model, 8, labels, seed=12))
    assert draw.tile(g).shape == (8 * 30 + 2, 10 * 30 + 2)

    # The checks can fail: an untrained G's grid reads as no label, and its noise changes nothing visible.
    torch.manual_seed(0)
    untrained = teach.style_grid(GANCLS(model.cfg), 8, labels, seed=11)
    assert read_as_labels(untrained) < 0.5 and ink_by_row(untrained)[0] < 0.1


def test_label_interpolation_ends_are_the_plain_samples(trained):
    model = trained.model
    strip = teach.label_interpolation(model, 3, 8, steps=7, seed=5)
    assert strip.shape == (7, 28, 28) and strip.dtype == np.uint8
    np.testing.assert_array_equal(strip[0], sample(model, [3], torch.Generator().manual_seed(5))[0].numpy())
    np.testing.assert_array_equal(strip[-1], sample(model, [8], torch.Generator().manual_seed(5))[0].numpy())
    assert not np.array_equal(strip[3], strip[0]) and not np.array_equal(strip[3], strip[-1])


def test_noise_interpolation_ends_are_the_plain_samples(trained):
    model = trained.model
    strip = teach.noise_interpolation(model, 4, steps=5, seed_a=1, seed_b=2)
    assert strip.shape == (5, 28, 28)
    np.testing.assert_array_equal(strip[0], sample(model, [4], torch.Generator().manual_seed(1))[0].numpy())
    np.testing.assert_array_equal(strip[-1], sample(model, [4], torch.Generator().manual_seed(2))[0].numpy())
    # slerp keeps the norm of two orthogonal unit vectors where lerp would shrink it to 0.71.
    mid = teach.slerp(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), torch.tensor([0.5]))
    assert mid.norm().item() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("call, words", [
    (lambda m: teach.style_grid(m, 0, [1], 0), "number of styles"),
    (lambda m: teach.style_grid(m, 17, [1], 0), "number of styles"),
    (lambda m: teach.style_grid(m, 2, [1, 10], 0), "label 10"),
    (lambda m: teach.style_grid(m, 2, [], 0), "no labels"),
    (lambda m: teach.style_grid(m, 2, [1], -1), "seed"),
    (lambda m: teach.label_interpolation(m, 3, 10, 5, 0), "end label"),
    (lambda m: teach.label_interpolation(m, 3, 4, 1, 0), "number of steps"),
    (lambda m: teach.label_interpolation(m, 3, 4, 65, 0), "number of steps"),
    (lambda m: teach.label_interpolation(m, True, 4, 5, 0), "start label"),
    (lambda m: teach.noise_interpolation(m, -1, 5, 0, 1), "label"),
    (lambda m: teach.noise_interpolation(m, 1, 5, 0, 2**63), "second seed"),
])
def test_bad_arguments_are_refused_with_a_sentence(trained, call, words):
    with pytest.raises(UserError, match=words):
        call(trained.model)


def test_views_refuse_bad_images_and_labels(trained, data):
    with pytest.raises(UserError, match="uint8"):
        teach.match_matrix(trained.model, data.test_images.float(), data.test_labels)
    with pytest.raises(UserError, match="one per image"):
        teach.d_classifier_accuracy(trained.model, data.test_images, data.test_labels[:-1])
    ones = data.test_labels == 1
    with pytest.raises(UserError, match="true label 0"):
        teach.match_matrix(trained.model, data.test_images[ones], data.test_labels[ones])
    with pytest.raises(UserError, match="order"):
        teach.cell_examples(trained.model, data.test_images, data.test_labels, 1, 2, order="random")


# ------------------------------------------------------------------ timeline
@pytest.mark.parametrize("fmt", ["gif", "webp"])
def test_timeline_has_one_frame_per_grid(trained, tmp_path, fmt):
    history = trained.samples_history
    steps = [s for s, _ in history]
    assert len(set(steps)) >= 5
    path = teach.timeline_animation(history, tmp_path / f"t.{fmt}", fmt=fmt, fps=5)
    with Image.open(path) as im:
        assert im.format == fmt.upper()
        assert im.n_frames == len(set(steps))  # one per grid; a grid redrawn at the same step counts once
        cols = trained.cfg.sample_cols
        assert im.width == 3 * (cols * 30 + 2)  # grid_image pads 2 px; upscaled x3
        assert im.height > 3 * (10 * 30 + 2)  # plus the caption bar
        im.seek(im.n_frames - 1)
        im.load()
    thin = teach.timeline_animation(history, tmp_path / f"thin.{fmt}", fmt=fmt, max_frames=3)
    with Image.open(thin) as im:
        assert im.n_frames == 3


def test_timeline_refuses_nothing_and_nonsense(tmp_path):
    with pytest.raises(UserError, match="no sample grids"):
        teach.timeline_animation([], tmp_path / "t.gif")
    with pytest.raises(UserError, match="format"):
        teach.timeline_animation([(0, torch.zeros(10, 28, 28, dtype=torch.uint8))], tmp_path / "t.mp4", fmt="mp4")
    with pytest.raises(UserError, match="ten rows"):
        teach.timeline_animation([(0, torch.zeros(7, 28, 28, dtype=torch.uint8))], tmp_path / "t.gif")


def test_history_csv_round_trips(trained, tmp_path):
    history = trained.history
    path = teach.history_csv(history, tmp_path / "h.csv")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(history) > 5
    assert list(rows[0]) == list(history[0])
    for got, want in zip(rows, history):
        assert {k: float(v) for k, v in got.items()} == {k: float(v) for k, v in want.items()}
    with pytest.raises(UserError, match="no metrics"):
        teach.history_csv([], tmp_path / "e.csv")


# ------------------------------------------------------------------ ablation
def _tags(events):
    return [(arm, type(ev).__name__) for arm, ev in events]


def test_ablation_alternates_arms_with_equal_time_and_evaluates(data, step_clock):
    # On the step clock (0.125 s a step): 3 s per arm is 24 steps, a 0.5 s slice 4 steps, a grid every 1 s.
    ab = teach.Ablation(data, "gan-cls,plain", arch="small", seconds=3.0, slice_seconds=0.5, sample_seconds=1.0,
                        device="cpu", samples_per_label=10, eval_digits=200)
    events = list(ab.run())
    metrics_arms = [arm for arm, ev in events if isinstance(ev, Metrics)]
    switches = sum(a != b for a, b in zip(metrics_arms, metrics_arms[1:]))
    assert len(metrics_arms) >= 12 and switches >= 11  # six slices each, taking turns
    for arm in ("gan-cls", "plain"):
        mine = [ev for a, ev in events if a == arm]
        assert isinstance(mine[0], Started) and sum(isinstance(ev, Started) for ev in mine) == 1
        finished = [ev for ev in mine if isinstance(ev, Finished)]
        assert len(finished) == 1 and finished[0].reason == "time"
        elapsed = [ev.elapsed for ev in mine if isinstance(ev, Metrics)]
        assert elapsed == sorted(elapsed) and elapsed[-1] == 3.0  # whole-arm time, not per slice
        steps = [s for s, _ in ab.trainers[arm].samples_history]
        assert steps == sorted(set(steps)) and len(steps) <= 3.0 / 1.0 + 2  # thinned, but the last kept
        assert steps[-1] == ab.trainers[arm].step_count
    assert {arm: t.step_count for arm, t in ab.trainers.items()} == {"gan-cls": 24, "plain": 24}  # equal time
    assert ab.used_seconds == {"gan-cls": 3.0, "plain": 3.0}
    assert _tags(events)[-2:] == [("gan-cls", "Evaluated"), ("plain", "Evaluated")]
    for arm, r in ab.results.items():
        assert r["objective"] == arm and r["steps"] == ab.trainers[arm].step_count > 0
        assert 0 <= r["mismatch_auc"] <= 1 and 0 <= r["d_classifier_accuracy"] <= 1
        assert np.asarray(r["match_matrix"]).shape == (10, 10)
        if default_judge_path().is_file():
            assert 0 <= r["label_accuracy"] <= 1 and r["frechet_distance"] >= 0
        else:
            assert r["label_accuracy"] is None and "judge" in r["judge_error"].lower()
    headers, rows = teach.results_table(ab.results)
    assert len(rows) == 2 and len(rows[0]) == len(headers) and rows[1][0] == "plain"


def test_ablation_same_seed_same_start_and_equal_steps(data):
    ab = teach.Ablation(data, ["plain", "seed"], arch="small", steps=25, slice_seconds=0.05, device="cpu",
                        evaluate=False)
    first = ab.trainers["plain"].model.state_dict()
    for k, v in ab.trainers["seed"].model.state_dict().items():
        assert torch.equal(v, first[k]), k  # both arms start from the same weights
    events = list(ab.run())
    assert [ev.reason for _, ev in events if isinstance(ev, Finished)] == ["steps", "steps"]
    assert ab.trainers["plain"].step_count == ab.trainers["seed"].step_count == 25
    assert not any(isinstance(ev, teach.Evaluated) for _, ev in events)


def test_ablation_stops_on_request(data, step_clock):
    stop = threading.Event()
    ab = teach.Ablation(data, ["gan-cls", "plain"], arch="small", seconds=120, slice_seconds=0.5, device="cpu",
                        evaluate=False)
    events, at_stop = [], None
    for arm, ev in ab.run(stop):
        events.append((arm, ev))
        if sum(isinstance(e, Metrics) for _, e in events) == 5 and at_stop is None:
            stop.set()  # pressed mid-run, in the third slice, between two steps
            at_stop = {a: t.step_count for a, t in ab.trainers.items()}
    assert ab.finish_reason == {"gan-cls": "stopped", "plain": "stopped"}
    assert sorted(arm for arm, ev in events if isinstance(ev, Finished)) == ["gan-cls", "plain"]
    assert {a: t.step_count for a, t in ab.trainers.items()} == at_stop  # not one step after the stop
    assert all(0 < n < 960 for n in at_stop.values())  # both arms trained, far from the 120 s budget
    used = ab.used_seconds
    assert abs(used["gan-cls"] - used["plain"]) <= 0.5  # at most the slice in progress apart


def test_ablation_refuses_bad_settings(data):
    with pytest.raises(UserError, match="unknown objective"):
        teach.Ablation(data, ["gan-cls", "wgan"], arch="small", device="cpu", evaluate=False)
    with pytest.raises(UserError, match="different objectives"):
        teach.Ablation(data, ["plain", "plain"], arch="small", device="cpu", evaluate=False)
    with pytest.raises(UserError, match="not both"):
        teach.Ablation(data, arch="small", seconds=5, steps=5, device="cpu", evaluate=False)
    with pytest.raises(UserError, match="slice length"):
        teach.Ablation(data, arch="small", slice_seconds=0, device="cpu", evaluate=False)
