"""Every relative link of README.md, DESIGN.md and docs/*.md leads somewhere: to a file of the repository, and with
a `#fragment` to a heading of that file (by GitHub's anchor rule)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from conftest import ROOT

PAGES = [ROOT / "README.md", ROOT / "DESIGN.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _prose(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def github_anchor(heading: str) -> str:
    """GitHub's anchor of a heading: its rendered text, lower case, punctuation but `-` and `_` dropped, spaces as `-`."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its text
    text = re.sub(r"[`*]", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found, seen = set(), Counter()
    for line in _prose(page.read_text()):
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            anchor = github_anchor(match.group(1))
            found.add(anchor if not seen[anchor] else f"{anchor}-{seen[anchor]}")  # repeated headings: -1, -2, ...
            seen[anchor] += 1
    return found


def links(page: Path) -> list[str]:
    return [m.group(1) for line in _prose(page.read_text()) for m in LINK.finditer(line)
            if not re.match(r"[a-z][a-z0-9+.-]*:", m.group(1))]  # not http:, https:, mailto:


def test_the_anchor_rule():
    assert github_anchor("Iterative compression (`--schedule`, `--rounds`)") == "iterative-compression---schedule---rounds"
    assert github_anchor("What convert refuses, and the quality check") == "what-convert-refuses-and-the-quality-check"


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_relative_link_resolves(page):
    broken = []
    for link in links(page):
        path, _, fragment = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists() or ROOT not in target.parents:
            broken.append(f"{link}: no file {target}")
        elif fragment and fragment not in anchors(target):
            broken.append(f"{link}: no heading #{fragment} in {target.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}:\n" + "\n".join(broken)


def test_the_readme_is_a_front_door():
    """Short, and every page of docs/ reachable from it."""
    readme = ROOT / "README.md"
    assert len(readme.read_text().splitlines()) <= 130
    linked = {(readme.parent / link.partition("#")[0]).resolve() for link in links(readme)}
    assert {p.resolve() for p in (ROOT / "docs").glob("*.md")} <= linked
