"""Training throughput (images/s, steady state) of gancls against the TF-1 reference, and GFLOP/s headroom.

    python -m bench.throughput --data-dir ../shared/data --device cpu --reference

An image = one real image of the batch (as the reference counts). gancls is timed through the
engine's per-step API: `Trainer.step()` in a loop, summing the returned metrics on the device
and reading them to the host (`.tolist()`) every --sync-every steps or 0.5 s, as `Trainer.run()`
does. Every side runs in short slices, the sides take turns within each round and the order
flips every round, and the table reports the median per side over the rounds, because the
machine is shared and its load drifts. Round 0 is gancls warm-up only (not reported); every
slice also starts with a few untimed steps; the reference drops its own first 10 % of steps.

Besides wall-clock images/s, every side reports images per CPU-second of its process (all
threads): on a loaded machine that figure moves much less than wall time does, and images/s on
an idle machine is at most threads x images per CPU-second.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import (DEFAULT_DATA_DIR, RESULTS_DIR, format_table, header_lines,
                          load_average, machine_info, median, verdict, write_json)


# (arch, batch size): the seed at its own batch and at 64, and the default preset.
CONFIGS = (("seed", 10), ("seed", 64), ("fast", 64))
TARGETS = {10: 3.0, 64: 1.5}  # gancls seed / reference, per batch size
# The engine as it is (fp32, big matmuls on oneDNN); the same with torch's own fp32 matmul (MKL
# sgemm), for the gain; and bf16 autocast (precision="bf16": different numerics, a separate row).
VARIANTS = ("engine", "mkl", "bf16")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="folder holding MNIST/raw/")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--configs", default=",".join(f"{a}:{b}" for a, b in CONFIGS),
                   help="comma-separated ARCH:BATCH to time (default %(default)s; e.g. fast:32,fast:256 on a GPU)")
    p.add_argument("--threads", default="1,2", help="comma-separated torch CPU thread counts to measure (default 1,2)")
    p.add_argument("--variants", default=",".join(VARIANTS),
                   help="gancls variants: engine (as it is), mkl (fp32 matmuls on torch's MKL sgemm instead of oneDNN), "
                        "bf16 (precision=bf16 autocast); default all three")
    p.add_argument("--rounds", type=int, default=3, help="measured rounds, after one gancls warm-up round (default 3)")
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per gancls slice (default 3)")
    p.add_argument("--warmup-steps", type=int, default=5, help="untimed steps at the start of every slice (default 5)")
    p.add_argument("--sync-every", type=int, default=20, help="steps between host reads, as the engine's metrics_every")
    p.add_argument("--reference", action="store_true", help="also run the TF-1 reference, interleaved")
    p.add_argument("--setup-reference", action="store_true", help="create the reference venv if it is missing")
    p.add_argument("--reference-steps", type=int, default=100,
                   help="reference iterations per round and batch size (its first 10%% are warm-up; default 100)")
    p.add_argument("--reference-threads", default="default,1",
                   help="TF intra/inter-op thread settings to run, comma-separated: 'default' (TF's own "
                        "choice, all cores: the ratio is taken against this one) and/or numbers (default: default,1)")
    p.add_argument("--reference-venv", type=Path, default=Path("/tmp/tfvenv"), help="the TensorFlow venv")
    p.add_argument("--matmul-size", type=int, default=1024, help="n of the n x n fp32 torch.mm peak probe")
    p.add_argument("--profile", action="store_true",
                   help="at the end, profile 30 steps of seed at b10 and b64 (each variant, 1 thread); print the top ops")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "throughput.json", help="where to write the JSON")
    return p.parse_args(argv)


# ------------------------------------------------------------------ arithmetic
def layer_macs(cfg: Any) -> tuple[dict[str, int], dict[str, int]]:
    """Multiply-adds per image of each G and D layer's forward pass, from the layer shapes in models.py."""
    k, nz = cfg.num_classes, cfg.noise_dim
    g = {
        "fc1": (k + nz) * cfg.g_fc,
        "fc2": cfg.g_fc * 7 * 7 * cfg.g_ch,
        "up1": 7 * 7 * cfg.g_ch * cfg.g_deconv * 16,  # each input pixel scatters a 4x4 kernel
        "up2": 14 * 14 * cfg.g_deconv * 1 * 16,
    }
    d = {
        "label_map": k * 28 * 28,
        "conv1": 14 * 14 * cfg.d_conv1 * 2 * 16,
        "conv2": 7 * 7 * cfg.d_conv2 * cfg.d_conv1 * 16,
        "fc": 7 * 7 * cfg.d_conv2 * cfg.d_fc,
        "out": cfg.d_fc,
    }
    return g, d


