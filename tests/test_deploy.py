"""The Space deploy: binaries are LFS/Xet-routed, and `scripts/deploy_space.py --dry-run` stages exactly the Space's files, offline."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "deploy_space.py"
ZEROGPU_TORCH = ("2.8.0", "2.9.1", "2.10.0", "2.11.0")  # huggingface.co/docs/hub/spaces-zerogpu, 2026
ZEROGPU_PYTHON = ("3.12.12", "3.10.13")


def git(*args: str, cwd: Path = ROOT, stdin: bytes | None = None) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True, check=True).stdout


def in_git_tree() -> bool:
    try:
        return shutil.which("git") is not None and git("rev-parse", "--is-inside-work-tree").strip() == b"true"
    except subprocess.CalledProcessError:
        return False


needs_git_tree = pytest.mark.skipif(not in_git_tree(), reason="not a git work tree (e.g. an exported tarball)")


def is_binary(path: Path) -> bool:
    """Git's own test: a NUL byte in the first 8 KB."""
    with path.open("rb") as f:
        return b"\0" in f.read(8000)


def uncovered_binaries(repo: Path, paths: list[str]) -> list[str]:
    """The binary files among `paths` (relative to `repo`) whose `filter` attribute is not lfs."""
    binaries = [p for p in paths if is_binary(repo / p)]
    out = git("check-attr", "-z", "filter", "--stdin", "-z", cwd=repo, stdin=b"\0".join(p.encode() for p in binaries))
    fields = out.split(b"\0")[:-1]  # path, attribute, value, path, ...
    values = {fields[i].decode(): fields[i + 2].decode() for i in range(0, len(fields), 3)}
    return [p for p in binaries if values.get(p) != "lfs"]


def offline_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No token, no saved login, no network for huggingface_hub."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    return {**env, "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_OFFLINE": "1", **extra}


def deploy(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, env=env or offline_env(tmp_path),
                          capture_output=True, text=True, timeout=120)


def listing(stdout: str) -> tuple[dict[str, int], int]:
    """The dry run's `size  path` lines and its total."""
    files, total = {}, None
    for line in stdout.splitlines():
        m = re.fullmatch(r"\s*([\d,]+)  (.+)", line)
        if m and m.group(2).startswith("total,"):
            total = int(m.group(1).replace(",", ""))
        elif m:
            files[m.group(2)] = int(m.group(1).replace(",", ""))
    assert total is not None, stdout
    return files, total


def staged(tmp_path: Path, hardware: str, root: Path | None = None) -> tuple[Path, dict[str, int]]:
    dest = tmp_path / f"stage-{hardware}"
    extra = ["--root", str(root)] if root else []
    r = deploy(tmp_path, "--dry-run", "--hardware", hardware, "--stage", str(dest), *extra)
    assert r.returncode == 0, r.stderr
    files, total = listing(r.stdout)
    on_disk = {p.relative_to(dest).as_posix(): p.stat().st_size for p in dest.rglob("*") if p.is_file()}
    assert files == on_disk and total == sum(on_disk.values()), "the listing must be exactly what was staged"
    return dest, files


def front_matter(readme: str) -> dict[str, str]:
    block = readme.split("---\n")[1]
    return {k.strip(): v.strip().strip('"') for k, _, v in (line.partition(":") for line in block.splitlines())}


@needs_git_tree
def test_every_tracked_binary_is_lfs_routed() -> None:
    tracked = [p for p in git("ls-files", "-z").decode().split("\0") if p and (ROOT / p).is_file()]
    assert any(is_binary(ROOT / p) for p in tracked), "expected the shipped weights among the tracked files"
    missing = uncovered_binaries(ROOT, tracked)
    assert not missing, f"binary files not routed through LFS/Xet by .gitattributes: {missing}"


@needs_git_tree
def test_a_plain_clone_stays_clean_with_the_lfs_attributes(tmp_path: Path) -> None:
    # Without git-lfs the lfs filter is unconfigured, so committed binaries must still check out clean.
    clone = tmp_path / "clone"
    git("clone", "-q", "--no-hardlinks", str(ROOT), str(clone))
    for p in git("ls-files", "-z", cwd=clone).decode().split("\0"):
        if p and is_binary(clone / p):
            os.utime(clone / p)  # force git to re-read the content rather than trust the index
    assert git("status", "--porcelain", cwd=clone) == b""


def test_dry_run_stages_only_the_space_files(tmp_path: Path) -> None:
    # A tree with everything a checkout can hold: only app, library, UI, weights and .gitattributes may go.
    root = tmp_path / "tree"
    wanted = ["app.py", ".gitattributes", "gancls/__init__.py", "gancls/assets/mnist_subset.npz",
              "demo/main.py", "demo/style.css", "checkpoints/pretrained/gancls.safetensors"]
    unwanted = ["tests/test_x.py", "bench/results/x.json", "scripts/deploy_space.py", "docs/screenshots/train.png",
                "runs/app/abc/gancls.safetensors", "gancls/__pycache__/x.cpython-311.pyc", "demo/x.pyc",
                "demo/.DS_Store", "gancls/runs/old.json", ".venv/bin/python", "pyproject.toml"]
    for rel in wanted + unwanted:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x\0" * 3 if rel.endswith((".npz", ".safetensors")) else b"x = 1\n")
    for rel in ("README.md", "requirements.txt"):
        shutil.copy(ROOT / rel, root / rel)
    _, files = staged(tmp_path, "cpu", root)
    assert set(files) == set(wanted) | {"README.md", "requirements.txt"}


