"""The texts a class reads: Probe's score sentence ranks labels, the 'why about 0.7' figures are the model's own,
and no help text holds Markdown that would strike part of it through."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from gradio_client import Client

from demo.harness import ROOT
from demo.replay_view import REPLAY_HELP
from demo.tabs.probe import PROBE_HELP, SCORES_WHY, score_facts, score_sentence
from demo.tabs.train import GRID_HELP, TRAIN_HELP
from gancls.checkpoint import load_checkpoint
from gancls.data import load_embedded
from gancls.probe import score_table
from gancls.report import eval_subset


def test_help_texts_render_as_written() -> None:
    # "~0.3 ... ~0.1" is strikethrough in Gradio's Markdown: the curve help once lost a sentence that way.
    for text in (TRAIN_HELP, GRID_HELP, PROBE_HELP, SCORES_WHY, REPLAY_HELP):
        assert "~" not in text


def test_the_score_sentence_ranks_labels() -> None:
    assert "D rates **7** highest" in score_sentence(0.62, 7, 7, 0.62)
    assert "not a probability" in score_sentence(0.62, 7, 7, 0.62)
    assert "D rates label **1** higher than 7 (0.55)" in score_sentence(0.21, 7, 1, 0.55)
    assert "All ten scores are low" in score_sentence(0.05, 7, 1, 0.12)


def test_score_facts_are_the_models_own(tiny_checkpoint: Path) -> None:
    data = load_embedded()
    ckpt = load_checkpoint(tiny_checkpoint)
    x, y = eval_subset(data, 500)
    table = score_table(ckpt.model, x)
    right = table[torch.arange(len(y)), y]
    text = score_facts(ckpt.model, data, {})  # no evaluation in the meta: the AUC is measured here
    assert f"**{float(right.mean()):.2f}** on average with their right label" in text
    auc = float(re.search(r"pair higher \*\*([\d.]+) %\*\*", text).group(1))
    assert 0 <= auc <= 100
    shipped = load_checkpoint(ROOT / "checkpoints" / "pretrained")
    if isinstance(shipped.meta.get("eval", {}).get("mismatch_auc"), float):  # the checkpoint's own figure
        text = score_facts(shipped.model, data, shipped.meta)
        assert f"**{100 * shipped.meta['eval']['mismatch_auc']:.1f} %** of the time" in text
    assert "moving average of the D that trained" not in score_facts(ckpt.model, data, {})
    averaged = {"train_config": {"d_ema_decay": 0.98}}
    assert "each step keeps 0.98 of the average" in score_facts(ckpt.model, data, averaged)


def test_score_facts_endpoint(app_url: str) -> None:
    text = Client(app_url, verbose=False).predict(api_name="/score_facts")
    assert "mismatch AUC" in text and "with their right label" in text