def analytic_macs(cfg: Any) -> dict[str, Any]:
    """Multiply-adds per image per iteration, for gancls's step and for the TF-1 reference's graph.

    gancls  D step: G fwd (no grad) + D fwd on 3 stacked batches + D bwd (weight and input grads, 2x)
            G step: G fwd + D fwd on 1 batch + D bwd for input grads only (backward(inputs=G params)
            skips D's weight grads, 1x) + G bwd (2x).
    TF-1    D step: the same. G step: loss_g comes from the split of D on all 3 stacked batches, so
            D's forward and its input-grad backward run on 3 batches (the two unused thirds get zero
            grads); TF prunes D's weight grads. Biases, batch norm and activations are not counted.
    """
    g, d = layer_macs(cfg)
    G, D = sum(g.values()), sum(d.values())
    d_step = G + 3 * D + 2 * 3 * D
    ours_g_step = G + D + D + 2 * G
    ref_g_step = G + 3 * D + 3 * D + 2 * G
    return {"G_forward": G, "D_forward": D, "G_layers": g, "D_layers": d,
            "gancls": {"d_step": d_step, "g_step": ours_g_step, "total": d_step + ours_g_step},
            "reference": {"d_step": d_step, "g_step": ref_g_step, "total": d_step + ref_g_step}}


def weight_traffic(trainer: Any) -> float:
    """Bytes of weight-sized memory traffic per iteration (fp32), a lower bound the step cannot beat.

    Adam reads parameter, gradient and both moments and writes three of them back: 28 B per
    parameter, every parameter, every iteration. On top of that each big fc weight (everything but
    convs and biases) is streamed by its matmuls: D's is read by the D-step forward and input-grad
    products and the G-step forward and input-grad products, and its gradient written once (5
    passes); G's is read by the no-grad forward, the G-step forward and input-grad products, and its
    gradient written once (4 passes). At batch 10 this traffic, not arithmetic, sets the step time.
    """
    from gancls.linear import Linear

    params = sum(p.numel() for p in trainer.model.parameters())
    fc = {"D": 0, "G": 0}
    for part in ("D", "G"):
        fc[part] = sum(m.weight.numel() for m in getattr(trainer.model, part).modules() if isinstance(m, Linear))
    return 28.0 * params + 4.0 * (5 * fc["D"] + 4 * fc["G"])


