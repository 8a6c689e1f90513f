"""Upload the app to a Hugging Face Space: exactly the files a Space needs, with a Space README and requirements.

    python -m scripts.deploy_space --dry-run                          # list files and sizes; no network, no token
    python -m scripts.deploy_space --space-id USER/gancls --hardware zero-gpu

A real run reads the token from $HF_TOKEN or your Hugging Face login (`hf auth login`) and never
prints it; it creates the Space if needed and uploads through huggingface_hub, which stores the
binary files (weights, embedded data) through Xet/LFS itself. `--hardware` picks the front matter
and requirements: `cpu` keeps the repository's pins (CPU Basic), `zero-gpu` targets the versions
ZeroGPU supports (see SPACE_CONFIGS).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parents[1]

# What a Space runs: the entry point, the library (with its embedded data), the UI, the shipped
# weights, and the LFS/Xet routing. README.md and requirements.txt are generated for the Space.
SPACE_ENTRIES = ("app.py", "gancls", "demo", "checkpoints", ".gitattributes")
SKIP_DIRS = {"__pycache__", "runs", ".pytest_cache", ".ipynb_checkpoints", ".mypy_cache", ".ruff_cache"}
SKIP_SUFFIXES = (".pyc", ".pyo", ".tmp", ".swp", ".egg-info")
SPACE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


@dataclass(frozen=True)
class SpaceConfig:
    """What one hardware choice changes: front matter entries and the torch lines of requirements.txt."""

    python_version: str
    front_matter: dict[str, str]
    torch_lines: tuple[str, ...] | None  # None: keep the repository's torch/torchvision pins
    extra_requirements: tuple[str, ...]
    hardware_flavor: str | None  # asked for when the Space is created (None: the Hub's default, CPU Basic)


SPACE_CONFIGS = {
    # CPU Basic (2 vCPU, 16 GB): the same pins CI tests.
    "cpu": SpaceConfig(python_version="3.11", front_matter={}, torch_lines=None, extra_requirements=(),
                       hardware_flavor=None),
    # ZeroGPU (huggingface.co/docs/hub/spaces-zerogpu, 2026): Gradio 4+, PyTorch 2.8.0, 2.9.1, 2.10.0,
    # 2.11.0, Python 3.12.12 or 3.10.13. torchvision pins its torch exactly, so pip picks the pair.
    "zero-gpu": SpaceConfig(python_version="3.12.12", front_matter={"suggested_hardware": "zero-a10g"},
                            torch_lines=("torch>=2.8.0,<2.12", "torchvision>=0.23.0,<0.27"),
                            extra_requirements=("spaces>=0.40",), hardware_flavor="zero-a10g"),
}


@dataclass(frozen=True)
class StagedFile:
    """One file of the Space: its path in the Space and its size in bytes."""

    path: str
    size: int


def space_sources(root: Path = ROOT) -> list[Path]:
    """The repository files the Space gets, relative to `root`, sorted (caches, runs, hidden and git-ignored files left out)."""
    out = []
    for entry in SPACE_ENTRIES:
        top = root / entry
        if top.is_file():
            out.append(Path(entry))
            continue
        if not top.is_dir():
            raise FileNotFoundError(f"{top} is missing: run this from a complete checkout of gancls")
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")
                                 and not d.endswith(SKIP_SUFFIXES))
            for name in sorted(filenames):
                if not name.startswith(".") and not name.endswith(SKIP_SUFFIXES):
                    out.append((Path(dirpath) / name).relative_to(root))
    ignored = git_ignored(root, out)
    return sorted(p for p in out if p.as_posix() not in ignored)


def git_ignored(root: Path, paths: list[Path]) -> set[str]:
    """Those of `paths` that git ignores in `root` (generated files); empty outside a git work tree or without git."""
    try:
        r = subprocess.run(["git", "check-ignore", "-z", "--stdin"], cwd=root, capture_output=True,
                           input=b"\0".join(p.as_posix().encode() for p in paths), timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return set()
    return set(r.stdout.decode().split("\0")) - {""} if r.returncode in (0, 1) else set()


def read_front_matter(readme: str) -> tuple[dict[str, str], str]:
    """The YAML front matter of a README as raw `key: value` strings (flat, as Spaces use it), and the body."""
    m = re.match(r"^---\n(.*?)\n---\n", readme, re.S)
    if not m:
        raise ValueError("README.md has no front matter (the --- block the Space reads its settings from)")
    meta = {}
    for line in m.group(1).splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and not line.startswith((" ", "#")):
            meta[key.strip()] = value.strip()
    return meta, readme[m.end():]


def space_readme(repo_readme: str, hardware: str) -> str:
    """The Space's README: the repository's front matter with this hardware's changes, and the project's intro."""
    cfg = SPACE_CONFIGS[hardware]
    meta, body = read_front_matter(repo_readme)
    meta["python_version"] = f'"{cfg.python_version}"'
    meta.update(cfg.front_matter)
    intro = body.split("\n## ", 1)[0].strip()  # title and what the app does; no screenshots
    where = ("ZeroGPU: training runs on a shared GPU in 10-second chunks, within each visitor's daily GPU quota."
             if hardware == "zero-gpu" else "CPU: training runs on this Space's CPU cores.")
    lines = ["---", *(f"{k}: {v}" for k, v in meta.items()), "---", "", intro, "", f"This Space runs on {where}", ""]
    return "\n".join(lines)


def space_requirements(repo_requirements: str, hardware: str) -> str:
    """The Space's requirements.txt: the repository's, with this hardware's torch range and extra packages."""
    cfg = SPACE_CONFIGS[hardware]
    out, replaced = [], False
    for line in repo_requirements.splitlines():
        name = re.split(r"[<>=!~\[ ;]", line.strip(), maxsplit=1)[0].lower()
        if cfg.torch_lines is not None and name in ("torch", "torchvision"):
            if not replaced:
                out.extend(cfg.torch_lines)
                replaced = True
            continue
        out.append(line)
    out.extend(cfg.extra_requirements)
    return "\n".join(out).rstrip("\n") + "\n"


