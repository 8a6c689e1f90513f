"""Tab 4 · Ablation: GAN-CLS against another objective, same seed and budget, trained side by side live."""

from __future__ import annotations

from typing import Any, Iterator

import gradio as gr
import numpy as np
import pandas as pd

from gancls import validate
from gancls.config import ARCHES, OBJECTIVES
from gancls.draw import heatmap_image, labelled_grid
from gancls.errors import UserError
from gancls.teach import Ablation, results_table
from gancls.train import Finished, Samples, Started

from ..context import AppContext
from ..live import live
from ..session import Session
from ..ui import D_CURVES, NOTHING_TRAINING, UPDATE_EVERY, curves, d_plot, png, start_curves, \
    status_html, user_errors

MAX_ABLATION_SECONDS = 1800.0  # per arm: one ablation holds the shared training queue for twice this
ABLATION_EVAL = dict(samples_per_label=50, eval_digits=1000)  # a few seconds per 'fast' model on a 2-core CPU

ABLATION_HELP = """**Does the wrong-label trick matter?** Two models start from the *same* weights and see the *same*
digits in the same order for the same time; only the objective differs. **gan-cls** also shows D real digits
with a *wrong* label and calls them fake, so D must read the label. **plain** shows D only (real digit, its
label) and (generated digit, its label). **seed** is GAN-CLS as the original code did it. They take turns in
short slices, so both see the same machine load. Watch the red curve, D(real, wrong label): if D reads labels
it falls. At the end both models are measured on the same test digits."""

ABLATION_TABLE_HELP = """**The table.** *label accuracy*: a separate, accurate digit classifier (the judge) reads each
generated digit; the share that shows the asked-for label (chance 0.10). *mismatch AUC*: how well D's score
separates (real digit, right label) from (same digit, wrong label) — 0.5 = D ignores the label, 1 = perfect.
*D-as-classifier acc.*: label each real digit with the label D scores highest. *FD*: Fréchet distance between
judge features of generated and real digits (lower = more realistic). *diversity*: spread of those features.
*diag − off-diag*: the heat map's diagonal mean minus the rest."""

# (key, words, higher is better, difference too small to call)
_COMPARED = (
    ("label_accuracy", "the judge reads the asked-for digit in its samples", True, 0.03),
    ("mismatch_auc", "D tells a right label from a wrong one on real digits (mismatch AUC)", True, 0.03),
    ("d_classifier_accuracy", "D, used as a digit classifier, gets real test digits right", True, 0.03),
    ("frechet_distance", "its samples look like real digits to the judge (lower Fréchet distance)", False, None),
)


