"""The README and docs/ hold together: the README stays short, links and cited results exist, every benchmark is listed."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BENCH_README = ROOT / "bench" / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, BENCH_README, *DOCS]

FENCE = re.compile(r"^```.*?^```[^\n]*$", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
RESULT = re.compile(r"bench/results/[A-Za-z0-9_.+-]+\.json")
BENCH_CMD = re.compile(r"python -m bench\.([A-Za-z0-9_]+)")


def prose(text: str) -> str:
    """The text without code blocks and inline code, where a `[x](y)` is not a link."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def links(text: str) -> list[str]:
    """Every link and image target in markdown text, in order."""
    return LINK.findall(prose(text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors a markdown page's headings make."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {slug(h) for h in re.findall(r"^#{1,6}\s+(.+?)\s*$", text, re.M)}


def benchmarks() -> list[str]:
    """Modules in bench/ that run as a benchmark (they have a __main__ block); helpers do not."""
    return sorted(p.stem for p in (ROOT / "bench").glob("*.py")
                  if not p.name.startswith("_") and '__name__ == "__main__"' in p.read_text(encoding="utf-8"))


def test_the_checks_see_what_they_check() -> None:
    sample = ('See [a](docs/a.md#x) and ![b](shots/b.png "t"), and [c](https://x.org).\n'
              "`[not](a link)`\n```\n[nor](this.md)\n```\n")
    assert links(sample) == ["docs/a.md#x", "shots/b.png", "https://x.org"]
    assert slug("Memory, the class and the public server") == "memory-the-class-and-the-public-server"
    assert slug("`arch=seed` against the TF-1 reference (EPYC)") == "archseed-against-the-tf-1-reference-epyc"
    assert RESULT.findall("cite `bench/results/a_b-1.json`, not bench/results/") == ["bench/results/a_b-1.json"]
    assert len(links(README.read_text(encoding="utf-8"))) >= 10, "the README links to its docs/ pages"
    assert {"throughput", "classroom", "ui_browser"} <= set(benchmarks())


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move detail to docs/"
    assert lines[0] == "---" and "app_file: app.py" in lines, "the Space's front matter stays at the top"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in links(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{page.relative_to(ROOT)}: {broken}"


def test_cited_results_exist() -> None:
    missing = sorted({(page.relative_to(ROOT).as_posix(), rel) for page in PAGES
                      for rel in RESULT.findall(page.read_text(encoding="utf-8")) if not (ROOT / rel).is_file()})
    assert not missing, f"cited but not in bench/results/: {missing}"


def test_every_benchmark_is_listed_and_every_command_names_one() -> None:
    listed = set(BENCH_CMD.findall(BENCH_README.read_text(encoding="utf-8")))
    unlisted = [name for name in benchmarks() if name not in listed]
    assert not unlisted, f"bench/README.md does not list: {unlisted}"
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        rel = page.relative_to(ROOT).as_posix()
        unknown = sorted({m for m in BENCH_CMD.findall(text) if not (ROOT / "bench" / f"{m}.py").is_file()})
        assert not unknown, f"{rel} runs benchmarks that do not exist: {unknown}"
        assert not re.search(r"python3? bench/\w+\.py", text), f"{rel}: run benchmarks as python -m bench.<name>"
