"""The project is a package: pyproject's [project] is complete, nothing edits the import path, and tests,
benchmarks and scripts share helpers through demo/harness instead of importing each other.

Static checks only (AST and TOML): building a wheel here would need setuptools from the network.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PATH_EDIT = ".".join(("sys", "path"))  # spelt apart so this file does not hold what it looks for
TEST_MODULES = {p.stem for p in (ROOT / "tests").glob("*.py")}


def python_files(*folders: str) -> list[Path]:
    """Every .py file under the given folders of the repository."""
    return sorted(p for d in folders for p in (ROOT / d).rglob("*.py") if "__pycache__" not in p.parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in the file, at any depth; relative imports keep their leading dots."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, "." * node.level + (node.module or "")))
    return found


def imports_of(paths: list[Path], banned) -> list[str]:
    """'file:line: module' for each import whose module `banned(module)` says is not allowed."""
    return [f"{p}:{line}: {module}" for p in paths for line, module in imported_modules(p) if banned(module)]


def forbidden_in_tests(module: str) -> bool:
    """What a test module may not import: bench, scripts, tests, conftest, another test module, or relatively."""
    return module.startswith(".") or top(module) in {"bench", "tests", "scripts"} | TEST_MODULES


def top(module: str) -> str:
    return module.split(".")[0]


def test_nothing_edits_the_import_path() -> None:
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in python_files("bench", "scripts", "tests", "gancls", "demo")
            for i, line in enumerate(p.read_text().splitlines(), 1) if PATH_EDIT in line]
    assert hits == [], "run from the repository root as modules (python -m bench.x) or install the package"


def test_tests_import_neither_bench_nor_other_tests() -> None:
    assert imports_of(python_files("tests"), forbidden_in_tests) == [], "shared helpers belong in demo/harness"


def test_bench_and_scripts_import_no_tests() -> None:
    def banned(module: str) -> bool:
        return top(module) == "tests" or top(module) in TEST_MODULES

    assert imports_of(python_files("bench", "scripts"), banned) == []


def test_harness_imports_neither_tests_nor_bench() -> None:
    def banned(module: str) -> bool:
        return top(module) in {"tests", "bench", "scripts"} | TEST_MODULES

    harness = python_files("demo/harness")
    assert harness, "demo/harness is missing"
    assert imports_of(harness, banned) == []


def test_the_import_check_sees_imports_at_any_depth(tmp_path: Path) -> None:
    planted = tmp_path / "test_planted.py"
    planted.write_text("import os\nimport gancls.cli\n\ndef f():\n    from bench.soak import launch\n"
                       "    from conftest import ROOT\n    import test_cli\n    from . import x\n")
    found = [hit.split(": ", 1)[1] for hit in imports_of([planted], forbidden_in_tests)]
    assert found == ["bench.soak", "conftest", "test_cli", "."]


def test_console_script_is_the_cli() -> None:
    target = PYPROJECT["project"]["scripts"]["gancls"]
    module, _, name = target.partition(":")
    main = getattr(importlib.import_module(module), name)
    assert callable(main)
    with pytest.raises(SystemExit) as stop:  # argparse's --help, so it is the command line and not just any callable
        main(["--help"])
    assert stop.value.code == 0


def requirement_lines(name: str) -> list[str]:
    """A requirements file's requirements, without comments or includes."""
    lines = (re.sub(r"\s+#.*", "", line).strip() for line in (ROOT / name).read_text().splitlines())
    return [line for line in lines if line and not line.startswith(("#", "-"))]


def test_dependencies_are_the_requirements_files() -> None:
    project = PYPROJECT["project"]
    assert project["requires-python"] == ">=3.11"
    assert project["dependencies"] == requirement_lines("requirements.txt")
    assert project["optional-dependencies"]["dev"] == requirement_lines("requirements-dev.txt")


def test_every_package_and_data_file_is_installed() -> None:
    tool = PYPROJECT["tool"]["setuptools"]
    packages, data = tool["packages"], tool["package-data"]
    folders = {p: ROOT / tool.get("package-dir", {}).get(p, p.replace(".", "/")) for p in packages}
    for d in ("gancls", "demo"):
        for init in (ROOT / d).rglob("__init__.py"):
            package = ".".join(init.parent.relative_to(ROOT).parts)
            assert package in packages, f"{package} is not installed"
    # Files the code opens beside its modules (assets, the page's scripts and styles) and the shipped weights;
    # not the stubs Gradio writes next to a module that defines a component (git-ignored).
    for package in ("gancls", "demo", "gancls.checkpoints"):
        for f in folders[package].rglob("*"):
            if f.is_dir() or "__pycache__" in f.parts or f.suffix in (".py", ".pyi", ".pyc"):
                continue
            rel = f.relative_to(folders[package]).as_posix()
            assert any(fnmatch.fnmatch(rel, g) for g in data.get(package, [])), f"{package}: {rel} is not installed"


def test_the_shipped_weights_are_found() -> None:
    from gancls.cli import PRETRAINED
    from gancls.judge import default_judge_path
    from gancls.shipped import BESIDE

    assert PRETRAINED == BESIDE / "pretrained" and (PRETRAINED / "gancls.safetensors").is_file()
    assert default_judge_path() == BESIDE / "judge.safetensors" and default_judge_path().is_file()