def results_frame(results: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """The ablation's headline numbers as a table, one row per objective ('—' where a figure is missing)."""
    headers, rows = results_table(results)
    return pd.DataFrame([["—" if v is None else v for v in row] for row in rows], columns=headers)


def verdict(results: dict[str, dict[str, Any]], stopped: bool = False) -> str:
    """A plain, even-handed reading of the results table: who is ahead on each figure, or that it is a tie."""
    arms = list(results)
    if len(arms) != 2:
        return ""
    a, b = arms
    lines = []
    for key, words, higher, tie in _COMPARED:
        va, vb = results[a].get(key), results[b].get(key)
        if va is None or vb is None:
            continue
        va, vb = float(va), float(vb)
        close = abs(va - vb) < (tie if tie is not None else 0.05 * max(abs(va), abs(vb), 1e-9))
        fig = ".0f" if key == "frechet_distance" and max(va, vb) >= 10 else ".3f"
        if close:
            lines.append(f"- **No clear difference** in how well {words}: {a} {va:{fig}} vs {b} {vb:{fig}}.")
        else:
            best = a if (va > vb) == higher else b
            lines.append(f"- **{best}** is ahead in how well {words}: {a} {va:{fig}} vs {b} {vb:{fig}}.")
    if results[a].get("label_accuracy") is None:
        lines.append("- The judge classifier is missing here, so label accuracy, FD and diversity are not measured.")
    steps = ", ".join(f"{arm}: {results[arm].get('steps', 0):,} steps" for arm in arms)
    caveat = ("One short run per objective with one seed: differences of a few points can be luck. "
              "Change the seed and run again to see how much the figures move.")
    head = "Stopped early, so these models are less trained than the budget allowed. " if stopped else ""
    return f"### What this run shows\n{head}({steps})\n" + "\n".join(lines) + f"\n\n{caveat}"


class AblationView:
    """Both arms' latest grids and curves, built into UI values only when an update is sent."""

    def __init__(self, ab: Ablation, session: Session):
        self.ab, self.session = ab, session
        self.grids: dict[str, Samples] = {}
        self.dirty: set[str] = set()
        self.shown: dict[str, Any] = {arm: None for arm in ab.objectives}  # the grid file each arm shows now
        self.started: set[str] = set()
        self.finished: set[str] = set()

    @property
    def all_started(self) -> bool:
        return len(self.started) == len(self.ab.objectives)

    def feed(self, tagged: tuple[str, Any]) -> bool:
        arm, event = tagged
        if isinstance(event, Started):
            self.started.add(arm)
        elif isinstance(event, Samples):
            self.grids[arm] = event
            self.dirty.add(arm)
        elif isinstance(event, Finished):
            self.finished.add(arm)
            return len(self.finished) == len(self.ab.objectives)
        return False

    def arms(self, skip_heads: bool) -> list[Any]:
        """(heading, D curves, grid) per arm."""
        out: list[Any] = []
        for k, arm in enumerate(self.ab.objectives):
            grid: Any = gr.skip()
            if arm in self.dirty:
                s = self.grids[arm]
                grid = self.shown[arm] = png(self.session, labelled_grid(s.images, range(10), s.cols, scale=2),
                                             f"ablation_{k}.png")
                self.dirty.discard(arm)
            head = gr.skip() if skip_heads else f"#### {arm}"
            out += [head, curves(self.ab.trainers[arm].history, D_CURVES), grid if skip_heads else self.shown[arm]]
        return out

    def status(self, message: str, state: str = "running", progress: float | None = None) -> str:
        ab, used = self.ab, self.ab.used_seconds
        if progress is None:
            progress = sum(min(used[a] / (ab.seconds or 1), 1.0) for a in ab.objectives) / len(ab.objectives)
        stats = {arm: f"{ab.trainers[arm].step_count:,} steps · {used[arm]:.1f} s of {ab.seconds:g} s"
                 for arm in ab.objectives}
        stats["device"] = str(ab.device)
        return status_html(state=state, message=message, progress=progress, stats=stats)


class AblationTab:
    """The Ablation tab's endpoints, bound to one AppContext."""

    def __init__(self, ctx: AppContext, update_every: float = UPDATE_EVERY):
        self.ctx, self.update_every = ctx, update_every

    @user_errors
    def ablation(self, objective_a: str, objective_b: str, seconds: float, arch: str, seed: float,
                 request: gr.Request) -> Iterator[tuple]:
        """Train two objectives side by side (same seed and budget), live, then compare them."""
        session = self.ctx.session(request)
        seconds = validate.number("Time per objective", seconds, 1,
                                  min(MAX_ABLATION_SECONDS, self.ctx.limits.max_run_seconds / 2))
        judge = self.ctx.judge()
        # One run per session (Train and the ablation share the Stop switch), in the server's training line.
        with session.training(), self.ctx.store.gate.place(session) as wait:
            while wait(1.0):
                if session.stop.is_set() or session.closed:
                    raise UserError("stopped before the ablation started (it was waiting for a training slot)")
            ab = Ablation(self.ctx.data, [objective_a, objective_b], arch=arch, seconds=seconds, seed=seed,
                          device=self.ctx.train_device("auto"), evaluate=False, judge=judge, **ABLATION_EVAL)
            ab.judge_error = self.ctx.judge_error
            view = AblationView(ab, session)
            idle = start_curves([])[1]
            yield (view.status("Starting both models from the same weights…"),
                   *[v for arm in ab.objectives for v in (f"#### {arm}", idle, None)], None, None, None, "")
            message = "Training, taking turns in short slices (Stop keeps what both have learned and compares them)."
            for _ in live(self.ctx.compute.stream(lambda: ab.run(session.stop)), view.feed, self.update_every):
                if view.all_started:  # the first live view shows both arms under way
                    yield view.status(message), *view.arms(skip_heads=True), *[gr.skip()] * 4
            if session.closed:
                return  # the visitor left: nobody to show the evaluation to
            for n, arm in enumerate(ab.objectives):
                yield (view.status(f"Training done. Measuring {arm} ({n + 1} of {len(ab.objectives)}): its samples, "
                                   "and D on real test digits with right and wrong labels…", progress=1.0),
                       *[gr.skip()] * 10)
                ab.results[arm] = self.ctx.compute.call(ab.evaluate_arm, arm)
        stopped = any(r == "stopped" for r in ab.finish_reason.values())
        heat = [heatmap_image(np.asarray(ab.results[arm]["match_matrix"]), title=f"{arm}: mean D score", cell=36)
                for arm in ab.objectives]
        # The final update repeats the arms, so an API caller's last result holds everything.
        yield (view.status(f"{'Stopped' if stopped else 'Done'}. The table and the heat maps compare the two models.",
                           state="done", progress=1.0),
               *view.arms(skip_heads=False), results_frame(ab.results), heat[0], heat[1],
               verdict(ab.results, stopped=stopped))

    @user_errors
    def stop(self, request: gr.Request) -> str:
        """Ask this session's ablation (or training) to stop; what was learned is still compared."""
        if not self.ctx.session(request).request_stop():
            return NOTHING_TRAINING
        return "Stopping… both models are then measured as they are."

    def build(self) -> None:
        """Lay out the tab inside the page's gr.Tabs and wire it."""
        objectives = list(OBJECTIVES)
        idle_d = start_curves([])[1]
        with gr.Tab("4 · Ablation", id="ablation"):
            gr.Markdown(ABLATION_HELP, elem_classes="help")
            with gr.Row(equal_height=False):
                with gr.Column(scale=2, min_width=240):
                    with gr.Row():
                        start = gr.Button("Start", variant="primary", elem_id="abl-start", min_width=80)
                        stop = gr.Button("Stop", variant="stop", elem_id="abl-stop", min_width=80)
                    note = gr.Markdown(elem_id="abl-note")
                    obj_a = gr.Dropdown(objectives, value="gan-cls", label="Objective A", elem_id="abl-a")
                    obj_b = gr.Dropdown(objectives, value="plain", label="Objective B", elem_id="abl-b")
                    seconds = gr.Number(60, label="Time per objective (s)", minimum=1, maximum=MAX_ABLATION_SECONDS,
                                        elem_id="abl-seconds", info="training time each; then ~15 s to measure both")
                    arch = gr.Dropdown(list(ARCHES), value="fast", label="Model size (preset)", elem_id="abl-arch")
                    seed = gr.Number(0, label="Seed", precision=0, minimum=0, elem_id="abl-seed")
                with gr.Column(scale=7):
                    status = gr.HTML(elem_id="abl-status")
                    with gr.Row(equal_height=False):
                        arms = []
                        for k, letter in enumerate("ab"):
                            with gr.Column(min_width=300):
                                head = gr.Markdown(f"#### {('gan-cls', 'plain')[k]}", elem_id=f"abl-head-{letter}")
                                plot = d_plot(idle_d, height=230, elem_id=f"abl-plot-{letter}")
                                grid = gr.Image(show_label=False, format="png", interactive=False, height=330,
                                                elem_id=f"abl-grid-{letter}", elem_classes="digits",
                                                buttons=["download", "fullscreen"])
                                arms += [head, plot, grid]
            table = gr.Dataframe(label="Results", interactive=False, elem_id="abl-table", wrap=True)
            with gr.Row(equal_height=False):
                heat_a = gr.Image(label="Match matrix, objective A", show_label=False, format="png",
                                  interactive=False, elem_id="abl-heat-a", buttons=["download", "fullscreen"])
                heat_b = gr.Image(label="Match matrix, objective B", show_label=False, format="png",
                                  interactive=False, elem_id="abl-heat-b", buttons=["download", "fullscreen"])
            verdict_md = gr.Markdown(elem_id="abl-verdict")
            gr.Markdown(ABLATION_TABLE_HELP, elem_classes="help")

        # Waits in the store's training line. No Gradio progress: the status box shows it, and Gradio's timer
        # would redraw the page every frame of the run (see the Train tab).
        train_run = dict(concurrency_id="train-line", concurrency_limit=None, show_progress="hidden")
        start.click(self.ablation, [obj_a, obj_b, seconds, arch, seed],
                    [status, *arms, table, heat_a, heat_b, verdict_md], api_name="ablation", **train_run)
        stop.click(self.stop, None, note, api_name="ablation_stop", concurrency_limit=None, show_progress="hidden")
