"""Shared bench helpers: machine description, load sampling, interleaved timing, tables and JSON."""

from __future__ import annotations

import json
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Sequence

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or platform's guess elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """The SIMD flags that matter for fp32 matmul speed (avx2, avx512f, amx...)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                return sorted(f for f in flags if f.startswith(("avx", "amx", "fma")))
    except OSError:
        pass
    return []


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (empty where the OS has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


# Environment variables that hold torch, oneDNN and MKL to a smaller instruction set than the CPU has,
# e.g. AVX2 on an AVX-512 machine, standing in for a machine without AVX-512.
ISA_CAPS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")


def isa_caps() -> dict[str, str]:
    """The instruction-set caps set in this process's environment (name -> value)."""
    return {k: os.environ[k] for k in ISA_CAPS if os.environ.get(k)}


def machine_info(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """CPU, cores, torch version, date, load and command line: the header of every result."""
    import torch  # the benches all need it; imported here so `--help` stays fast

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "load_average_at_start": load_average(),
        "command": " ".join(shlex.quote(a) for a in ([sys.executable] + list(argv if argv is not None else sys.argv))),
    }
    if caps := isa_caps():
        info["isa_caps"] = caps
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def header_lines(info: dict[str, Any]) -> list[str]:
    """The machine header as printable lines."""
    lines = [
        f"machine : {info['cpu']}, {info['cores']} cores ({', '.join(info.get('cpu_flags', [])) or 'no flags'})",
        f"software: torch {info['torch']} ({info.get('torch_cpu_capability', '?')}), python {info['python']}",
        *([f"held to : {' '.join(f'{k}={v}' for k, v in info['isa_caps'].items())}"] if info.get("isa_caps") else []),
        f"date    : {info['date']}",
        f"load    : {info.get('load_average_at_start')} at start (1/5/15 min)"
        + (f", {info['load_average_at_end']} at end" if info.get("load_average_at_end") else ""),
        f"command : {info['command']}",
    ]
    if info.get("gpu"):
        lines.insert(1, f"gpu     : {info['gpu']}")
    return lines


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table: first column left-aligned, the rest right-aligned; None prints as '-'."""
    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1 else f"{v:,.1f}"
        return str(v)

    cells = [list(headers)] + [[cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def median(values: Sequence[float]) -> float | None:
    """The median, or None for no values."""
    return statistics.median(values) if values else None


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    """Write `payload` as indented JSON (creating the folder), and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=str) + "\n")
    tmp.replace(path)  # atomic: a bench killed mid-write leaves the previous result intact
    return path


def verdict(value: float | None, target: float, higher_is_better: bool = True) -> str:
    """'met' or 'MISSED (x% short)' for a figure against its target."""
    if value is None:
        return "not measured"
    ok = value >= target if higher_is_better else value <= target
    if ok:
        return "met"
    short = (target - value) / target if higher_is_better else (value - target) / target
    return f"MISSED by {100 * short:.0f}%"