def memory_gbps(mb: int = 256, seconds: float = 0.5) -> float:
    """Bytes moved per second (read + write) by copying an fp32 tensor of `mb` MiB, with the current threads."""
    import torch

    a = torch.randn(mb * 2**20 // 4)
    b = torch.empty_like(a)
    b.copy_(a)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        b.copy_(a)
        reps += 1
    return 2 * a.numel() * 4 * reps / (time.perf_counter() - t0) / 1e9


def counted_flops(trainer: Any) -> float:
    """FLOPs per image of one real `trainer.step()`, counted by torch's FlopCounterMode (matmuls and convs).

    FlopCounterMode does not know oneDNN's linear op, so the step is counted with torch's own
    matmul (the same products); the layers are switched back afterwards.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from gancls.linear import Linear

    layers = [m for m in trainer.model.modules() if isinstance(m, Linear)]
    paths = [m.onednn for m in layers]
    for m in layers:
        m.onednn = False
    try:
        with FlopCounterMode(display=False) as counter:
            trainer.step().tolist()
    finally:
        for m, path in zip(layers, paths):
            m.onednn = path
    return counter.get_total_flops() / trainer.cfg.batch_size


# ------------------------------------------------------------------- measures
def parse_configs(text: str) -> list[tuple[str, int]]:
    """'seed:10,fast:32' -> [('seed', 10), ('fast', 32)] (ValueError names a bad item)."""
    from gancls.config import model_preset

    out = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        arch, _, batch = item.partition(":")
        if not batch.isdigit() or int(batch) < 2:
            raise ValueError(f"--configs wants ARCH:BATCH items, e.g. fast:32 (got {item!r})")
        model_preset(arch)  # a ConfigError (a ValueError) for an unknown arch
        out.append((arch, int(batch)))
    if not out:
        raise ValueError("--configs names no ARCH:BATCH")
    return out


def make_trainer(arch: str, batch: int, variant: str, data: Any, device: str) -> Any:
    """A Trainer for one row. Same seed everywhere, so every variant starts from the same weights and data order."""
    from gancls.config import model_preset, train_preset
    from gancls.linear import Linear
    from gancls.train import Trainer

    precision = "bf16" if variant == "bf16" else "fp32"
    trainer = Trainer(model_preset(arch), train_preset(arch, batch_size=batch, precision=precision), data, device=device)
    if variant == "mkl":
        for layer in trainer.model.modules():
            if isinstance(layer, Linear):
                layer.onednn = False
    return trainer


def gancls_slice(trainer: Any, seconds: float, warmup: int, sync_every: int,
                 sync_seconds: float = 0.5) -> tuple[float, float, int]:
    """(images/s, images per CPU-second, steps) of `trainer.step()` over about `seconds`, after warm-up.

    Host reads as in Trainer.run(): every `sync_every` steps or `sync_seconds`, whichever comes first.
    """
    t_warm = time.perf_counter()
    for _ in range(warmup):
        out = trainer.step()
        if time.perf_counter() - t_warm > 1.0:  # a slow setting (threads fighting): warm up by time
            break
    out.tolist()
    steps, window, sums = 0, 0, None
    t0, c0 = time.perf_counter(), time.process_time()
    t_read = t0
    while True:
        values = trainer.step()  # [5] on the device
        sums = values if sums is None else sums + values  # as the engine's metrics window
        steps += 1
        window += 1
        if window >= sync_every or time.perf_counter() - t_read >= sync_seconds:
            sums.tolist()  # the one host sync per window
            sums, window, t_read = None, 0, time.perf_counter()
            if t_read - t0 >= seconds:
                break
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    images = steps * trainer.cfg.batch_size
    return images / wall, images / cpu, steps


def matmul_gflops(n: int, seconds: float = 0.5) -> dict[str, float]:
    """fp32 GFLOP/s (wall and per CPU-second) of n x n matmul with the current threads: torch.mm and oneDNN.

    torch.mm goes to MKL's sgemm; oneDNN (which PyTorch uses for convolutions, and TensorFlow for
    its matmuls) is timed through torch's mkldnn_linear on mkldnn tensors, for the CPU's real peak.
    """
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    am, bm = a.to_mkldnn(), b.to_mkldnn()
    out = {}
    for name, fn in (("mm", lambda: torch.mm(a, b)), ("onednn", lambda: torch._C._nn.mkldnn_linear(am, bm, None))):
        fn()
        reps, t0, c0 = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - t0 < seconds:
            fn()
            reps += 1
        flop = 2 * n**3 * reps / 1e9
        out[f"{name}_wall"] = flop / (time.perf_counter() - t0)
        out[f"{name}_per_cpu_s"] = flop / max(time.process_time() - c0, 1e-9)
    return out


def profile_steps(trainer: Any, steps: int = 30) -> str:
    """torch.profiler's top ops (self CPU time, grouped by input shape) over `steps` steps."""
    from torch.profiler import ProfilerActivity, profile

    for _ in range(5):
        trainer.step()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(steps):
            trainer.step()
        trainer.step().tolist()
    return prof.key_averages(group_by_input_shape=True).table(
        sort_by="self_cpu_time_total", row_limit=16, max_name_column_width=28, max_shapes_column_width=60)


