"""Run the engine, CLI and app tests on an older torch/gradio in a venv of their own; JSON to bench/results/.

    python -m bench.compat_torch --torch 2.8.0 --torchvision 0.23.0          # ZeroGPU's oldest torch

The venv (default /tmp/gancls-compat-torch<version>) is built on first use from requirements.txt
with torch, torchvision and gradio replaced, plus the test requirements; later runs reuse it.
Too slow for CI (a few GB of wheels); CI keeps the newest pins.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ["tests/test_models.py", "tests/test_train.py", "tests/test_speed_paths.py", "tests/test_cli.py",
         "tests/test_app_api.py", "tests/test_space_start.py"]
REPLACED = ("torch", "torchvision", "gradio", "playwright")  # playwright: the browser test is not run here

PROBE = """import json, platform, torch, torchvision, gradio, numpy
from gancls.linear import onednn_available
print(json.dumps({"python": platform.python_version(), "torch": torch.__version__,
                  "torchvision": torchvision.__version__, "gradio": gradio.__version__, "numpy": numpy.__version__,
                  "onednn_linear": onednn_available()}))"""


def cpu_note() -> str:
    """e.g. 'Intel(R) Xeon(R) Processor, 2 cores, avx2 avx512f amx_tile' (Linux; else the machine type)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.machine()
    model = re.search(r"model name\s*:\s*(.+)", info)
    found = re.search(r"^flags\s*:\s*(.+)$", info, re.M)
    flags = set(found.group(1).split()) if found else set()
    isa = " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f in flags)
    return f"{model.group(1) if model else platform.machine()}, {os.cpu_count()} cores, {isa}"


def requirement_lines(path: Path) -> list[str]:
    """The requirement lines of `path` except the packages this script pins itself."""
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        name = re.split(r"[<>=!~\[ ;]", line, maxsplit=1)[0].lower()
        if line and not line.startswith("#") and name not in REPLACED:
            out.append(line)
    return out


def build_venv(venv: Path, torch: str, torchvision: str, gradio: str) -> float:
    """Create `venv` with the given versions unless it exists with them; returns the seconds spent."""
    py = venv / "bin" / "python"
    if py.exists():
        return 0.0
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    reqs = [f"torch=={torch}", f"torchvision=={torchvision}", f"gradio=={gradio}",
            *requirement_lines(ROOT / "requirements.txt"), *requirement_lines(ROOT / "requirements-dev.txt")]
    subprocess.run([str(py), "-m", "pip", "install", "-q", *reqs], check=True)
    return time.monotonic() - t0


def run_tests(py: Path, tests: list[str], junit: Path) -> dict:
    """pytest on `tests` with the venv's python; counts from its JUnit XML."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    t0 = time.monotonic()
    r = subprocess.run([str(py), "-m", "pytest", *tests, "-q", "-p", "no:cacheprovider", f"--junitxml={junit}"],
                       cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - t0
    suite = ET.parse(junit).getroot()
    suite = suite.find("testsuite") if suite.tag == "testsuites" else suite
    failed = [f"{c.get('classname')}::{c.get('name')}" for c in suite.iter("testcase")
              if c.find("failure") is not None or c.find("error") is not None]
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    return {**counts, "passed": counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"],
            "failed_tests": failed, "seconds": round(seconds, 1), "exit_code": r.returncode,
            "summary": r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr[-500:]}


def main() -> int:
    """Build or reuse the venv, probe its versions, run the tests, write and print the summary."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--torch", default="2.8.0", help="torch version (default 2.8.0, the oldest ZeroGPU lists)")
    p.add_argument("--torchvision", default="0.23.0", help="the torchvision built for that torch (default 0.23.0)")
    p.add_argument("--gradio", default="6.31.0", help="gradio version (default 6.31.0, the Space's sdk_version)")
    p.add_argument("--venv", type=Path, help="venv to build or reuse (default /tmp/gancls-compat-torch<version>)")
    p.add_argument("--tests", nargs="+", default=TESTS, help="test files to run (default: engine, CLI, app, Space start)")
    p.add_argument("--out", type=Path, help="JSON path (default bench/results/compat_torch<version>.json)")
    args = p.parse_args()
    venv = args.venv or Path(f"/tmp/gancls-compat-torch{args.torch}")
    out = args.out or ROOT / "bench" / "results" / f"compat_torch{args.torch}.json"
    build_s = build_venv(venv, args.torch, args.torchvision, args.gradio)
    py = venv / "bin" / "python"
    versions = json.loads(subprocess.run([str(py), "-c", PROBE], cwd=ROOT, check=True, capture_output=True,
                                         text=True).stdout)
    result = run_tests(py, args.tests, venv / "junit.xml")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    summary = {"what": "engine, CLI and app tests on an older torch", "date": time.strftime("%Y-%m-%d %H:%M UTC",
               time.gmtime()), "commit": commit.strip() or None, "cpu": cpu_note(),
               "versions": versions, "venv_build_seconds": round(build_s, 1), "tests_run": args.tests, **result}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"torch {versions['torch']}, torchvision {versions['torchvision']}, gradio {versions['gradio']}, "
          f"Python {versions['python']}, oneDNN linear path: {versions['onednn_linear']}")
    print(f"{result['passed']} passed, {result['failures'] + result['errors']} failed, {result['skipped']} skipped "
          f"in {result['seconds']:.0f} s  ->  {out}")
    for name in result["failed_tests"]:
        print(f"  FAILED {name}")
    return 0 if result["exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
