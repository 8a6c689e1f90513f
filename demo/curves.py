"""LiveCurves: a line plot for curves that are redrawn about once a second while a run trains.

gr.LinePlot goes through Vega: every update re-runs Vega's dataflow and redraws an SVG element per
point (its hover layer). On a laptop that trains and shows the page on the same cores, that CPU is
training's (README, Performance). This draws the same long-format table (step, value, curve) on a
canvas, with a text legend, a readout of the values under the pointer, and the newest values as the
canvas's text alternative. Its value, as sent to API clients, has LinePlot's shape:
{"columns", "data", "datatypes", "mark"}.
"""

from __future__ import annotations

import json
from typing import Any

import gradio as gr
import pandas as pd

# The template depends only on the plot's fixed props, so Gradio's re-render on each new value finds
# nothing to change; the script draws the value on the canvas (`watch`).
TEMPLATE = """<figure class="gc-live">
<figcaption class="gc-live-title">${title}</figcaption>
<canvas role="img" style="height:${plot_height}px"></canvas>
<div class="gc-live-tip" aria-hidden="true" hidden></div>
<div class="gc-live-legend">${legend.map(([name, colour, border]) =>
  `<span><i style="border-top: 3px ${border} ${colour}"></i>${name}</span>`).join("")}</div>
</figure>"""
CSS = """
.gc-live { margin: 0; padding: 6px 8px 8px; position: relative; }
.gc-live-title { text-align: center; font-weight: 600; font-size: var(--text-md); margin-bottom: 2px; }
.gc-live canvas { display: block; width: 100%; }
.gc-live-legend { display: flex; flex-wrap: wrap; gap: 4px 16px; justify-content: center;
                  font-size: var(--text-sm); margin-top: 4px; }
.gc-live-tip { position: absolute; top: 1.9em; left: 50%; transform: translateX(-50%); pointer-events: none;
               padding: 2px 8px; border-radius: 4px; font-size: var(--text-sm); white-space: nowrap;
               background: var(--background-fill-primary); border: 1px solid var(--border-color-primary); }
.gc-live-legend i { display: inline-block; width: 22px; margin-right: 6px; vertical-align: middle; }
"""
DRAW_JS = """
const canvas = element.querySelector("canvas"), tip = element.querySelector(".gc-live-tip");
let drawn = null;  // the last drawing's plotting area, x range and points, for the pointer's readout
const NUMBER = new Intl.NumberFormat("en", {maximumFractionDigits: 3});
function ticks(lo, hi, n) {  // about n round numbers covering [lo, hi]
  const raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map(m => m * mag).find(s => s >= raw);
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(+t.toPrecision(12));
  return out;
}
function draw() {
  const value = props.value || {}, rows = value.data || [], names = props.legend.map(l => l[0]);
  const [ix, iy, ic] = ["step", "value", "curve"].map(c => (value.columns || []).indexOf(c));
  const width = canvas.clientWidth, height = canvas.clientHeight;
  if (!width || !height) return;
  const ratio = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio); canvas.height = Math.round(height * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const style = getComputedStyle(element);
  const ink = style.getPropertyValue("--body-text-color") || "#333";
  const faint = style.getPropertyValue("--border-color-primary") || "#ddd";
  const series = new Map(names.map(n => [n, []]));
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;  // the data's ranges, then the axes'
  for (const row of rows) {
    const x = row[ix], y = row[iy], name = row[ic];  // a diverged run's NaN arrives as null: skipped
    if (!series.has(name) || !Number.isFinite(x) || !Number.isFinite(y)) continue;
    series.get(name).push([x, y]);
    x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
  }
  const newest = x1;
  if (props.x_lim) [x0, x1] = props.x_lim; else x0 = Math.min(x0, 0);  // steps count from 0
  if (!(x1 > x0)) { x0 = isFinite(x0) ? x0 : 0; x1 = x0 + 1; }
  if (!(y1 > y0)) { const m = isFinite(y0) ? y0 : 0; y0 = m - 0.5; y1 = m + 0.5; }
  if (props.y_lim) [y0, y1] = props.y_lim;
  else {  // widen the data's range to whole ticks, so both ends are labelled
    const [t0, t1] = ticks(y0, y1, 5), step = t1 - t0 || 1;
    y0 = Math.floor(y0 / step + 1e-9) * step; y1 = Math.ceil(y1 / step - 1e-9) * step;
  }
  const yt = ticks(y0, y1, 5);
  // Text a little smaller than the page's, so it grows with the presenter view's larger type.
  ctx.font = `${Math.round(0.75 * parseFloat(style.fontSize)) || 11}px ${style.fontFamily || "sans-serif"}`;
  const xt = ticks(x0, x1, Math.max(2, Math.floor(width / 90)));
  const label = t => ctx.measureText(NUMBER.format(t)).width, size = parseFloat(ctx.font);
  const box = {l: size + 18 + Math.max(...yt.map(label)), r: width - Math.max(10, label(xt[xt.length - 1]) / 2 + 2),
               t: size / 2 + 2, b: height - 2.6 * size - 8};  // the plotting area, in CSS pixels
  const X = x => box.l + (x - x0) / (x1 - x0) * (box.r - box.l);
  const Y = y => box.b - (y - y0) / (y1 - y0) * (box.b - box.t);
  ctx.lineWidth = 1; ctx.strokeStyle = faint; ctx.fillStyle = ink; ctx.setLineDash([]);
  ctx.textAlign = "right"; ctx.textBaseline = "middle";
  for (const t of yt) {
    ctx.beginPath(); ctx.moveTo(box.l, Y(t)); ctx.lineTo(box.r, Y(t)); ctx.stroke();
    ctx.fillText(NUMBER.format(t), box.l - 6, Y(t));
  }
  ctx.textAlign = "center"; ctx.textBaseline = "top";
  for (const t of xt) ctx.fillText(NUMBER.format(t), X(t), box.b + 5);
  ctx.fillText("step", (box.l + box.r) / 2, box.b + 1.4 * size + 8);
  ctx.save(); ctx.translate(2, (box.t + box.b) / 2); ctx.rotate(-Math.PI / 2);
  ctx.fillText(props.y_title, 0, 0); ctx.restore();
  ctx.save(); ctx.beginPath(); ctx.rect(box.l, box.t - 1, box.r - box.l, box.b - box.t + 2); ctx.clip();
  ctx.lineWidth = 2; ctx.lineJoin = "round";
  const said = [];
  for (const [name, colour, , dash] of props.legend) {
    const points = series.get(name);
    if (!points.length) continue;
    ctx.strokeStyle = ctx.fillStyle = colour; ctx.setLineDash(dash);
    ctx.beginPath();
    if (points.length === 1) ctx.arc(X(points[0][0]), Y(points[0][1]), 3, 0, 2 * Math.PI);  // no line yet: a dot
    points.forEach(([x, y], i) => i ? ctx.lineTo(X(x), Y(y)) : ctx.moveTo(X(x), Y(y)));
    points.length === 1 ? ctx.fill() : ctx.stroke();
    said.push(`${name} ${NUMBER.format(points[points.length - 1][1])}`);
  }
  ctx.restore();
  drawn = {box, x0, x1, series};
  const last = said.length ? ` at step ${NUMBER.format(newest)}` : "";
  canvas.setAttribute("aria-label", `${props.title}${last}: ${said.join(", ") || "no data yet"}`);
}
canvas.addEventListener("pointermove", event => {  // the values at the step under the pointer
  if (!drawn) return;
  const at = (event.clientX - canvas.getBoundingClientRect().left - drawn.box.l) / (drawn.box.r - drawn.box.l);
  const step = drawn.x0 + at * (drawn.x1 - drawn.x0), parts = [];
  let shown = null;
  for (const [name, points] of (at >= 0 && at <= 1 ? drawn.series : [])) {
    if (!points.length) continue;
    const p = points.reduce((a, b) => Math.abs(b[0] - step) < Math.abs(a[0] - step) ? b : a);
    shown = shown ?? p[0];
    parts.push(`${name} ${NUMBER.format(p[1])}`);
  }
  tip.hidden = shown === null;
  if (shown !== null) tip.textContent = `step ${NUMBER.format(shown)} · ${parts.join(" · ")}`;
});
canvas.addEventListener("pointerleave", () => { tip.hidden = true; });
new ResizeObserver(draw).observe(canvas);
watch("value", draw);
draw();
"""


