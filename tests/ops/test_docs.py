"""The README and docs/: every relative link and anchor resolves; the mkdocs site builds strict.

No network: external links are not fetched, only the files and headings links point at.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def slug(heading: str) -> str:
    """GitHub's (and mkdocs' toc) anchor for a heading."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, re.M):
        base = slug(heading)
        n = 1
        name = base
        while name in found:  # repeated headings get -1, -2, ... as on GitHub
            name = f"{base}-{n}"
            n += 1
        found.add(name)
    return found


def links(page: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", page.read_text()))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_anchors_resolve(page: Path) -> None:
    broken = []
    for target in links(page):
        if re.match(r"^[a-z]+:", target):
            continue  # http(s), mailto: not fetched
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading #{anchor}")
    assert not broken, broken


def test_the_docs_site_builds_strict(tmp_path: Path) -> None:
    mkdocs = Path(sys.executable).parent / "mkdocs"
    result = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


README_SECTIONS = [
    "Quick start",
    "Install",
    "Configuration",
    "Command line",
    "Connect a PBX",
    "Importing customer data",
    "Several instances behind TLS",
    "Back up and restore",
    "Retention",
    "Upgrade",
    "Troubleshoot",
    "Performance",
]


def test_the_readme_is_an_operators_guide() -> None:
    """Quick start first (``make run``, ``make test``), the operator's sections in order, short."""
    text = (ROOT / "README.md").read_text()
    sections = re.findall(r"^## (.+)$", FENCE.sub("", text), re.M)
    assert [s for s in sections if s in README_SECTIONS] == README_SECTIONS
    assert sections[0] == "Quick start"
    quick = text.split("## Quick start", 1)[1]
    assert quick.index("make run") < quick.index("make test") < quick.index("\n## ")
    assert len(text.splitlines()) <= 700
