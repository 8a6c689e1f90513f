"""The teaching tabs (4-7): lays them out and wires each control to its TeachActions method. No logic here."""

from __future__ import annotations

import gradio as gr

from gancls.config import ARCHES, OBJECTIVES

from .context import AppContext
from .teach_adapters import MAX_ABLATION_SECONDS, TeachActions
from .views import start_curves

PRIVATE = {"api_visibility": "private"}

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

DVIEW_HELP = """**What is D looking at?** Each cell is D's average score for real test digits of one true label
(row) when D is *told* a label (column). A discriminator that reads labels lights up the **diagonal** and stays
dark elsewhere; a discriminator that only checks "is this a real-looking digit?" gives every column the same
colour. Click a cell (or pick row and column) to see the digits behind it with their scores; compare, say,
real 4s told "9". The model is the one in use (see *Using* above): train your own or upload one to compare."""

STYLE_HELP = """**Style versus label.** G gets two inputs: a label and a random noise vector *z*. In the grid each
**row keeps one z** and each **column is a label**: if G has learned to separate them, a row keeps its
handwriting (slant, thickness, width) while the digit changes. The strips below move smoothly between two labels
(same z, mixed label code) or between two z's (same label). Same seed, same pictures."""

TIMELINE_HELP = """**Training as a film.** During a Train run the app records the fixed-noise grid every few
seconds; here it becomes an animated GIF (one frame per grid). The metric history (losses, D outputs, speed,
per update) downloads as CSV for a spreadsheet. **Upload** a gancls checkpoint (.safetensors, e.g. one you
downloaded in the Train tab) to use it in Generate, Probe and these tabs; it is checked before anything changes."""