def step_floors(results: dict[str, Any], peak: dict[int, dict[str, float]], flops: dict[str, Any],
                traffic: dict[str, float], ref_wall: dict[str, list[float]]) -> dict[str, Any]:
    """Per fp32 seed row: measured ms per step against the arithmetic and memory floors and the reference."""
    floors = {}
    for name, r in results.items():
        if r.get("arch") != "seed" or r["variant"] == "bf16" or r["threads"] not in peak:
            continue
        p, b = peak[r["threads"]], r["batch"]
        compute = flops[f"seed/b{b}"]["counted_gflop"] * b / p["onednn_wall"] * 1e3
        memory = traffic["seed"] / (p["copy_gbps"] * 1e9) * 1e3
        ref = ref_wall.get(f"b{b}/TF default")
        ref_ms = b / median(ref) * 1e3 if ref else None
        floors[name] = {"threads": r["threads"], "ms_per_step": b / r["images_per_s"]["median"] * 1e3,
                        "compute_floor_ms": compute, "memory_floor_ms": memory, "reference_ms_per_step": ref_ms,
                        "max_ratio_overlapped": ref_ms / max(compute, memory) if ref_ms else None,
                        "max_ratio_serial": ref_ms / (compute + memory) if ref_ms else None}
    return floors


# ----------------------------------------------------------------------- main
def _summary(values: list[float]) -> dict[str, Any]:
    return {"median": median(values), "min": min(values), "max": max(values), "rounds": values}


