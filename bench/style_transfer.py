"""Style transfer with the style encoder S: does content follow the label and style the source?

    python -m bench.style_transfer --data-dir ../shared/data

Sources are real MNIST test digits (a seeded draw of --sources from the full test set, else the
embedded subset's 1,000). For each source x of label y, S(x) is its style; the figures:

(a) content follows label: G(S(x), y') for all ten y', the share the judge reads as y'.
(b) style follows source: d0 = ‖f(G(S(x), y)) − f(x)‖ in the judge's penultimate features f,
    against dk = ‖f(G(z_k, y)) − f(x)‖ for K random z_k ~ N(0, I). The target figure is the share
    of the N × K pairs (x, z_k) with d0 < dk: how often the transfer is closer to x than a random
    rendering. Also reported: the share of sources with d0 below the median dk, and below every dk.
(c) style survives a label change: stroke thickness (2 × ink area ÷ ink outline, pixels >= 128,
    i.e. width of a stroke whose length is half its outline) and slant (ink-weighted shear
    μ11/μ02, as MNIST deskewing uses), each standardised within its digit class (source class for
    x, target class for renderings) so that "a 1 has less ink than an 8" does not count; then
    the Pearson correlation across all (x, y' ≠ y) pairs between x's value and G(S(x), y')'s.
    The same with random z instead of S(x) is the no-transfer baseline (should be near 0).

S is the checkpoint's own (--encoder checkpoint), or trained fresh here (--encoder fresh) for
each --recon-weights value, timed with each of --time-threads torch threads.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import (
    DEFAULT_DATA_DIR,
    REPO_ROOT,
    RESULTS_DIR,
    format_table,
    header_lines,
    load_average,
    machine_info,
    verdict,
    write_json,
)


TARGETS = {"content_accuracy": 0.97, "beats_random": 0.90}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, default=REPO_ROOT / "checkpoints" / "pretrained")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="folder holding MNIST/raw/")
    p.add_argument("--encoder", choices=("checkpoint", "fresh"), default="checkpoint",
                   help="use the checkpoint's S, or train one here per --recon-weights value")
    p.add_argument("--recon-weights", default="0,10", help="with --encoder fresh: comma-separated pixel-term weights")
    p.add_argument("--steps", type=int, default=None, help="with --encoder fresh: training steps (default: library's)")
    p.add_argument("--time-threads", default="2,1", help="with --encoder fresh: thread counts to time training with")
    p.add_argument("--sources", type=int, default=1000, help="real test digits used as style sources")
    p.add_argument("--random-k", type=int, default=10, help="random-z renderings per source for (b)")
    p.add_argument("--seed", type=int, default=0, help="seed for the source draw and the random z")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "style_transfer.json")
    return p.parse_args(argv)


def thickness(images: Any) -> Any:
    """Stroke width [N] of uint8 digits [N, 28, 28]: 2 × ink area ÷ ink outline (4-neighbour edges)."""
    import torch

    ink = (images >= 128).float()  # [N, 28, 28]
    pad = torch.nn.functional.pad(ink, (1, 1, 1, 1))  # [N, 30, 30]
    edges = sum((ink * (1 - pad[:, 1 + dy:29 + dy, 1 + dx:29 + dx])).sum((1, 2))  # ink pixel, background neighbour
                for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)))
    return 2 * ink.sum((1, 2)) / edges.clamp(min=1)


def slant(images: Any) -> Any:
    """Shear [N] of uint8 digits [N, 28, 28]: μ11 / μ02 of the ink (x moves this much per row)."""
    import torch

    w = images.double()  # [N, 28, 28]
    ys, xs = torch.meshgrid(torch.arange(28.0, dtype=torch.float64), torch.arange(28.0, dtype=torch.float64), indexing="ij")
    m = w.sum((1, 2)).clamp(min=1e-9)
    cy, cx = (w * ys).sum((1, 2)) / m, (w * xs).sum((1, 2)) / m
    dy, dx = ys - cy.view(-1, 1, 1), xs - cx.view(-1, 1, 1)
    return (w * dx * dy).sum((1, 2)) / (w * dy * dy).sum((1, 2)).clamp(min=1e-9)


def standardise(v: Any, groups: Any) -> Any:
    """v [N] z-scored within each group label [N]."""
    v = v.double()
    out = v.clone()
    for g in groups.unique():
        sel = groups == g
        out[sel] = (v[sel] - v[sel].mean()) / v[sel].std().clamp(min=1e-9)
    return out


def pearson(a: Any, b: Any) -> float:
    """Pearson correlation of two [N] tensors."""
    a, b = a.double() - a.double().mean(), b.double() - b.double().mean()
    return float((a * b).sum() / (a.norm() * b.norm()).clamp(min=1e-12))


def measure(model: Any, encoder: Any, judge: Any, x: Any, y: Any, k: int, seed: int) -> dict[str, Any]:
    """Figures (a), (b) and (c) for sources x uint8 [N, 28, 28] with labels y [N]."""
    import torch

    from gancls.encoder import render, style_of
    from gancls.judge import judge_predict

    n = len(x)
    z = style_of(encoder, x)  # [N, noise_dim]
    targets = torch.arange(10).repeat(n)  # [N*10]: source i, label j at i*10 + j
    out = render(model, z.repeat_interleave(10, 0), targets)  # [N*10, 28, 28]
    pred = judge_predict(judge, out).predictions
    acc = float((pred == targets).float().mean())
    other = targets != y.repeat_interleave(10)
    acc_other = float((pred[other] == targets[other]).float().mean())

    # (b): reconstruction G(S(x), y) vs K random renderings of the same label
    g = torch.Generator().manual_seed(seed)
    same = out.view(n, 10, 28, 28)[torch.arange(n), y]  # [N, 28, 28]
    rand = render(model, model.noise(n * k, g), y.repeat_interleave(k))  # [N*K, 28, 28]
    fx, fs = judge_predict(judge, x).features, judge_predict(judge, same).features
    fr = judge_predict(judge, rand).features.view(n, k, -1)
    d0 = (fs - fx).norm(dim=1)  # [N]
    dk = (fr - fx.unsqueeze(1)).norm(dim=2)  # [N, K]
    pix0 = (same.float() - x.float()).div(255).square().mean((1, 2))
    pixk = (rand.view(n, k, 28, 28).float() - x.float().unsqueeze(1)).div(255).square().mean((2, 3))

    # (c): thickness and slant of x against those of G(S(x), y') for y' != y, and the random-z baseline
    transfer = out[other]  # [N*9, 28, 28]
    src_idx = torch.arange(n).repeat_interleave(10)[other]
    base = render(model, model.noise(n, g).repeat_interleave(10, 0), targets)[other]
    corr = {}
    for name, fn in (("thickness", thickness), ("slant", slant)):
        sv = standardise(fn(x), y)[src_idx]
        corr[name] = round(pearson(sv, standardise(fn(transfer), targets[other])), 4)
        corr[f"{name}_random_z_baseline"] = round(pearson(sv, standardise(fn(base), targets[other])), 4)
        corr[f"{name}_same_label"] = round(pearson(standardise(fn(x), y), standardise(fn(same), y)), 4)
    return {
        "content_accuracy": round(acc, 4),
        "content_accuracy_other_labels": round(acc_other, 4),
        "content_accuracy_per_label": [round(float((pred[targets == j] == j).float().mean()), 4) for j in range(10)],
        "beats_random": round(float((d0.unsqueeze(1) < dk).float().mean()), 4),
        "beats_all_random": round(float((d0 < dk.min(1).values).float().mean()), 4),
        "beats_median_random": round(float((d0 < dk.median(1).values).float().mean()), 4),
        "feature_distance_transfer_median": round(float(d0.median()), 3),
        "feature_distance_random_median": round(float(dk.median()), 3),
        "pixel_mse_transfer_mean": round(float(pix0.mean()), 4),
        "pixel_mse_random_mean": round(float(pixk.mean()), 4),
        "correlation": corr,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from gancls.checkpoint import load_checkpoint
    from gancls.data import load_embedded, load_mnist
    from gancls.encoder import EncoderTrainConfig, latent_error, train_encoder
    from gancls.judge import load_judge

    info = machine_info(argv if argv is not None else sys.argv)
    ckpt = load_checkpoint(args.checkpoint)
    model = ckpt.model.eval()
    judge = load_judge()
    if (args.data_dir / "MNIST" / "raw").is_dir():
        data, note = load_mnist(args.data_dir, allow_download=False), None
    else:
        data, note = load_embedded(), f"{args.data_dir} has no MNIST: the embedded subset's test digits"
        print(f"note: {note}", file=sys.stderr)
    g = torch.Generator().manual_seed(args.seed)
    pick = torch.randperm(len(data.test_labels), generator=g)[:args.sources]
    x, y = data.test_images[pick], data.test_labels[pick]

    runs = []
    if args.encoder == "checkpoint":
        if ckpt.encoder is None:
            print(f"error: {args.checkpoint} has no style encoder; use --encoder fresh", file=sys.stderr)
            return 2
        runs.append({"encoder": "checkpoint", **ckpt.encoder.info, "enc": ckpt.encoder})
    else:
        real = (data.train_images, data.train_labels)
        for w in [float(v) for v in args.recon_weights.split(",")]:
            cfg = EncoderTrainConfig(recon_weight=w, **({"steps": args.steps} if args.steps else {}))
            times = {}
            for t in [int(v) for v in args.time_threads.split(",")]:
                torch.set_num_threads(t)
                t0, c0 = time.perf_counter(), time.process_time()
                enc = train_encoder(model, cfg, real=real if w > 0 else None)
                times[f"train_seconds_{t}_threads"] = round(time.perf_counter() - t0, 2)
                times[f"train_cpu_seconds_{t}_threads"] = round(time.process_time() - c0, 2)
            runs.append({"encoder": f"fresh, recon_weight {w:g}", "train_config": cfg.__dict__, **times, "enc": enc})
    torch.set_num_threads(1)
    for r in runs:
        enc = r.pop("enc")
        r["latent_mse_on_G_samples"] = round(latent_error(model, enc), 5)
        t0 = time.perf_counter()
        r.update(measure(model, enc, judge, x, y, args.random_k, args.seed))
        r["measure_seconds"] = round(time.perf_counter() - t0, 1)

    info["load_average_at_end"] = load_average()
    print("\n".join(header_lines(info)))
    print(f"sources : {len(x)} test digits from {data.description}; K = {args.random_k} random z per source")
    rows = [[r["encoder"], r.get("train_seconds_2_threads"), r.get("train_seconds_1_threads"), r["latent_mse_on_G_samples"],
             r["content_accuracy"], r["beats_random"], r["beats_median_random"], r["beats_all_random"],
             r["correlation"]["thickness"],
             r["correlation"]["slant"], r["correlation"]["thickness_random_z_baseline"],
             r["correlation"]["slant_random_z_baseline"]] for r in runs]
    print(format_table(["encoder", "train s (2 thr)", "train s (1 thr)", "latent mse", "(a) content acc",
                        "(b) beats random", "beats median", "beats all K", "(c) r thick", "r slant", "r thick (rand z)",
                        "r slant (rand z)"], rows))
    for r in runs:
        print(f"{r['encoder']}: (a) {verdict(r['content_accuracy'], TARGETS['content_accuracy'])}, "
              f"(b) {verdict(r['beats_random'], TARGETS['beats_random'])}")
    payload = {"machine": info, "checkpoint": str(args.checkpoint), "data": data.description, "data_note": note,
               "sources": len(x), "random_k": args.random_k, "targets": TARGETS, "runs": runs}
    print(f"wrote {write_json(args.out, payload)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