def build_teach_tabs(ctx: AppContext, using: gr.Markdown) -> None:
    """Lay out tabs 4-7 inside the page's gr.Tabs and wire them (`using` is the page's 'Using:' line)."""
    act = TeachActions(ctx)
    infer = dict(concurrency_id="infer", concurrency_limit=4)
    objectives = list(OBJECTIVES)
    _, idle_d = start_curves([])
    d_colors = {"D(real, right label)": "#16a34a", "D(fake, right label)": "#f59e0b", "D(real, wrong label)": "#dc2626"}

    # ------------------------------------------------------------------ Ablation
    with gr.Tab("4 · Ablation", id="ablation"):
        gr.Markdown(ABLATION_HELP, elem_classes="help")
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=240):
                with gr.Row():
                    abl_start = gr.Button("Start", variant="primary", elem_id="abl-start", min_width=80)
                    abl_stop = gr.Button("Stop", variant="stop", elem_id="abl-stop", min_width=80)
                abl_note = gr.Markdown(elem_id="abl-note")
                obj_a = gr.Dropdown(objectives, value="gan-cls", label="Objective A", elem_id="abl-a")
                obj_b = gr.Dropdown(objectives, value="plain", label="Objective B", elem_id="abl-b")
                abl_seconds = gr.Number(60, label="Time per objective (s)", minimum=1, maximum=MAX_ABLATION_SECONDS,
                                        elem_id="abl-seconds", info="training time each; then ~15 s to measure both")
                abl_arch = gr.Dropdown(list(ARCHES), value="fast", label="Model size (preset)", elem_id="abl-arch")
                abl_seed = gr.Number(0, label="Seed", precision=0, minimum=0, elem_id="abl-seed")
            with gr.Column(scale=7):
                abl_status = gr.HTML(elem_id="abl-status")
                with gr.Row(equal_height=False):
                    arms = []
                    for k, letter in enumerate("ab"):
                        with gr.Column(min_width=300):
                            head = gr.Markdown(f"#### {('gan-cls', 'plain')[k]}", elem_id=f"abl-head-{letter}")
                            plot = gr.LinePlot(idle_d, x="step", y="value", color="curve", y_lim=[0, 1], height=230,
                                               title="Discriminator outputs", show_label=False, color_map=d_colors,
                                               y_title="mean D score", elem_id=f"abl-plot-{letter}")
                            grid = gr.Image(show_label=False, format="png", interactive=False, height=330,
                                            elem_id=f"abl-grid-{letter}", elem_classes="digits",
                                            buttons=["download", "fullscreen"])
                            arms += [head, plot, grid]
        abl_table = gr.Dataframe(label="Results", interactive=False, elem_id="abl-table", wrap=True)
        with gr.Row(equal_height=False):
            abl_heat_a = gr.Image(label="Match matrix, objective A", show_label=False, format="png", interactive=False,
                                  elem_id="abl-heat-a", buttons=["download", "fullscreen"])
            abl_heat_b = gr.Image(label="Match matrix, objective B", show_label=False, format="png", interactive=False,
                                  elem_id="abl-heat-b", buttons=["download", "fullscreen"])
        abl_verdict = gr.Markdown(elem_id="abl-verdict")
        gr.Markdown(ABLATION_TABLE_HELP, elem_classes="help")

    # --------------------------------------------------------------- D's view
    with gr.Tab("5 · D's view", id="dview") as dview_tab:
        gr.Markdown(DVIEW_HELP, elem_classes="help")
        with gr.Row(equal_height=False):
            with gr.Column(scale=5):
                dview_btn = gr.Button("Show D's view of the model in use", variant="primary", elem_id="dview-btn")
                heat = gr.Image(show_label=False, format="png", interactive=False, elem_id="dview-heat",
                                buttons=["download", "fullscreen"])
                dview_text = gr.Markdown(elem_id="dview-text")
            with gr.Column(scale=4):
                with gr.Row():
                    row = gr.Dropdown([(str(k), k) for k in range(10)], value=4, label="True digit (row)",
                                      elem_id="cell-row", min_width=100)
                    col = gr.Dropdown([(str(k), k) for k in range(10)], value=9, label="Label given to D (column)",
                                      elem_id="cell-col", min_width=100)
                    order = gr.Radio([("most accepted", "highest"), ("least accepted", "lowest")], value="highest",
                                     label="Show", elem_id="cell-order", min_width=160)
                cell_btn = gr.Button("Show these digits", elem_id="cell-btn")
                cell_text = gr.Markdown(elem_id="cell-text")
                cell_gallery = gr.Gallery(columns=5, height="auto", allow_preview=False, format="png",
                                          show_label=False, elem_id="cell-gallery")

    # ------------------------------------------------------- Style vs label
    with gr.Tab("6 · Style vs label", id="style"):
        gr.Markdown(STYLE_HELP, elem_classes="help")
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=240):
                n_styles = gr.Slider(1, 16, value=6, step=1, label="Noise vectors (rows)", elem_id="style-rows")
                style_seed = gr.Number(0, label="Seed", precision=0, minimum=0, elem_id="style-seed")
                style_btn = gr.Button("Draw the grid", variant="primary", elem_id="style-btn")
            with gr.Column(scale=6):
                style_image = gr.Image(show_label=False, format="png", interactive=False, elem_id="style-grid",
                                       elem_classes="digits", buttons=["download", "fullscreen"])
        with gr.Row(equal_height=False):
            with gr.Column(min_width=300):
                gr.Markdown("**Between two labels** (same noise vector)")
                with gr.Row():
                    lab_a = gr.Dropdown([(str(k), k) for k in range(10)], value=1, label="From", min_width=80)
                    lab_b = gr.Dropdown([(str(k), k) for k in range(10)], value=7, label="To", min_width=80)
                    lab_steps = gr.Slider(2, 16, value=9, step=1, label="Steps", min_width=120)
                    lab_seed = gr.Number(0, label="Seed", precision=0, minimum=0, min_width=80)
                lab_btn = gr.Button("Interpolate labels", elem_id="lab-btn")
                lab_image = gr.Image(show_label=False, format="png", interactive=False, elem_id="lab-strip",
                                     elem_classes="digits", height=170, buttons=["download"])
            with gr.Column(min_width=300):
                gr.Markdown("**Between two noise vectors** (same label)")
                with gr.Row():
                    noise_label = gr.Dropdown([(str(k), k) for k in range(10)], value=3, label="Label", min_width=80)
                    seed_a = gr.Number(0, label="Seed of z(a)", precision=0, minimum=0, min_width=80)
                    seed_b = gr.Number(1, label="Seed of z(b)", precision=0, minimum=0, min_width=80)
                    noise_steps = gr.Slider(2, 16, value=9, step=1, label="Steps", min_width=120)
                noise_btn = gr.Button("Interpolate noise", elem_id="noise-btn")
                noise_image = gr.Image(show_label=False, format="png", interactive=False, elem_id="noise-strip",
                                       elem_classes="digits", height=170, buttons=["download"])

    # -------------------------------------------------- Timeline and export
    with gr.Tab("7 · Timeline & export", id="timeline"):
        gr.Markdown(TIMELINE_HELP, elem_classes="help")
        with gr.Row(equal_height=False):
            with gr.Column(scale=4):
                with gr.Row():
                    fps = gr.Slider(1, 20, value=4, step=1, label="Frames per second", min_width=160)
                    gif_btn = gr.Button("Make the animation", variant="primary", elem_id="gif-btn")
                gif_image = gr.Image(show_label=False, interactive=False, elem_id="gif-image", elem_classes="digits")
                gif_file = gr.File(label="Animation (GIF)", interactive=False, elem_id="gif-file")
            with gr.Column(scale=3):
                csv_btn = gr.Button("Metric history as CSV", elem_id="csv-btn")
                csv_file = gr.File(label="History (CSV)", interactive=False, elem_id="csv-file")
                upload = gr.File(label="Upload a checkpoint (.safetensors)", file_types=[".safetensors"],
                                 type="filepath", elem_id="ckpt-upload")
                upload_btn = gr.Button("Use this checkpoint", elem_id="upload-btn")
                upload_note = gr.Markdown(elem_id="upload-note")

    # ------------------------------------------------------------------ wiring
    train_run = dict(concurrency_id="train", concurrency_limit=ctx.train_concurrency, show_progress="minimal",
                     show_progress_on=[abl_status])
    abl_outputs = [abl_status, *arms, abl_table, abl_heat_a, abl_heat_b, abl_verdict]
    abl_start.click(act.ablation, [obj_a, obj_b, abl_seconds, abl_arch, abl_seed], abl_outputs,
                    api_name="ablation", **train_run)
    abl_stop.click(act.stop, None, abl_note, api_name="ablation_stop", concurrency_limit=None, show_progress="hidden")

    dview_btn.click(act.match_matrix, None, [heat, dview_text], api_name="match_matrix", **infer)
    dview_tab.select(act.match_matrix, None, [heat, dview_text], **PRIVATE, **infer)
    cell_btn.click(act.cell_examples, [row, col, order], [cell_gallery, cell_text], api_name="cell_examples", **infer)
    heat.select(act.pick_cell, None, [row, col], **PRIVATE).then(
        act.cell_examples, [row, col, order], [cell_gallery, cell_text], **PRIVATE, **infer)

    style_btn.click(act.style_grid, [n_styles, style_seed], style_image, api_name="style_grid", **infer)
    lab_btn.click(act.label_interpolation, [lab_a, lab_b, lab_steps, lab_seed], lab_image,
                  api_name="label_interpolation", **infer)
    noise_btn.click(act.noise_interpolation, [noise_label, seed_a, seed_b, noise_steps], noise_image,
                    api_name="noise_interpolation", **infer)

    gif_btn.click(act.timeline, fps, [gif_image, gif_file], api_name="timeline", **infer)
    csv_btn.click(act.history_csv, None, csv_file, api_name="history_csv", **infer)
    upload_btn.click(act.upload_checkpoint, upload, [upload_note, using], api_name="upload_checkpoint", **infer)