def main(argv: list[str] | None = None) -> int:
    """Run the interleaved rounds, print the tables and write the JSON."""
    a = parse_args(argv)
    import torch

    from gancls.config import model_preset
    from gancls.data import load_mnist

    info = machine_info()
    threads = [int(t) for t in a.threads.split(",") if t.strip()]
    variants = [v.strip() for v in a.variants.split(",") if v.strip()]
    ref_settings = [None if t.strip() == "default" else int(t) for t in a.reference_threads.split(",") if t.strip()]
    bad = [v for v in variants if v not in VARIANTS]
    if bad or not threads or not variants or a.rounds < 1:
        print(f"error: unknown variant {bad[0]!r}" if bad else "error: need a thread count, a variant and "
              "--rounds >= 1", file=sys.stderr)
        return 2
    ref_python = None
    if a.reference:
        from reference import ReferenceError, ensure_venv, run_reference

        try:
            ref_python = ensure_venv(a.reference_venv, a.setup_reference)
        except ReferenceError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    from gancls.device import keep_freed_memory

    keep_freed_memory()  # as `gancls train` does
    try:
        data = load_mnist(a.data_dir, allow_download=False)
        configs = parse_configs(a.configs)
        trainers = {(arch, b, v): make_trainer(arch, b, v, data, a.device) for arch, b in configs for v in variants}
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    cpu = next(iter(trainers.values())).device.type == "cpu"
    if not cpu:
        threads = threads[:1]  # the CPU thread count hardly matters on a GPU

    # Arithmetic per image: from the layer shapes, and as torch counts one real step.
    flops = {}
    for arch, b in configs:
        flops[f"{arch}/b{b}"] = {"analytic_gflop": 2 * analytic_macs(model_preset(arch))["gancls"]["total"] / 1e9,
                                 "counted_gflop": counted_flops(trainers[(arch, b, variants[0])]) / 1e9}
    ref_gflop = 2 * analytic_macs(model_preset("seed"))["reference"]["total"] / 1e9
    traffic = {arch: weight_traffic(trainers[(arch, b, variants[0])]) for arch, b in configs}

    wall: dict[str, list[float]] = {}  # "seed/b10/engine/t1" -> images/s per round
    per_cpu: dict[str, list[float]] = {}
    ref_wall: dict[str, list[float]] = {}  # "b10/TF default" -> images/s per round
    ref_cpu: dict[str, list[float]] = {}
    ref_runs: list[dict[str, Any]] = []
    mm: dict[int, list[dict[str, float]]] = {t: [] for t in threads}
    loads: list[list[float]] = []
    for r in range(a.rounds + 1):
        warm = r == 0
        loads.append(load_average())
        jobs: list[tuple[str, Any]] = []
        for bsz in sorted({b for _, b in configs}):
            if not warm and ref_python is not None and bsz in (10, 64):  # the reference's own batch and 64
                jobs += [("ref", (bsz, t)) for t in ref_settings]
            jobs += [("gancls", c) for c in trainers if c[1] == bsz]
        if cpu and not warm:
            jobs.append(("mm", None))
        if r % 2 == 0:
            jobs.reverse()  # flip the order every round, so no side always follows another
        for kind, what in jobs:
            tag = f"round {r}{' (warm-up)' if warm else ''}"
            if kind == "ref":
                bsz, t = what
                name = f"b{bsz}/{'TF default' if t is None else f'TF {t} thr'}"
                try:
                    run = run_reference(bsz, a.reference_steps, python=ref_python, data_dir=a.data_dir, threads=t)
                except ReferenceError as err:
                    print(f"error: {err}", file=sys.stderr)
                    return 2
                ref_runs.append({"round": r, "setting": name, **run.to_dict()})
                ref_wall.setdefault(name, []).append(run.images_per_s)
                if run.images_per_cpu_s:
                    ref_cpu.setdefault(name, []).append(run.images_per_cpu_s)
                print(f"{tag}: reference {name}: {run.images_per_s:.1f} img/s, "
                      f"{run.images_per_cpu_s or float('nan'):.1f} img/CPU-s, load {load_average()}", flush=True)
            elif kind == "gancls":
                arch, bsz, v = what
                for t in threads:
                    torch.set_num_threads(t)
                    ips, ipc, steps = gancls_slice(trainers[what], 1.0 if warm else a.seconds, a.warmup_steps,
                                                   a.sync_every)
                    if not warm:
                        wall.setdefault(f"{arch}/b{bsz}/{v}/t{t}", []).append(ips)
                        per_cpu.setdefault(f"{arch}/b{bsz}/{v}/t{t}", []).append(ipc)
                    print(f"{tag}: gancls {arch} b{bsz} {v} {t} thr: {ips:.1f} img/s, {ipc:.1f} img/CPU-s "
                          f"({steps} steps)", flush=True)
            else:
                for t in threads:
                    torch.set_num_threads(t)
                    mm[t].append({**matmul_gflops(a.matmul_size), "copy_gbps": memory_gbps()})
    info["load_average_at_end"] = load_average()

    # ------------------------------------------------------------- summary
    def ref_for(table: dict[str, list[float]], bsz: int) -> list[float] | None:
        # The ratio is taken against TF's default threads (the script as shipped), else the first setting run.
        return table.get(f"b{bsz}/TF default") or next((v for k, v in table.items() if k.startswith(f"b{bsz}/")), None)

    results: dict[str, Any] = {}
    rows = []
    for name, values in wall.items():
        arch, b, v, t = name.split("/")
        bsz = int(b[1:])
        gflop = flops[f"{arch}/{b}"]["counted_gflop"]
        res = {"arch": arch, "batch": bsz, "variant": v, "threads": int(t[1:]),
               "images_per_s": _summary(values), "images_per_cpu_s": _summary(per_cpu[name]),
               "gflop_per_s": median(values) * gflop, "gflop_per_cpu_s": median(per_cpu[name]) * gflop}
        ref_w, ref_c = ref_for(ref_wall, bsz), ref_for(ref_cpu, bsz)
        if arch == "seed" and ref_w:
            res["ratio_vs_reference"] = median(values) / median(ref_w)
            res["target_ratio"] = TARGETS[bsz]
            res["verdict"] = verdict(res["ratio_vs_reference"], TARGETS[bsz])
        if arch == "seed" and ref_c:
            res["ratio_per_cpu_s_vs_reference"] = median(per_cpu[name]) / median(ref_c)
        results[name] = res
        rows.append([f"gancls {arch} {v}", bsz, t[1:], median(values), min(values), max(values),
                     median(per_cpu[name]), res["gflop_per_s"], res.get("ratio_vs_reference"),
                     res.get("ratio_per_cpu_s_vs_reference"), res.get("verdict")])
    for name, values in ref_wall.items():
        b, setting = name.split("/")
        cpu_values = ref_cpu.get(name, [])
        results[f"reference/{name}"] = {"batch": int(b[1:]), "threads": setting, "images_per_s": _summary(values),
                                        "images_per_cpu_s": _summary(cpu_values) if cpu_values else None,
                                        "gflop_per_s": median(values) * ref_gflop}
        rows.append([f"reference {setting}", int(b[1:]), setting.split()[1], median(values), min(values),
                     max(values), median(cpu_values), median(values) * ref_gflop, None, None, None])
    peak = {t: {k: median([m[k] for m in v]) for k in v[0]} for t, v in mm.items() if v}

    out = {"machine": info, "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(a).items()},
           "load_average_per_round": loads, "results": results, "reference_runs": ref_runs,
           "flop_per_image": flops, "reference_gflop_per_image_analytic": ref_gflop,
           "seed_macs_per_image": analytic_macs(model_preset("seed")),
           "matmul_gflop_per_s": {f"t{t}": v for t, v in peak.items()}, "matmul_size": a.matmul_size,
           "weight_traffic_bytes_per_step": traffic}
    print()
    print("\n".join(header_lines(info)))
    print(f"load per round (1/5/15 min): {loads}")
    print()
    print(format_table(["side", "batch", "thr", "img/s (median)", "min", "max", "img/CPU-s", "GFLOP/s",
                        "÷ ref (wall)", "÷ ref (CPU-s)", "target (wall)"], rows))
    print(f"(÷ ref: median gancls ÷ median reference with TF's default threads (else the first setting run), "
          f"same batch size; "
          f"targets ≥ {TARGETS[10]:g}× at b10, ≥ {TARGETS[64]:g}× at b64)")
    print()
    print(format_table(["model/batch", "GFLOP per image-iteration (layer shapes)", "(FlopCounterMode, 1 step)"],
                       [[k, v["analytic_gflop"], v["counted_gflop"]] for k, v in flops.items()]
                       + [["reference TF graph, seed", ref_gflop, None]]))
    if peak and "seed" in traffic:  # the arithmetic and memory floors are worked out for the seed
        print()
        seed_rows = [r for r in results.values() if r.get("arch") == "seed" and r["variant"] != "bf16"]
        table = []
        for t, p in peak.items():
            best = max(seed_rows, key=lambda r: r["gflop_per_cpu_s"] if r["threads"] == t else -1, default=None)
            table.append([t, p["mm_wall"], p["mm_per_cpu_s"], p["onednn_wall"], p["onednn_per_cpu_s"],
                          best and best["gflop_per_s"], best and best["gflop_per_cpu_s"],
                          best and best["gflop_per_cpu_s"] / p["onednn_per_cpu_s"]])
        print(format_table(["thr", f"mm {a.matmul_size}² GFLOP/s", "per CPU-s", "oneDNN GFLOP/s", "per CPU-s",
                            "best gancls seed GFLOP/s", "per CPU-s", "share of oneDNN (CPU-s)"], table))
        print("(mm = torch.mm, MKL sgemm; oneDNN = the same product through torch's mkldnn_linear)")
        print()
        out["floors"] = floors = step_floors(results, peak, flops, traffic, ref_wall)
        print(format_table(["seed", "thr", "ms/step", "arith. floor ms", "memory floor ms", "ref ms/step",
                            "max ÷ ref (overlap)", "(no overlap)"],
                           [[k, f["threads"], f["ms_per_step"], f["compute_floor_ms"], f["memory_floor_ms"],
                             f["reference_ms_per_step"], f["max_ratio_overlapped"], f["max_ratio_serial"]]
                            for k, f in floors.items()]))
        print("(arith. floor: FLOPs per step at oneDNN's n² peak; memory floor: weight traffic per step "
              f"({traffic['seed'] / 1e6:.0f} MB for seed: Adam's 28 B/param plus the fc weights' matmul passes) "
              "at the fp32 copy bandwidth; max ÷ ref: the reference's step time over the larger floor "
              "(perfect overlap) or over their sum)")

    if a.profile:
        out["profiles"] = {}
        torch.set_num_threads(1)
        for bsz in (10, 64):
            for v in variants:
                if ("seed", bsz, v) not in trainers:
                    continue
                table = profile_steps(trainers[("seed", bsz, v)])
                out["profiles"][f"seed/b{bsz}/{v}/t1"] = table
                print(f"\nprofile, seed b{bsz}, {v}, 1 thread, 30 steps:\n{table}")
    print(f"wrote {write_json(a.out, out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
