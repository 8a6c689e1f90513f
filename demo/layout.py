"""The page: lays out the three tabs and wires each control to its adapter. No logic lives here."""

from __future__ import annotations

import gradio as gr

from gancls.config import ARCHES, LOSSES, OBJECTIVES, train_preset

from .adapters import MAX_PER_LABEL, Actions
from .components import DigitImage, WholeNumber
from .context import AppContext
from .teach_layout import build_teach_tabs
from .views import upscale, using_text

INTRO = """# GAN-CLS: a GAN that draws the digit you ask for
A **generator** G turns random noise plus a label (0–9) into a handwritten digit; a **matching-aware
discriminator** D looks at an image *and* a label and scores how likely it is to be a real digit that
shows that label. D learns from three kinds of pairs — real digit with its right label, generated digit
with its label, and real digit with a *wrong* label (GAN-CLS, Reed et al. 2016) — so G must draw the
right digit, not just a plausible one. **Train** a model live, **Generate** digits with it, and
**Probe** what its discriminator believes."""

TRAIN_HELP = """**Reading the curves.** D is rewarded for saying *real & matching* (1) only for real digits with
their right label. Early on D(real, right) climbs while D(fake, right) and D(real, wrong) fall; as G
improves, D(fake, right) creeps back up. Curves that flatten at 0 or 1 for long mean one side has won."""

PRIVATE = {"api_visibility": "private"}
GRID_HELP = """**Fixed-noise samples.** Same noise at every update: row *r* is label *r*, each column one
noise vector (one handwriting style), so you see each style learn to draw every digit."""
GEN_HELP = """Each row is one chosen label, each column one noise vector. With **same noise for every label**
column *j* uses one noise vector for all rows, so you see one handwriting style across digits."""
PROBE_HELP = """Pick a real test digit (its real label is shown), press **Random digit**, draw one, or upload an
image. D scores the image against the chosen label: **high = "a real digit that matches this label"**,
low = a fake-looking image or a different digit. The bar chart shows D's score for all ten labels."""