class LiveCurves(gr.HTML):
    """A line plot of a long-format table (step, value, curve), one line per name in `colours`, in that
    order; `dashes` gives a curve's colour a dash pattern ("7 4": 7 px on, 4 off). Without `x_lim` or
    `y_lim` an axis spans the data.

    Send it values (or gr.skip()), not gr.update(...): in Gradio 6.31, gr.update(value=..., visible=...)
    left the plot showing "title is not defined" instead of its curves.
    """

    def __init__(self, value: Any = None, *, title: str, y_title: str, colours: dict[str, str],
                 dashes: dict[str, str] | None = None, x_lim: tuple[float, float] | None = None,
                 y_lim: tuple[float, float] | None = None, height: int = 270, **kwargs: Any):
        dashes = dashes or {}
        # [name, colour, CSS border style for the legend key, canvas dash pattern]
        legend = [[name, colour, _border(dashes.get(colour)), [int(n) for n in dashes.get(colour, "").split()]]
                  for name, colour in colours.items()]
        super().__init__(value, html_template=TEMPLATE, css_template=CSS, js_on_load=DRAW_JS, apply_default_css=False,
                         title=title, y_title=y_title, legend=legend, x_lim=list(x_lim) if x_lim else None,
                         y_lim=list(y_lim) if y_lim else None, plot_height=height, **kwargs)

    def postprocess(self, value: Any) -> Any:
        """A DataFrame becomes LinePlot's JSON shape; a dict (already in it) or None passes through."""
        if not isinstance(value, pd.DataFrame):
            return value
        return {"columns": list(value.columns), "data": json.loads(value.to_json(orient="values")),
                "datatypes": {"step": "quantitative", "value": "quantitative", "curve": "nominal"}, "mark": "line"}

    def preprocess(self, payload: Any) -> Any:
        """As an input (no event here reads a plot): the value as the page holds it."""
        return payload

    def api_info(self) -> dict[str, Any]:
        return {"type": {}, "description": "any valid json"}


def _border(dash: str | None) -> str:
    """The legend key's CSS border style for a dash pattern."""
    if not dash:
        return "solid"
    return "dotted" if int(dash.split()[0]) <= 2 else "dashed"