def test_dry_run_of_this_checkout_lists_the_space_files_offline(tmp_path: Path) -> None:
    dest, files = staged(tmp_path, "cpu")
    tops = {p.split("/")[0] for p in files}
    assert tops == {"app.py", "gancls", "demo", "checkpoints", ".gitattributes", "README.md", "requirements.txt"}
    for must in ("checkpoints/pretrained/gancls.safetensors", "checkpoints/judge.safetensors",
                 "gancls/assets/mnist_subset.npz", "demo/style.css"):
        assert must in files
    assert not [p for p in files if "__pycache__" in p or p.endswith(".pyc")]
    if in_git_tree():  # nothing tracked is left out, and nothing git ignores comes in
        space_dirs = ["app.py", "gancls", "demo", "checkpoints", ".gitattributes"]
        tracked = {p for p in git("ls-files", "-z", "--", *space_dirs).decode().split("\0")
                   if p and (ROOT / p).is_file()}  # a tracked file deleted in the work tree is not deployed
        allowed = tracked | set(git("ls-files", "-z", "--others", "--exclude-standard", "--", *space_dirs)
                                .decode().split("\0")) | {"README.md", "requirements.txt"}
        assert tracked <= set(files) <= allowed
    # The Space's own .gitattributes routes every binary it receives (checked in a fresh repo there).
    git("init", "-q", cwd=dest)
    missing = uncovered_binaries(dest, sorted(files))
    assert not missing, f"staged binaries not routed through LFS/Xet: {missing}"


def test_hardware_choice_changes_front_matter_and_requirements(tmp_path: Path) -> None:
    cpu, cpu_files = staged(tmp_path, "cpu")
    zero, zero_files = staged(tmp_path, "zero-gpu")
    assert set(cpu_files) == set(zero_files)
    for rel in cpu_files:  # only the two generated files differ
        same = (cpu / rel).read_bytes() == (zero / rel).read_bytes()
        assert same == (rel not in ("README.md", "requirements.txt")), rel

    repo_meta = front_matter((ROOT / "README.md").read_text())
    cpu_meta, zero_meta = (front_matter((d / "README.md").read_text()) for d in (cpu, zero))
    assert cpu_meta == repo_meta  # CPU Basic: the repository's own settings
    assert zero_meta["python_version"] in ZEROGPU_PYTHON and zero_meta["suggested_hardware"] == "zero-a10g"
    assert zero_meta["sdk"] == "gradio" and int(zero_meta["sdk_version"].split(".")[0]) >= 4
    assert "![" not in (zero / "README.md").read_text()  # no screenshots: docs/ is not uploaded

    def reqs(d: Path) -> dict[str, str]:
        lines = [ln for ln in (d / "requirements.txt").read_text().splitlines() if ln and not ln.startswith("#")]
        return {re.split(r"[<>=!~ ]", ln, maxsplit=1)[0].lower(): ln for ln in lines}

    repo, cpu_req, zero_req = reqs(ROOT), reqs(cpu), reqs(zero)
    assert cpu_req == repo
    torch_spec = SpecifierSet(zero_req["torch"][len("torch"):])
    assert [v for v in ZEROGPU_TORCH if v in torch_spec] == list(ZEROGPU_TORCH[:4]), "ZeroGPU's torch versions"
    assert "2.14.1" not in torch_spec and "2.7.1" not in torch_spec
    assert "spaces" in zero_req and "spaces" not in cpu_req
    assert {k: v for k, v in zero_req.items() if k not in ("torch", "torchvision", "spaces")} == \
           {k: v for k, v in repo.items() if k not in ("torch", "torchvision")}


def test_real_run_errors_are_one_clear_line(tmp_path: Path) -> None:
    cases = [((), "--space-id"), (("--space-id", "no-slash"), "USER/NAME"),
             (("--space-id", "a/b/c"), "USER/NAME"), (("--space-id", "user/gancls"), "no Hugging Face token"),
             (("--hardware", "tpu", "--dry-run"), "invalid choice")]
    for args, message in cases:
        r = deploy(tmp_path, *args)
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)


def test_the_token_is_never_printed(tmp_path: Path) -> None:
    secret = "hf_testSECRETtoken1234567890"
    # Offline, so create_repo fails at once; the failure must be one line without the token.
    r = deploy(tmp_path, "--space-id", "user/gancls", env=offline_env(tmp_path, HF_TOKEN=secret))
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr, r.stderr
    assert "$HF_TOKEN" in r.stdout  # says where the token came from
    assert secret not in r.stdout + r.stderr