def stage(dest: Path, hardware: str, root: Path = ROOT) -> list[StagedFile]:
    """Copy the Space's files into `dest` (empty or new) and write its README and requirements; list them."""
    if hardware not in SPACE_CONFIGS:
        raise ValueError(f"unknown hardware {hardware!r} (choose from {', '.join(SPACE_CONFIGS)})")
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise ValueError(f"{dest} is not empty: give a new or empty folder to stage into")
    for rel in space_sources(root):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, dest / rel)
    (dest / "README.md").write_text(space_readme((root / "README.md").read_text(encoding="utf-8"), hardware),
                                    encoding="utf-8")
    (dest / "requirements.txt").write_text(
        space_requirements((root / "requirements.txt").read_text(encoding="utf-8"), hardware), encoding="utf-8")
    files = [p for p in dest.rglob("*") if p.is_file()]
    return sorted((StagedFile(p.relative_to(dest).as_posix(), p.stat().st_size) for p in files), key=lambda f: f.path)


def print_listing(files: list[StagedFile]) -> None:
    """Every file with its size, then the total."""
    for f in files:
        print(f"{f.size:>12,}  {f.path}")
    total = sum(f.size for f in files)
    print(f"{total:>12,}  total, {len(files)} files ({total / 2**20:.1f} MiB)")


def find_token() -> tuple[str, str] | None:
    """(token, where it came from) from $HF_TOKEN or the saved Hugging Face login; None when neither has one."""
    if os.environ.get("HF_TOKEN"):
        return os.environ["HF_TOKEN"], "$HF_TOKEN"
    from huggingface_hub import get_token

    token = get_token()
    return (token, "your Hugging Face login") if token else None


