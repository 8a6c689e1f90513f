"""The training engine end to end on tiny settings: events, learning, checkpoints, resume."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from gancls.checkpoint import load_checkpoint
from gancls import train as train_module
from gancls.config import Budget, ConfigError, model_preset, train_preset
from gancls.data import load_embedded
from gancls.sampling import label_grid
from gancls.train import CheckpointSaved, Finished, Metrics, Paused, Samples, Started, Trainer


@pytest.fixture(scope="module")
def data():
    return load_embedded()  # 10,000 real MNIST digits shipped in the repo


def _cfg(**kw):
    base = dict(metrics_every=10, metrics_seconds=1e9, sample_seconds=1e9, autosave_seconds=0, batch_size=32)
    return train_preset("small", **{**base, **kw})


def test_short_run_emits_every_event_and_learns(data, tmp_path: Path) -> None:
    t = Trainer(model_preset("small"), _cfg(sample_seconds=0.0), data, device="cpu", run_dir=tmp_path)
    events = list(t.run(Budget(steps=150)))
    kinds = {type(e) for e in events}
    assert {Started, Metrics, Samples, CheckpointSaved, Finished} <= kinds
    assert isinstance(events[0], Started) and isinstance(events[-1], Finished)
    assert events[-1].reason == "steps" and events[-1].step == 150
    metrics = [e for e in events if isinstance(e, Metrics)]
    assert [m.step for m in metrics] == sorted(m.step for m in metrics)
    assert metrics[-1].loss_d < metrics[0].loss_d  # D learns to tell the three cases apart
    assert metrics[-1].d_real > metrics[-1].d_wrong  # ... including real digits with wrong labels
    grids = [e for e in events if isinstance(e, Samples)]
    assert grids[0].images.shape == (80, 28, 28) and grids[0].images.dtype == torch.uint8
    assert not torch.equal(grids[0].images, grids[-1].images)  # the fixed-noise grid evolves
    assert (tmp_path / "gancls.safetensors").is_file() and (tmp_path / "gancls.json").is_file()


def test_same_seed_same_run(data) -> None:
    runs = []
    for _ in range(2):
        t = Trainer(model_preset("small"), _cfg(), data, device="cpu")
        runs.append([(m.loss_d, m.loss_g) for m in t.run(Budget(steps=20)) if isinstance(m, Metrics)])
    assert runs[0] == runs[1]


def test_checkpoint_round_trip_gives_identical_samples(data, tmp_path: Path) -> None:
    t = Trainer(model_preset("small"), _cfg(), data, device="cpu", run_dir=tmp_path)
    list(t.run(Budget(steps=30)))
    t.model.eval()
    before, _ = label_grid(t.model, range(10), 3, seed=7)
    ckpt = load_checkpoint(tmp_path)
    after, _ = label_grid(ckpt.model, range(10), 3, seed=7)
    assert torch.equal(before, after)
    assert ckpt.step == 30 and ckpt.meta["train_config"]["batch_size"] == 32
    assert ckpt.meta["data"].startswith("embedded subset")


def test_resume_continues_exactly(data, tmp_path: Path) -> None:
    whole = Trainer(model_preset("small"), _cfg(metrics_every=1), data, device="cpu")
    expected = [(m.step, m.loss_d, m.loss_g) for m in whole.run(Budget(steps=40)) if isinstance(m, Metrics)]

    first = Trainer(model_preset("small"), _cfg(metrics_every=1), data, device="cpu", run_dir=tmp_path)
    got = [(m.step, m.loss_d, m.loss_g) for m in first.run(Budget(steps=20)) if isinstance(m, Metrics)]
    resumed = Trainer.resume(tmp_path, data, device="cpu")
    events = list(resumed.run(Budget(steps=40)))
    assert isinstance(events[0], Started) and events[0].resumed and events[0].step == 20
    got += [(m.step, m.loss_d, m.loss_g) for m in events if isinstance(m, Metrics)]
    assert got == expected
    assert load_checkpoint(tmp_path).step == 40


def test_stop_request_keeps_the_model(data, tmp_path: Path) -> None:
    stop = threading.Event()
    t = Trainer(model_preset("small"), _cfg(), data, device="cpu", run_dir=tmp_path)
    for e in t.run(Budget(steps=10_000), stop):
        if isinstance(e, Metrics) and e.step >= 30:
            stop.set()
    assert isinstance(e, Finished) and e.reason == "stopped"
    assert load_checkpoint(tmp_path).step == t.step_count
    # ... and a new run goes on from there with its own budget (steps count the whole training)
    more = list(t.run(Budget(steps=e.step + 15)))
    assert isinstance(more[0], Started) and more[0].step == e.step
    assert more[-1].reason == "steps" and more[-1].step == e.step + 15


def test_time_budget_counts_training_not_the_consumer(data, step_clock) -> None:
    # The step clock moves 0.125 s per training step; a slow consumer moves it too, while it holds an event.
    t = Trainer(model_preset("small"), _cfg(metrics_every=2), data, device="cpu")
    events, slept = [], 0.0
    for e in t.run(Budget(seconds=1.0)):
        events.append(e)
        if isinstance(e, Metrics) and slept < 1.5:
            step_clock.now += 0.5  # a slow consumer: its time is not the run's
            slept += 0.5
    assert slept == 1.5  # the consumer held events for longer than the whole budget ...
    assert events[-1].reason == "time" and events[-1].step == 8  # ... and the run still got its 1 s: 8 steps
    assert t.train_seconds == 1.0
    metrics = [e for e in events if isinstance(e, Metrics)]
    assert metrics[-1].elapsed == 1.0 and metrics[-1].progress == 1.0


def test_no_budget_means_no_limit_until_stopped(data) -> None:
    # The trap this replaces: `epochs=None` used to keep the preset's epochs without a word.
    import dataclasses

    few = dataclasses.replace(data, train_images=data.train_images[:320], train_labels=data.train_labels[:320])
    t = Trainer(model_preset("small"), _cfg(), few, device="cpu")
    assert t.steps_per_epoch == 10  # 320 digits in batches of 32: an epoch in a few steps, not 312
    limit = t.steps_per_epoch + 20  # past one epoch, the small preset's default
    events = list(t.run(stop=lambda: t.step_count >= limit))
    assert events[-1].reason == "stopped" and events[-1].step == limit
    assert t.total_steps(Budget(epochs=1.0)) == t.steps_per_epoch
    assert t.total_steps(Budget(epochs=1.0, steps=5)) == 5
    with pytest.raises(ConfigError, match="unknown training settings: epochs"):
        train_preset("small", epochs=None, max_steps=3)


def test_slices_make_one_run_with_one_started(data) -> None:
    sliced = Trainer(model_preset("small"), _cfg(metrics_every=1), data, device="cpu")
    whole = Trainer(model_preset("small"), _cfg(metrics_every=1), data, device="cpu")
    budget = Budget(steps=25)
    events = []
    for _ in range(1000):
        chunk = list(sliced.run(budget, slice_seconds=0.01))
        events += chunk
        if isinstance(chunk[-1], Finished):
            break
        assert isinstance(chunk[-1], Paused) and sliced.running
    assert sum(isinstance(e, Started) for e in events) == 1 and isinstance(events[0], Started)
    assert sum(isinstance(e, Paused) for e in events) >= 2  # it really ran in slices
    assert isinstance(events[-1], Finished) and events[-1].step == 25 and not sliced.running
    got = [(m.step, m.loss_d) for m in events if isinstance(m, Metrics)]
    assert got == [(m.step, m.loss_d) for m in whole.run(budget) if isinstance(m, Metrics)]
    with pytest.raises(ValueError, match="another budget"):
        t = Trainer(model_preset("small"), _cfg(), data, device="cpu")
        list(t.run(Budget(steps=50), slice_seconds=0.01))
        list(t.run(Budget(steps=99)))


def test_state_dict_hands_a_paused_run_over(data) -> None:
    # What a ZeroGPU chunk does: a copy trains a slice, the original takes its state and goes on.
    a = Trainer(model_preset("small"), _cfg(metrics_every=1), data, device="cpu")
    b = Trainer(model_preset("small"), _cfg(metrics_every=1), data, device="cpu")
    ref = Trainer(model_preset("small"), _cfg(metrics_every=1), data, device="cpu")
    budget = Budget(steps=30)
    first = list(b.run(budget, slice_seconds=0.05))
    assert isinstance(first[-1], Paused)
    a.load_state_dict(b.state_dict())
    assert a.running and a.step_count == b.step_count and a.history == b.history
    rest = list(a.run(budget))
    assert not any(isinstance(e, Started) for e in rest) and rest[-1].step == 30
    got = [m.loss_d for m in first + rest if isinstance(m, Metrics)]
    assert got == [m.loss_d for m in ref.run(budget) if isinstance(m, Metrics)]


def test_histories_stay_bounded_and_span_the_run(data, monkeypatch) -> None:
    monkeypatch.setattr(train_module, "MAX_HISTORY", 10)
    monkeypatch.setattr(train_module, "MAX_GRIDS", 4)
    t = Trainer(model_preset("small"), _cfg(metrics_every=1, sample_seconds=0.0), data, device="cpu")
    list(t.run(Budget(steps=48)))  # a reading and a grid every step: each history thinned several times
    assert len(t.history) <= 10 and len(t.samples_history) <= 4
    assert t.history[0]["step"] == 1 and t.history[-1]["step"] == 48
    assert t.samples_history[0][0] == 0 and t.samples_history[-1][0] == 48
    steps = [s for s, _ in t.samples_history]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)


def test_abandoned_iterator_still_saves(data, tmp_path: Path) -> None:
    t = Trainer(model_preset("small"), _cfg(), data, device="cpu", run_dir=tmp_path)
    it = t.run(Budget(steps=10_000))
    for e in it:
        if isinstance(e, Metrics) and e.step >= 20:
            break
    it.close()  # what a closed browser tab does to a Gradio generator
    assert load_checkpoint(tmp_path).step == t.step_count >= 20
    assert not t.running  # the run ended with its consumer; a new one may start
    assert isinstance(next(t.run(Budget(steps=t.step_count + 1))), Started)


def test_seed_preset_holds_out_5000_and_uses_batch_10(data) -> None:
    cfg = train_preset("seed", objective="seed")
    t = Trainer(model_preset("seed"), cfg, data, device="cpu")
    assert len(t.images) == len(data.train_images) - 5000 and cfg.batch_size == 10
    assert t.steps_per_epoch == (len(data.train_images) - 5000) // 10
    assert list(t.run(Budget(steps=2)))[-1].step == 2


def test_resumes_a_checkpoint_written_before_the_budget_existed(data, tmp_path: Path) -> None:
    from gancls.checkpoint import save_checkpoint

    t = Trainer(model_preset("small"), _cfg(), data, device="cpu")
    list(t.run(Budget(steps=10)))
    meta = t.meta()
    meta["train_config"].update(epochs=3.0, max_steps=None, max_seconds=60.0)  # the old TrainConfig's fields
    save_checkpoint(tmp_path, t.model, meta, t.train_state())
    resumed = Trainer.resume(tmp_path, data, device="cpu")
    assert resumed.step_count == 10 and resumed.cfg == t.cfg
    assert list(resumed.run(Budget(steps=12)))[-1].step == 12


def _owned_fields() -> dict[str, tuple[str, set[str]]]:
    """The stateful objects whose fields only their own module writes: class -> (home module, its fields)."""
    import dataclasses

    from demo.session import Session

    trainer = set(vars(Trainer(model_preset("small"), _cfg(), load_embedded(), device="cpu")))
    session = {f.name for f in dataclasses.fields(Session)}
    return {"Trainer": ("gancls/train.py", trainer), "Session": ("demo/session.py", session)}


def _field_writes(root: Path, owned: dict[str, tuple[str, set[str]]]) -> list[str]:
    """`x.field = …` (or `x.field[i] = …`, `+=`, a tuple target) anywhere but in the class's own module, where
    `field` is a field of an owned class and `x` is not `self`. Names do not exempt anyone: a write to a
    field name some owned class has counts, whatever the variable is called."""
    import ast

    found = []
    files = [p for d in ("gancls", "demo", "scripts", "bench", "tests") for p in sorted((root / d).rglob("*.py"))]
    for path in files:
        rel = path.relative_to(root).as_posix()
        fields = set().union(*(f for home, f in owned.values() if home != rel))
        for node in ast.walk(ast.parse(path.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
            for t in [e for t in targets for e in (t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t])]:
                while isinstance(t, ast.Subscript):  # tr.history[-1] = … writes the field's contents
                    t = t.value
                if isinstance(t, ast.Attribute) and t.attr in fields and ast.unparse(t.value) != "self":
                    found.append(f"{rel}:{node.lineno}: {ast.unparse(t)}")
    return found


def test_nobody_outside_the_owning_module_writes_trainer_or_session_fields(tmp_path: Path) -> None:
    import ast

    root = Path(__file__).resolve().parents[1]
    owned = _owned_fields()
    for name, (home, fields) in owned.items():  # the rule follows the classes: a move must update this table
        assert name in {n.name for n in ast.walk(ast.parse((root / home).read_text())) if isinstance(n, ast.ClassDef)}
        assert fields, name
    assert {"trainer", "model", "running", "joined", "checkpoint"} <= owned["Session"][1]
    assert _field_writes(root, owned) == []
    # ... and the check does catch such writes, whatever the variable's name, and only outside the home module.
    for d in ("gancls/teach", "demo/tabs"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "gancls" / "teach" / "bad.py").write_text(
        "def f(tr):\n    tr.history[-1] = {}\n    tr.cfg, x = None, 1\n    tr.step_count += 1\n")
    (tmp_path / "demo" / "tabs" / "bad.py").write_text(
        "def f(session, s, self):\n    session.joined = 1\n    s.model_steps, s.put_away = 0, None\n"
        "    self.running = True\n")
    (tmp_path / "demo" / "session.py").write_text("def f(s):\n    s.trainer = None\n    s.cfg = None\n")
    assert sorted(_field_writes(tmp_path, owned)) == [
        "demo/session.py:3: s.cfg",  # a Trainer field: demo/session.py is Session's home, not Trainer's
        "demo/tabs/bad.py:2: session.joined", "demo/tabs/bad.py:3: s.model_steps", "demo/tabs/bad.py:3: s.put_away",
        "gancls/teach/bad.py:2: tr.history", "gancls/teach/bad.py:3: tr.cfg", "gancls/teach/bad.py:4: tr.step_count"]


def test_mode_seeking_pairs_one_label_and_reports_the_adversarial_loss(data, monkeypatch) -> None:
    from gancls.models import GANCLS

    seen: dict = {}
    g_loss, ms_loss = GANCLS.g_loss, GANCLS.mode_seeking_loss

    def spy_g_loss(self, fake, y, tcfg):
        seen["y"], seen["g_loss"] = y.clone(), g_loss(self, fake, y, tcfg)
        return seen["g_loss"]

    def spy_ms_loss(fake, noise):
        seen["pairs"] = len(fake) // 2
        return ms_loss(fake, noise)

    monkeypatch.setattr(GANCLS, "g_loss", spy_g_loss)
    monkeypatch.setattr(GANCLS, "mode_seeking_loss", staticmethod(spy_ms_loss))
    t = Trainer(model_preset("small"), _cfg(batch_size=9, mode_seeking=0.5), data, device="cpu")
    stats = t.step()
    y = seen["y"]
    assert seen["pairs"] == 4 and torch.equal(y[:4], y[4:8])  # an odd batch: the last row has no pair
    assert stats[1].item() == pytest.approx(seen["g_loss"].item())  # the curve shows G's adversarial loss
    seen.clear()
    off = Trainer(model_preset("small"), _cfg(batch_size=9, mode_seeking=0.0), data, device="cpu")
    off.step()
    assert "pairs" not in seen  # off: the term is not even computed
    assert any(not torch.equal(a, b) for a, b in zip(t.model.G.parameters(), off.model.G.parameters()))
    # A schedule that turns the term on after 18 images: steps 1 and 2 without it, step 3 with it.
    late = Trainer(model_preset("small"), _cfg(batch_size=9, mode_seeking_after=18, mode_seeking_late=0.5), data,
                   device="cpu")
    for expected in (False, False, True):
        seen.clear()
        late.step()
        assert ("pairs" in seen) is expected, late.images_seen
