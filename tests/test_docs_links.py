"""The documents' links lead somewhere: every relative link and every #anchor in README.md and
docs/*.md resolves. The target file exists (relative to the linking file, inside the
repository) and the anchor is a heading of the target, slugged as GitHub does it. Links with
a scheme (https:, mailto:) and links in code are not checked. Pure: no network.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
DOCUMENTS = [README, *sorted(DOCS.rglob("*.md"))]
README_MAX_LINES = 200

FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})")
ATX_HEADING = re.compile(r"^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
SETEXT_UNDERLINE = re.compile(r"^ {0,3}(?:=+|-+)[ \t]*$")
NOT_A_PARAGRAPH = re.compile(r"^[ \t]*(?:$|#|\||>|[-*+][ \t]|\d+[.)][ \t])")
# Code spans, which end at the paragraph: never across a blank line.
CODE_SPAN = re.compile(r"(`+)(?!`)((?:(?!\n[ \t]*\n).)+?)(?<!`)\1(?!`)", re.DOTALL)
INLINE_LINK = re.compile(r"\]\([ \t]*<?([^)\s>]*)>?(?:[ \t]+(?:\"[^\"]*\"|'[^']*'))?[ \t]*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:[ \t]*<?([^\s>]+)>?", re.MULTILINE)
HTML_HREF = re.compile(r"<a\s[^>]*\bhref=\"([^\"]*)\"", re.IGNORECASE)
HTML_ANCHOR = re.compile(r"<a\s[^>]*\b(?:name|id)=\"([^\"]+)\"", re.IGNORECASE)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
MARKDOWN_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
HTML_TAG = re.compile(r"<[^>]+>")
NOT_IN_SLUG = re.compile(r"[^\w\- ]")


@dataclass(frozen=True)
class Link:
    source: Path
    line: int
    destination: str

    def __str__(self) -> str:
        return f"{self.source.relative_to(ROOT)}:{self.line}: ({self.destination})"


def without_code_blocks(text: str) -> str:
    """The text with every fenced code block's lines emptied (line numbers kept)."""
    lines = text.split("\n")
    fence: str | None = None
    for number, line in enumerate(lines):
        opened = FENCE.match(line)
        if fence is None and opened:
            fence = opened.group(1)
            lines[number] = ""
        elif fence is not None:
            closing = line.strip()
            if closing.startswith(fence) and set(closing) == {fence[0]}:
                fence = None
            lines[number] = ""
    return "\n".join(lines)


def blank(match: re.Match[str]) -> str:
    return re.sub(r"[^\n]", " ", match.group(0))


