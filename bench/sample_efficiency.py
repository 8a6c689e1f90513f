"""Sample efficiency: images seen until the judge reads >= 95 % of samples as their label, and until
>= 99 % with diversity >= 0.9 and D's mismatch AUC >= 0.99 — for the live G and for averages (EMA) of G.

    python -m bench.sample_efficiency --candidates preset --seeds 0 1 2 --emas --tag preset
    python -m bench.sample_efficiency --candidates baseline --seeds 0 1 2 --max-images 96000
    python -m bench.sample_efficiency --candidates baseline beta2_99 lr_g2 --seeds 0 --tag screen

Counts steps and images, not seconds, so the figures do not move with the machine. Each run builds
`Trainer(model, TrainConfig, data)` and calls `trainer.step()` itself; after every step it folds
the trained G (`trainer.live_g`) into one `gancls.ema.EMA` per --emas. Every --eval-images
images it samples 100 per digit with fixed noise (as bench/time_to_quality.py) from the live G,
from the engine's own average when the config has one (sampler "model": `trainer.model.G` after
`trainer.sync_model()`, what `gancls sample` and the app use) and from each extra average — with the averaged BN buffers ("avg") and with BN statistics recomputed
for the averaged weights ("bn") — and reads them through the judge (`evaluate_samples` against
the 10,000 test digits: label accuracy, diversity, nearest-neighbour diversity); D's mismatch AUC
on 2,000 test digits is shared by all samplers: "mismatch_auc" is the model's D (the engine's average
of D when the config has one, what Probe and `gancls eval` ask), "mismatch_auc_live" the D that trains.
The targets (issue 15): 95 % within 25,600 images, the 99 % point within 70,400 images.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import (DEFAULT_DATA_DIR, RESULTS_DIR, format_table, header_lines,
                          load_average, machine_info, write_json)


TARGET_95_IMAGES, TARGET_99_IMAGES = 25_600, 70_400
MIN_DIVERSITY, MIN_AUC = 0.9, 0.99

# The fast preset's training settings before issue 15: the base of every candidate but "preset".
OLD_FAST: dict[str, Any] = {"batch_size": 64, "lr_d": 4e-4, "lr_g": 1e-3, "beta1": 0.5, "beta2": 0.999, "ema_decay": 0.0}

# name -> changes to OLD_FAST and the fast model: "model" (ModelConfig fields), "train" (TrainConfig
# fields), "bn_momentum" (G's batch-norm momentum, set on the modules after the trainer builds them).
# "preset" is the fast preset as gancls ships it now (its averaged G is the sampler "model").
CANDIDATES: dict[str, dict[str, Any]] = {
    "preset": {"base": "preset"},
    "baseline": {},
    "beta2_99": {"train": {"beta2": 0.99}},
    "beta1_0": {"train": {"beta1": 0.0, "beta2": 0.99}},
    "lr_d1e-3": {"train": {"lr_d": 1e-3}},
    "lr_d2e-3_b2": {"train": {"lr_d": 2e-3, "beta2": 0.99}},
    "lr_d4e-3_b2": {"train": {"lr_d": 4e-3, "beta2": 0.99}},
    "lr_d2e-3_b1_0": {"train": {"lr_d": 2e-3, "beta1": 0.0, "beta2": 0.99}},
    "b32": {"train": {"batch_size": 32, "lr_d": 2e-3, "beta2": 0.99}},
    "b16": {"train": {"batch_size": 16, "lr_d": 2e-3, "beta2": 0.99}},
    "ttur": {"train": {"lr_d": 2e-3, "lr_g": 5e-4, "beta2": 0.99}},
    "wide_d": {"model": {"d_conv1": 64, "d_conv2": 128, "d_fc": 512}, "train": {"lr_d": 2e-3, "beta2": 0.99}},
    "lr_g2e-3": {"train": {"lr_g": 2e-3}},
    "lr_both2x": {"train": {"lr_d": 8e-4, "lr_g": 2e-3}},
    "bn_mom0.2": {"bn_momentum": 0.2},
    "bce": {"train": {"loss": "bce"}},
    "wide_g": {"model": {"g_fc": 512, "g_ch": 128, "g_deconv": 64}},
    "batch32": {"train": {"batch_size": 32}},
    "batch128": {"train": {"batch_size": 128, "lr_d": 5.6e-4, "lr_g": 1.4e-3}},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="folder holding MNIST/raw/")
    p.add_argument("--candidates", nargs="+", default=["baseline"], help=f"from: {', '.join(CANDIDATES)}")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="extra TrainConfig/ModelConfig/bn_momentum changes applied to every candidate")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (default 0)")
    p.add_argument("--max-images", type=int, default=TARGET_99_IMAGES, help="images per run (default 70,400)")
    p.add_argument("--eval-images", type=int, default=6_400, help="images between evaluations (default 6,400)")
    p.add_argument("--emas", nargs="*", default=["0", "0.98", "0.99@10", "0.999@5"], metavar="DECAY[@WARMUP]",
                   help="averages of G to track, e.g. 0.99@10 = decay 0.99, warm-up 10 (see gancls.ema); "
                        "0 = the live weights (ema0_bn: live G with BN statistics recomputed)")
    p.add_argument("--bn-modes", nargs="+", default=["avg", "bn"], choices=["avg", "bn"],
                   help="EMA batch norm: avg = averaged buffers, bn = recomputed for the averaged weights")
    p.add_argument("--per-label", type=int, default=100, help="samples per digit at each evaluation")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--summarize", type=Path, nargs="+", default=None, metavar="JSON",
                   help="train nothing: print one table over the runs in these result files")
    p.add_argument("--tag", default="", help="suffix of the result file name")
    p.add_argument("--out", type=Path, default=None, help="JSON path (default bench/results/sample_efficiency[_TAG].json)")
    return p.parse_args(argv)


def _parse_sets(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, _, raw = item.partition("=")
        if not raw:
            raise ValueError(f"--set wants KEY=VALUE (got {item!r})")
        for conv in (int, float):
            try:
                out[key] = conv(raw)
                break
            except ValueError:
                continue
        else:
            out[key] = raw
    return out


def _parse_emas(specs: list[str]) -> dict[str, tuple[float, int]]:
    """'0.99@10' -> {'0.99@10': (0.99, 10)}; a spec without '@' has no warm-up."""
    out = {}
    for spec in specs:
        decay, _, warmup = spec.partition("@")
        try:
            out[spec] = (float(decay), int(warmup or 0))
        except ValueError:
            raise ValueError(f"--emas wants DECAY or DECAY@WARMUP, e.g. 0.99@10 (got {spec!r})") from None
    return out


def build_configs(name: str, extra: dict[str, Any]) -> tuple[Any, Any, float | None, dict[str, Any]]:
    """ModelConfig, TrainConfig (no epoch limit), G's BN momentum (None = the model's) and the settings used."""
    from gancls.config import ModelConfig, TrainConfig, model_preset, train_preset

    if name not in CANDIDATES:
        raise ValueError(f"unknown candidate {name!r}: choose from {', '.join(CANDIDATES)}")
    spec = CANDIDATES[name]
    model_fields = {f.name for f in dataclasses.fields(ModelConfig)}
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    m_changes, t_changes = dict(spec.get("model", {})), dict(spec.get("train", {}))
    bn_momentum = spec.get("bn_momentum")
    for k, v in extra.items():
        if k == "bn_momentum":
            bn_momentum = float(v)
        elif k in model_fields:
            m_changes[k] = v
        elif k in train_fields:
            t_changes[k] = v
        else:
            raise ValueError(f"--set {k}: not a ModelConfig or TrainConfig field, nor bn_momentum")
    model_cfg = dataclasses.replace(model_preset("fast"), **m_changes)
    train_cfg = train_preset("fast", autosave_seconds=0)
    if spec.get("base") != "preset":
        train_cfg = dataclasses.replace(train_cfg, **OLD_FAST)
    if "epochs" in train_fields:  # older configs carried the budget; this bench sets its own
        t_changes.setdefault("epochs", None)
    train_cfg = dataclasses.replace(train_cfg, **t_changes)
    used = {"model": m_changes, "train": {k: v for k, v in t_changes.items() if k != "epochs"},
            "bn_momentum": bn_momentum}
    return model_cfg, train_cfg, bn_momentum, used


def _bn_batches(G: Any, noise_dim: int, n_batches: int = 8, batch: int = 256) -> list[tuple[Any, Any]]:
    """Fixed (noise, labels) batches, every digit equally often, for recomputing BN statistics."""
    import torch

    g = torch.Generator().manual_seed(7)
    labels = torch.arange(10).repeat(batch // 10 + 1)[:batch]
    return [(torch.randn(batch, noise_dim, generator=g), labels) for _ in range(n_batches)]


class Scorer:
    """Judge figures of samples against the 10,000 test digits, whose judge features are computed once.

    Same definitions as `gancls.evaluate.evaluate_samples` (label accuracy, diversity, nn_diversity),
    without re-reading the real digits at every call (5 s on one thread); `check()` compares the two.
    """

    def __init__(self, judge: Any, data: Any):
        from gancls.judge import judge_predict

        self.judge, self.data = judge, data
        self.real = judge_predict(judge, data.test_images).features  # [10000, F]

    def __call__(self, images_u8: Any, labels: Any) -> dict[str, float | None]:
        from gancls.evaluate import _nn_diversity_per_label, _spread
        from gancls.judge import judge_predict

        fake = judge_predict(self.judge, images_u8)
        real_labels = self.data.test_labels
        div = [_spread(fake.features[labels == d]) / _spread(self.real[real_labels == d]) for d in range(10)]
        nn = [r for r in _nn_diversity_per_label(fake.features, labels, self.real, real_labels) if r is not None]
        return {"label_accuracy": (fake.predictions == labels).float().mean().item(),
                "diversity": sum(div) / len(div), "nn_diversity": sum(nn) / len(nn) if nn else None}

    def check(self, images_u8: Any, labels: Any) -> dict[str, float]:
        """Largest difference from evaluate_samples on these samples (should be ~1e-6)."""
        from gancls.evaluate import evaluate_samples

        ref = evaluate_samples(images_u8, labels, self.judge, self.data.test_images, self.data.test_labels)
        mine = self(images_u8, labels)
        return {k: abs(mine[k] - ref[k]) for k in mine}


def evaluate_point(samplers: dict[str, Any], model: Any, data: Any, scorer: Scorer, per_label: int,
                   check: bool = False, live_d: Any = None) -> dict[str, Any]:
    """Judge figures per sampler (same fixed noise for all) and D's mismatch AUC on 2,000 test digits
    (also the trained D's, "mismatch_auc_live", when `live_d` is given and is not the model's D)."""
    import torch

    from gancls.evaluate import mismatch_auc
    from gancls.probe import match_scores
    from gancls.sampling import to_uint8

    noise = model.noise(10 * per_label, torch.Generator().manual_seed(123))  # as label_grid(..., seed=123)
    labels = torch.arange(10).repeat_interleave(per_label)
    out: dict[str, Any] = {}
    for name, G in samplers.items():
        was = G.training
        G.eval()
        with torch.no_grad():
            images = to_uint8(G(noise, labels))
        G.train(was)
        out[name] = scorer(images, labels)
        if check:
            out[name]["check_vs_evaluate_samples"] = scorer.check(images, labels)
    was = model.training
    model.eval()
    out["mismatch_auc"] = mismatch_auc(lambda x, y: match_scores(model, x, y), data.test_images[:2000],
                                       data.test_labels[:2000], torch.Generator().manual_seed(0))
    model.train(was)
    if live_d is not None and live_d is not model.D:
        from gancls.models import GANCLS

        trained = GANCLS(model.cfg, model.G, live_d)  # shares the networks
        out["mismatch_auc_live"] = mismatch_auc(lambda x, y: match_scores(trained, x, y), data.test_images[:2000],
                                                data.test_labels[:2000], torch.Generator().manual_seed(0))
    return out


def run_one(name: str, seed: int, a: argparse.Namespace, extra: dict[str, Any], data: Any, scorer: Scorer,
            progress: Any = None) -> dict[str, Any]:
    """Train one candidate for one seed; evaluate every --eval-images images (`progress(run so far)` after each)."""
    from gancls.ema import EMA
    from gancls.train import Trainer

    model_cfg, train_cfg, bn_momentum, used = build_configs(name, extra)
    train_cfg = dataclasses.replace(train_cfg, seed=seed)
    trainer = Trainer(model_cfg, train_cfg, data, device="cpu")
    G = trainer.live_g
    if bn_momentum is not None:
        for mod in G.modules():
            if hasattr(mod, "running_mean") and hasattr(mod, "momentum"):
                mod.momentum = bn_momentum
    emas = {spec: EMA(G, decay=d, warmup=w) for spec, (d, w) in _parse_emas(a.emas).items()}
    bn_batches = _bn_batches(G, model_cfg.noise_dim)
    b = train_cfg.batch_size
    eval_every = max(1, round(a.eval_images / b))
    total = -(-a.max_images // b)
    points, t_train, t0 = [], 0.0, time.perf_counter()

    def result() -> dict[str, Any]:
        return {"candidate": name, "seed": seed, "settings": used, "model_config": model_cfg.to_dict(),
                "train_config": train_cfg.to_dict(), "emas": a.emas, "points": points,
                "milestones": milestones(points)}

    for step in range(1, total + 1):
        trainer.step()
        for e in emas.values():
            e.update(G)
        if step % eval_every and step != total:
            continue
        t_train += time.perf_counter() - t0
        samplers: dict[str, Any] = {"live": G}
        if trainer.ema is not None:  # the engine's own average, as `gancls sample` and the app use it
            trainer.sync_model()
            samplers["model"] = trainer.model.G
        for d, e in emas.items():
            if "avg" in a.bn_modes:
                samplers[f"ema{d}_avg"] = e.model
        point = {"step": step, "images_seen": step * b, "train_seconds": round(t_train, 2)}
        if "bn" in a.bn_modes:  # after the avg samplers were evaluated the copies get fresh statistics
            res = evaluate_point(samplers, trainer.model, data, scorer, a.per_label, check=step == total,
                                 live_d=trainer.live_d)
            saved = {d: {k: v.clone() for k, v in e.model.named_buffers()} for d, e in emas.items()}
            for e in emas.values():
                e.recompute_batch_norm(bn_batches)
            res.update(evaluate_point({f"ema{d}_bn": e.model for d, e in emas.items()}, trainer.model,
                                      data, scorer, a.per_label))
            for d, e in emas.items():  # the running average continues from the averaged buffers
                for k, v in e.model.named_buffers():
                    v.copy_(saved[d][k])
        else:
            res = evaluate_point(samplers, trainer.model, data, scorer, a.per_label, check=step == total,
                                 live_d=trainer.live_d)
        point.update(res)
        points.append(point)
        live = res["live"]
        best = "model" if "model" in res else max((k for k in res if k.startswith("ema")),
                                                   key=lambda k: res[k]["label_accuracy"], default="live")
        print(f"  {name} seed {seed} step {step:5d} ({step * b:6d} img, {t_train:5.1f} s)  AUC {res['mismatch_auc']:.4f}"
              + (f" (trained D {res['mismatch_auc_live']:.4f})" if "mismatch_auc_live" in res else "") + "  "
              f"live acc {live['label_accuracy']:.3f} div {live['diversity']:.3f} nn {live['nn_diversity']:.3f}  "
              f"{best} acc {res[best]['label_accuracy']:.3f} div {res[best]['diversity']:.3f} "
              f"nn {res[best]['nn_diversity']:.3f}", flush=True)
        if progress is not None:
            progress(result())
        t0 = time.perf_counter()
    return result()


def milestones(points: list[dict[str, Any]]) -> dict[str, dict[str, int | None]]:
    """Per sampler: images seen at the first evaluation meeting 95 %, and the 99 % + div + AUC point."""
    names = [k for k in points[0] if isinstance(points[0][k], dict)] if points else []
    out: dict[str, dict[str, int | None]] = {}
    for s in names:
        first95 = next((p["images_seen"] for p in points if p[s]["label_accuracy"] >= 0.95), None)
        first99 = next((p["images_seen"] for p in points if p[s]["label_accuracy"] >= 0.99
                        and (p[s]["diversity"] or 0) >= MIN_DIVERSITY and p["mismatch_auc"] >= MIN_AUC), None)
        last = points[-1]
        out[s] = {"images_to_95": first95, "images_to_99_div_auc": first99,
                  "nn_diversity_at_end": last[s]["nn_diversity"], "accuracy_at_end": last[s]["label_accuracy"],
                  "diversity_at_end": last[s]["diversity"]}
    return out


def summary_rows(runs: list[dict[str, Any]]) -> list[list[Any]]:
    """One row per (candidate, sampler): per-seed images to each milestone and the medians."""
    rows = []
    by_cand: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by_cand.setdefault(r["candidate"], []).append(r)
    for cand, rs in by_cand.items():
        for s in [s for s in rs[0]["milestones"] if all(s in r["milestones"] for r in rs)]:  # shared samplers
            m = [r["milestones"][s] for r in rs]
            def cell(key: str) -> str:
                return " ".join("-" if x[key] is None else f"{x[key] / 1000:g}k" for x in m)
            def med(key: str) -> float | None:
                vals = [x[key] if x[key] is not None else float("inf") for x in m]
                v = statistics.median(vals)
                return None if v == float("inf") else v
            nn = [x["nn_diversity_at_end"] for x in m if x["nn_diversity_at_end"] is not None]
            rows.append([f"{cand} / {s}", cell("images_to_95"), med("images_to_95"), cell("images_to_99_div_auc"),
                         med("images_to_99_div_auc"), " ".join(f"{v:.3f}" for v in nn),
                         statistics.median(nn) if nn else None])
    return rows


def summarize(paths: list[Path]) -> int:
    """Print the milestone table over every run in `paths` (runs of one candidate are grouped)."""
    import json

    runs = []
    for path in paths:
        try:
            runs += json.loads(path.read_text())["runs"]
        except (OSError, ValueError, KeyError) as err:
            print(f"error: {path}: not a result of this bench ({err})", file=sys.stderr)
            return 2
    runs.sort(key=lambda r: (r["candidate"], r["seed"]))
    print(format_table(["candidate / sampler", "to 95 % (per seed)", "median", "to 99 %+div+AUC", "median",
                        "nn div at last eval", "median"], summary_rows(runs)))
    ends = sorted({f"{r['candidate']} {r['seed']}: {r['points'][-1]['images_seen']:,}" for r in runs if r["points"]})
    print(f"(last eval at images: {'; '.join(ends)})")
    print(f"(images seen; targets {TARGET_95_IMAGES:,} and {TARGET_99_IMAGES:,}; '-' = not reached; "
          f"seeds per candidate: {', '.join(sorted({r['candidate'] + ' ' + str(r['seed']) for r in runs}))})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run every candidate for every seed, print the table and write the JSON."""
    a = parse_args(argv)
    if a.summarize:
        return summarize(a.summarize)
    import torch

    from gancls.data import load_mnist
    from gancls.device import keep_freed_memory
    from gancls.judge import load_judge

    torch.set_num_threads(a.threads)
    keep_freed_memory()  # as `gancls train` and the other benches do
    info = machine_info()
    info["threads"] = torch.get_num_threads()
    try:
        extra = _parse_sets(a.set)
        _parse_emas(a.emas)
        for name in a.candidates:
            build_configs(name, extra)  # fail before any training on a bad name or setting
        data = load_mnist(a.data_dir, allow_download=False)
        scorer = Scorer(load_judge(), data)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out_path = a.out or RESULTS_DIR / f"sample_efficiency{'_' + a.tag if a.tag else ''}.json"
    runs: list[dict[str, Any]] = []
    payload: dict[str, Any] = {"machine": info, "settings": {k: str(v) if isinstance(v, Path) else v
                                                             for k, v in vars(a).items()},
                               "targets": {"images_to_95": TARGET_95_IMAGES, "images_to_99_div_auc": TARGET_99_IMAGES},
                               "runs": runs}
    for name in a.candidates:
        for seed in a.seeds:
            def partial(run: dict[str, Any]) -> None:  # keep each evaluation if the run is stopped
                write_json(out_path, {**payload, "runs": [*runs, run]})
            runs.append(run_one(name, seed, a, extra, data, scorer, partial))
            write_json(out_path, payload)
    info["load_average_at_end"] = load_average()
    write_json(out_path, payload)
    print()
    print("\n".join(header_lines(info)))
    print(format_table(["candidate / sampler", "to 95 % (per seed)", "median", "to 99 %+div+AUC", "median",
                        "nn div at end", "median"], summary_rows(runs)))
    print(f"(images seen; targets {TARGET_95_IMAGES:,} and {TARGET_99_IMAGES:,}; '-' = not reached)")
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