def build_demo(ctx: AppContext) -> gr.Blocks:
    """The Gradio Blocks app over a loaded AppContext."""
    act = Actions(ctx)
    defaults = train_preset("fast")
    idle_status, idle_loss, idle_d = ctx.idle_views()
    first_digit, first_real, first_label, first_score, first_bars = act.first_probe()
    infer = dict(concurrency_id="infer", concurrency_limit=4)
    with gr.Blocks(title="GAN-CLS digits", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(INTRO, elem_id="intro")
        using = gr.Markdown(using_text(None, ctx.pretrained_note), elem_id="using")
        with gr.Tabs():
            # ------------------------------------------------------------------ Train
            with gr.Tab("1 · Train", id="train"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=2, min_width=260, elem_id="settings"):
                        with gr.Row():
                            train_btn = gr.Button("Train", variant="primary", elem_id="train-btn", min_width=80)
                            stop_btn = gr.Button("Stop", variant="stop", elem_id="stop-btn", min_width=80)
                        with gr.Row():
                            resume_btn = gr.Button("Resume", elem_id="resume-btn", min_width=80)
                            reset_btn = gr.Button("Reset", elem_id="reset-btn", min_width=80)
                        restore_btn = gr.Button("Restore your last run", visible=False, elem_id="restore-btn")
                        # The session's run id, kept in the browser so a reload can offer to restore the run.
                        last_run = gr.BrowserState(None, storage_key="gancls-last-run", secret=ctx.browser_secret)
                        note = gr.Markdown(elem_id="train-note")
                        download = gr.DownloadButton("Download your checkpoint", visible=False, elem_id="download-btn")
                        seconds = gr.Number(60, label="Time budget (s)", minimum=0, info="0 = no time limit")
                        epochs = gr.Number(0, label="Epochs", minimum=0, info="0 = no epoch limit")
                        arch = gr.Dropdown(list(ARCHES), value="fast", label="Model size (preset)",
                                           info="fast: laptop CPU · small: tiny · seed: the TF-1 original")
                        device = gr.Dropdown(ctx.device_choices(), value="auto", label="Device", info=ctx.device_note())
                        data_source = gr.Radio(ctx.data_choices(), value=ctx.data_choices()[0][1], label="Training data")
                        with gr.Accordion("More settings", open=False):
                            batch_size = WholeNumber(defaults.batch_size, label="Batch size", precision=0, minimum=1)
                            lr_d = gr.Number(defaults.lr_d, label="D learning rate")
                            lr_g = gr.Number(defaults.lr_g, label="G learning rate")
                            seed = WholeNumber(0, label="Seed", precision=0, minimum=0)
                            objective = gr.Dropdown(list(OBJECTIVES), value="gan-cls", label="Objective",
                                                    info="gan-cls: with wrong-label pairs · plain: without · "
                                                         "seed: as the original")
                            loss = gr.Dropdown(list(LOSSES), value="lsgan", label="Loss")
                            max_steps = WholeNumber(0, label="Max steps", precision=0, minimum=0, info="0 = no step limit")
                    with gr.Column(scale=5, min_width=360):
                        status = gr.HTML(idle_status, elem_id="status")
                        loss_plot = gr.LinePlot(idle_loss, x="step", y="value", color="curve", title="Losses", height=270,
                                                label="Losses", show_label=False,
                                                color_map={"D loss": "#4f46e5", "G loss": "#f59e0b"},
                                                elem_id="loss-plot", y_title="loss (batch sum)")
                        d_plot = gr.LinePlot(idle_d, x="step", y="value", color="curve", title="Discriminator outputs",
                                             label="Discriminator outputs", show_label=False,
                                             height=270, y_lim=[0, 1], elem_id="d-plot", y_title="mean D score",
                                             color_map={"D(real, right label)": "#16a34a", "D(fake, right label)": "#f59e0b",
                                                        "D(real, wrong label)": "#dc2626"})
                        gr.Markdown(TRAIN_HELP, elem_classes="help")
                    with gr.Column(scale=4, min_width=300):
                        gr.Markdown(GRID_HELP, elem_classes="help")
                        grid = gr.Image(show_label=False, format="png", interactive=False,
                                        elem_id="train-grid", buttons=["download", "fullscreen"])
            # --------------------------------------------------------------- Generate
            with gr.Tab("2 · Generate", id="generate"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=2, min_width=260):
                        labels = gr.CheckboxGroup([(str(k), k) for k in range(10)], value=list(range(10)),
                                                  label="Labels", elem_id="gen-labels")
                        per_label = gr.Slider(1, MAX_PER_LABEL, value=8, step=1, label="Samples per label")
                        gen_seed = WholeNumber(0, label="Seed", precision=0, minimum=0)
                        same_noise = gr.Checkbox(False, label="Same noise for every label")
                        gen_btn = gr.Button("Generate", variant="primary", elem_id="gen-btn")
                        gen_file = gr.File(label="Grid as PNG", interactive=False, elem_id="gen-file")
                        gr.Markdown(GEN_HELP, elem_classes="help")
                    with gr.Column(scale=5):
                        gen_image = gr.Image(show_label=False, format="png", interactive=False,
                                             elem_id="gen-image", buttons=["download", "fullscreen"])
            # ------------------------------------------------------------------ Probe
            with gr.Tab("3 · Probe", id="probe"):
                gr.Markdown(PROBE_HELP, elem_classes="help")
                gr.Markdown("One digit at a time here; tab **5 · D's view** shows D's score for every digit "
                            "against every label at once.", elem_classes="help", elem_id="probe-to-dview")
                with gr.Row(equal_height=False):
                    with gr.Column(scale=5):
                        with gr.Tabs():
                            with gr.Tab("MNIST test digits"):
                                gallery = gr.Gallery([(upscale(d, 3), f"label {k}") for d, k, _ in ctx.gallery],
                                                     columns=10, height="auto", allow_preview=False, format="png",
                                                     show_label=False, elem_id="gallery")
                                random_btn = gr.Button("Random digit", elem_id="random-btn")
                            with gr.Tab("Draw"):
                                sketch = gr.Sketchpad(canvas_size=(280, 280), fixed_canvas=True, layers=False,
                                                      brush=gr.Brush(default_size=12, colors=["#000000"],
                                                                     color_mode="fixed"),
                                                      label="Pick the brush, then draw one digit, large", elem_id="sketch")
                                draw_btn = gr.Button("Probe this drawing", elem_id="draw-btn")
                    with gr.Column(scale=4):
                        with gr.Row(equal_height=False):
                            probe_image = DigitImage(first_digit, label="Image to probe",
                                                     type="filepath", image_mode=None, format="png",
                                                     sources=["upload", "clipboard"], height=200, elem_id="probe-image")
                            seen = gr.Image(first_digit, label="D sees (28×28)", format="png", interactive=False,
                                            height=200, elem_id="probe-seen")
                        real = gr.Markdown(first_real, elem_id="real-label")
                        label = gr.Radio([(str(k), k) for k in range(10)], value=first_label, label="Label to test",
                                         elem_id="probe-label")
                        probe_btn = gr.Button("Probe", variant="primary", elem_id="probe-btn")
                        score = gr.Markdown(first_score, elem_id="probe-score")
                        bars = gr.BarPlot(first_bars, x="label", y="score", color="which", y_lim=[0, 1],
                                          title="D's score for every label", label="D's scores",
                                          show_label=False, height=290, sort=None,
                                          color_map={"chosen label": "#4f46e5", "other labels": "#a5b4fc"},
                                          elem_id="probe-bars")
                        with gr.Accordion("Scores as numbers", open=False):
                            raw = gr.JSON(elem_id="probe-raw")
            build_teach_tabs(ctx, using)  # 4 Ablation, 5 D's view, 6 Style vs label, 7 Timeline & export
        index = gr.Number(visible=False)

        # --------------------------------------------------------------- wiring
        run_outputs = [status, loss_plot, d_plot, grid, using, download, note]
        train_run = dict(concurrency_id="train", concurrency_limit=ctx.train_concurrency,
                         show_progress="full", show_progress_on=[status])
        train_btn.click(act.train, [device, data_source, seconds, epochs, max_steps, arch, batch_size, lr_d, lr_g,
                                    seed, objective, loss], run_outputs, api_name="train", **train_run)
        resume_btn.click(act.resume, [seconds, epochs, max_steps], run_outputs, api_name="resume", **train_run)
        stop_btn.click(act.stop, None, note, api_name="stop", concurrency_limit=None, show_progress="hidden")
        reset_btn.click(act.reset, None, run_outputs, api_name="reset", concurrency_limit=None)
        download.click(act.download, None, download, api_name="download", concurrency_limit=None)
        arch.input(act.preset, arch, [batch_size, lr_d, lr_g], api_visibility="private")
        demo.load(act.using, None, using, api_name="using", concurrency_limit=None)
        demo.unload(act.unload)
        demo.load(act.restore_offer, last_run, restore_btn, api_visibility="private", concurrency_limit=None)
        for btn in (train_btn, resume_btn):
            btn.click(act.remember, None, last_run, api_visibility="private", concurrency_limit=None)
        restore_btn.click(act.restore, last_run, [*run_outputs, restore_btn, last_run], api_name="restore",
                          concurrency_limit=2)

        gen_btn.click(act.generate, [labels, per_label, gen_seed, same_noise], [gen_image, gen_file],
                      api_name="generate", **infer)

        probe_outputs = [score, bars, seen]

        def probe_on(listener, **names) -> None:
            # Every way of choosing an image or a label ends with D's scores on the right.
            listener(act.probe, [probe_image, label], probe_outputs, **names.get("probe", PRIVATE), **infer).then(
                act.label_scores, probe_image, raw, **names.get("scores", PRIVATE), **infer)

        # The button first, so that its events get the plain API names.
        probe_on(probe_btn.click, probe=dict(api_name="probe"), scores=dict(api_name="label_scores"))
        picked = [probe_image, real, label]
        chosen = gallery.select(act.select_index, None, index, api_visibility="private").then(
            act.gallery_digit, index, picked, api_name="gallery_digit", **infer)
        probe_on(chosen.then)
        probe_on(random_btn.click(act.random_digit, None, picked, api_name="random_digit", **infer).then)
        probe_on(draw_btn.click(act.use_drawing, sketch, [probe_image, real], api_name="use_drawing", **infer).then)
        probe_on(probe_image.upload(act.uploaded, None, real, api_visibility="private").then)
        probe_on(label.input)
    return demo