def links(path: Path) -> Iterator[Link]:
    """Every link destination of a Markdown file, outside code blocks and code spans."""
    text = CODE_SPAN.sub(blank, without_code_blocks(path.read_text(encoding="utf-8")))
    for pattern in (INLINE_LINK, REFERENCE_DEFINITION, HTML_HREF):
        for match in pattern.finditer(text):
            yield Link(path, text.count("\n", 0, match.start()) + 1, match.group(1))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text, before duplicates are numbered: lowercase,
    inline markup gone, characters other than letters, digits, spaces, hyphens and
    underscores dropped, each space a hyphen."""
    text = HTML_TAG.sub("", MARKDOWN_LINK.sub(r"\1", heading)).strip().lower()
    return NOT_IN_SLUG.sub("", text).replace(" ", "-")


def numbered(slugs: list[str]) -> list[str]:
    """Duplicate slugs numbered as GitHub does: `a`, `a-1`, `a-2` (github-slugger)."""
    occurrences: dict[str, int] = {}
    result = []
    for original in slugs:
        unique = original
        while unique in occurrences:
            occurrences[original] += 1
            unique = f"{original}-{occurrences[original]}"
        occurrences[unique] = 0
        result.append(unique)
    return result


def headings(text: str) -> list[str]:
    """The text of every heading (ATX and setext), outside code blocks, in order."""
    found = []
    previous = ""
    for line in without_code_blocks(text).split("\n"):
        atx = ATX_HEADING.match(line)
        if atx:
            found.append(atx.group(1) or "")
            line = ""
        elif SETEXT_UNDERLINE.match(line) and not NOT_A_PARAGRAPH.match(previous):
            found.append(previous)
            line = ""
        previous = line
    return found


@cache
def anchors(path: Path) -> frozenset[str]:
    text = path.read_text(encoding="utf-8")
    named = HTML_ANCHOR.findall(without_code_blocks(text))
    return frozenset(numbered([slug(h) for h in headings(text)]) + named)


def problem(link: Link) -> str | None:
    """Why a link does not resolve, or None when it does (or is not ours to check)."""
    if SCHEME.match(link.destination):
        return None
    path_part, _, anchor = link.destination.partition("#")
    target = (link.source.parent / unquote(path_part)).resolve() if path_part else link.source
    if not target.is_relative_to(ROOT):
        return "leads out of the repository"
    if not target.exists():
        return f"{target.relative_to(ROOT)} does not exist"
    if not anchor:
        return None
    if target.suffix != ".md":
        return f"an anchor into {target.relative_to(ROOT)}, which is not Markdown"
    if unquote(anchor) not in anchors(target):
        return f"no heading of {target.relative_to(ROOT)} has the anchor #{anchor}"
    return None


def broken_links(path: Path) -> list[str]:
    return [f"{link}: {reason}" for link in links(path) if (reason := problem(link))]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_links_resolve(document: Path) -> None:
    """Every relative link of the document leads to a file, and every anchor to a heading."""
    assert [] == broken_links(document)


def test_docs_readme_links_every_docs_page() -> None:
    """The README's "where to go next" reaches every page of docs/."""
    linked = {
        (README.parent / unquote(link.destination.partition("#")[0])).resolve()
        for link in links(README)
        if not SCHEME.match(link.destination)
    }

    assert [] == [str(p.relative_to(ROOT)) for p in DOCUMENTS[1:] if p not in linked]


def test_docs_readme_stays_short() -> None:
    """The README says what dealkeeper is and where to read on; the rest lives in docs/."""
    lines = README.read_text(encoding="utf-8").count("\n")

    assert lines <= README_MAX_LINES


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("What the intake refuses, and why", "what-the-intake-refuses-and-why"),
        ("`enabled` and `dry_run`", "enabled-and-dry_run"),
        ("`explain`: why did (or didn't) a rule fire?", "explain-why-did-or-didnt-a-rule-fire"),
        ("Bird's eye view", "birds-eye-view"),
        ("Sizing  ", "sizing"),
        ("Links [to docs](docs/close.md) & more", "links-to-docs--more"),
        ("Größe über 1,000 MB", "größe-über-1000-mb"),
    ],
)
def test_docs_slug_follows_github(heading: str, anchor: str) -> None:
    """Headings become anchors by GitHub's rules."""
    assert anchor == slug(heading)


def test_docs_duplicate_headings_are_numbered() -> None:
    """A heading used again gets -1, -2, ..., skipping a slug already taken."""
    assert ["notes", "notes-1", "notes-2", "notes-1-1"] == numbered(
        ["notes", "notes", "notes", "notes-1"]
    )


def test_docs_links_broken_ones_are_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing file and a missing anchor are reported with their lines; links in code,
    links with a scheme and anchors that exist (numbered duplicates too) are not."""
    tmp_path = tmp_path.resolve()
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    (tmp_path / "other.md").write_text("# Other\n\nSetext one\n----------\n\n## Twice\n## Twice\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n"
        "\n"
        "[fine](other.md#setext-one), [also](other.md#twice-1), [here](#page),\n"
        "[web](https://example.com/missing.md), [mail](mailto:ops@example.com), `[x](gone.md)`\n"
        "\n"
        "   ```md\n"
        "   [in a fence](gone.md)\n"
        "   ```\n"
        "\n"
        "[gone](gone.md) and [nowhere](other.md#twice-2)\n"
        "\n"
        "[ref]: ./other.md#nope\n"
    )

    assert [
        "page.md:10: (gone.md): gone.md does not exist",
        "page.md:10: (other.md#twice-2): no heading of other.md has the anchor #twice-2",
        "page.md:12: (./other.md#nope): no heading of other.md has the anchor #nope",
    ] == broken_links(page)