def upload(space_id: str, hardware: str, folder: Path, token: str) -> str:
    """Create the Space if needed and upload `folder` as one commit; returns the Space's URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(space_id, repo_type="space", space_sdk="gradio", exist_ok=True,
                    space_hardware=SPACE_CONFIGS[hardware].hardware_flavor)
    # Remove files of an earlier deploy that are gone now, only inside the folders this script owns.
    api.upload_folder(repo_id=space_id, repo_type="space", folder_path=folder,
                      commit_message=f"Deploy gancls ({hardware})",
                      delete_patterns=["app.py", "gancls/**", "demo/**", "checkpoints/**"])
    return f"https://huggingface.co/spaces/{space_id}"


def hub_error_message(err: Exception, space_id: str, hardware: str) -> str:
    """One line for a failed Hub call (HTTP status in words; the token never appears)."""
    status = getattr(getattr(err, "response", None), "status_code", None)
    if status == 401:
        return "the Hub rejected the token (expired or read-only?): make a write token and `hf auth login` again"
    if status == 402:
        hint = (" Free accounts can host Gradio Spaces only on ZeroGPU (up to 2): try --hardware zero-gpu."
                if hardware == "cpu" else " Check that your account may host ZeroGPU Spaces.")
        return f"the Hub asks for a paid plan to create {space_id} on this hardware.{hint}"
    if status == 403:
        return f"this token cannot write to {space_id.split('/')[0]}: use a write token of that user or organisation"
    return f"the upload to {space_id} failed: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags."""
    p = argparse.ArgumentParser(prog="python -m scripts.deploy_space",
                                description="Upload the gancls app to a Hugging Face Space (Gradio SDK).")
    p.add_argument("--space-id", help="USER/NAME of the Space (created if missing); needed for a real run")
    p.add_argument("--hardware", choices=sorted(SPACE_CONFIGS), default="cpu",
                   help="cpu: CPU Basic with the repository's pins; zero-gpu: ZeroGPU's Python and torch versions "
                        "plus the `spaces` package (default cpu)")
    p.add_argument("--dry-run", action="store_true", help="list every file and its size, then stop (no network, no token)")
    p.add_argument("--stage", type=Path, help="stage into this (new or empty) folder and keep it (default: a temp folder)")
    p.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)  # tests stage a copy of the tree
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Stage, list, and unless --dry-run upload; errors are one line and exit code 2."""
    args = build_parser().parse_args(argv)
    if args.space_id is not None and not SPACE_ID.match(args.space_id):
        print(f"error: --space-id {args.space_id!r} is not USER/NAME (letters, digits, '.', '_', '-')", file=sys.stderr)
        return 2
    if not args.dry_run and args.space_id is None:
        print("error: a real run needs --space-id USER/NAME (or use --dry-run to list the files)", file=sys.stderr)
        return 2
    found = None if args.dry_run else find_token()
    if not args.dry_run and found is None:
        print("error: no Hugging Face token: run `hf auth login` (or `huggingface-cli login`), or set HF_TOKEN",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="gancls-space-") as tmp:
        folder = args.stage or Path(tmp)
        try:
            files = stage(folder, args.hardware, args.root)
        except (OSError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"Space files for --hardware {args.hardware}" + (f", staged in {folder}" if args.stage else "") + ":")
        print_listing(files)
        if args.dry_run:
            return 0
        token, where = found
        print(f"Uploading to {args.space_id} with the token from {where} …")
        try:
            url = upload(args.space_id, args.hardware, folder, token)
        except Exception as e:  # noqa: BLE001 -- any Hub or network failure becomes one line
            print(f"error: {hub_error_message(e, args.space_id, args.hardware)}", file=sys.stderr)
            return 2
    print(f"Done: {url} (the Space builds for a few minutes; its Logs tab shows progress).")
    if args.hardware == "zero-gpu":
        print("If the Space existed before, pick ZeroGPU under Settings → Space hardware.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
