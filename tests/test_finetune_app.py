"""Train tab, "Start from the pretrained model (fine-tune)": a few steps on from the shipped weights still draw
readable digits (a few steps from scratch do not), the shared model never trains, and the run state says
which model is in use through Resume, a later run from scratch and Reset."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import torch
from gradio_client import Client
from gradio_client.exceptions import AppError

from demo.harness import ROOT
from demo.context import load_context
from demo.runstate import RunState
from demo.tabs.train import PRETRAINED, SCRATCH, TrainTab

SHIPPED = ROOT / "checkpoints" / "pretrained"


class Request:
    session_hash = "fine-tune-test"


def run(tab: TrainTab, start: str, steps: int, arch: str = "fast") -> tuple:
    """A run of `steps` steps on the embedded subset; its last output (status, curves, grid, using, download, note)."""
    outs = list(tab.train("cpu", "embedded", 60, 0, steps, arch, 32, 4e-4, 1e-3, 0, "gan-cls", "lsgan", start,
                          Request()))
    return outs[-1]


def judge_accuracy(status: str) -> float:
    """The live grid's judge label accuracy the status box shows, 0..1."""
    return int(re.search(r"label accuracy \(judge, live grid\) <b>(\d+) %", status).group(1)) / 100


@pytest.fixture(scope="module")
def tab(tmp_path_factory: pytest.TempPathFactory) -> TrainTab:
    if not (SHIPPED / "gancls.safetensors").is_file():
        pytest.skip("needs the shipped checkpoint in checkpoints/pretrained")
    work = tmp_path_factory.mktemp("finetune")
    return TrainTab(load_context(checkpoint=str(SHIPPED), work_dir=str(work / "work"), runs_dir=work / "runs"),
                    update_every=0)


def test_a_short_fine_tune_draws_digits_and_the_shared_model_never_trains(tab: TrainTab) -> None:
    ctx = tab.ctx
    shared = {k: v.clone() for k, v in ctx.pretrained.state_dict().items()}
    status, *_, using, _download, _note = run(tab, PRETRAINED, 6)
    session = ctx.session(Request())
    tuned = judge_accuracy(status)
    assert session.trainer.step_count == 6 and session.from_pretrained
    assert tuned >= 0.8, f"6 steps on from the pretrained weights: judge reads only {tuned:.0%} of the grid"
    assert all(torch.equal(shared[k], v) for k, v in ctx.pretrained.state_dict().items()), "the shared model trained"
    assert any(not torch.equal(shared[k], v) for k, v in session.model.state_dict().items())
    assert "fine-tuned by your run for 6 more steps" in using
    assert "fine-tuned by your run (6 steps)" in RunState.of(session).message()

    # Resume goes on with the same (fine-tuned) run.
    outs = list(tab.resume(60, 0, 9, Request()))
    assert session.trainer.step_count == 9 and "for 9 more steps" in outs[-1][4]

    # From scratch, the same few steps are noise; the page no longer says "fine-tuned".
    status, *_, using, _download, _note = run(tab, SCRATCH, 6)
    assert judge_accuracy(status) < 0.5 < tuned
    assert not session.from_pretrained and "your model trained for 6 steps" in using
    assert "fine-tuned" not in RunState.of(session).message()

    run(tab, PRETRAINED, 3)
    assert session.from_pretrained
    tab.reset(Request())
    assert not session.from_pretrained and session.trainer is None


def test_fine_tune_needs_a_pretrained_model(tab: TrainTab) -> None:
    bare = TrainTab(dataclasses.replace(tab.ctx, pretrained_path=None), update_every=0)
    with pytest.raises(Exception, match="no pretrained model to fine-tune: start from scratch"):
        run(bare, PRETRAINED, 2)
    with pytest.raises(Exception, match="Start from must be"):
        run(tab, "both", 2)


def test_fine_tune_through_the_api(app_url: str, tiny_checkpoint: Path) -> None:
    client = Client(app_url, verbose=False)
    args = ["auto", "embedded", 30, 0, 4, "fast", 32, 4e-4, 1e-3, 0, "gan-cls", "lsgan"]
    job = client.submit(*args, PRETRAINED, api_name="/train")
    status, _loss, _d, _grid, using, _download, _note = job.result(timeout=120)
    assert "Done (reached the step limit) at step 4" in status and "fine-tuned by your run for 4 more steps" in using
    with pytest.raises(AppError, match="not in the list of choices"):  # Gradio checks the choice itself
        client.predict(*args, "nonsense", api_name="/train")
