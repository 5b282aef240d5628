"""Bar charts as inline SVG, drawn on the server: no script, no CDN, readable without colour.

Pure: a chart is a function of its numbers. Jinja2 escapes nothing here, so every text that
goes into the SVG is escaped by `_esc`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

# The outcomes' colours: written and fine, nothing to do, trouble. Shapes repeat the
# meaning in the legend's text, so the chart reads without colour too.
COLOURS = {
    "applied": "#2f7d32",
    "dry_run": "#6a8caf",
    "not_taken": "#c77700",
    "no_update": "#cfd8dc",
    "stale": "#8d6e63",
    "own_change": "#b0bec5",
}
OTHER_COLOUR = "#9e9e9e"


@dataclass(frozen=True)
class Series:
    """One stacked part of every bar: a name and a value per bar."""

    name: str
    values: Sequence[int]


def stacked_bars(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    width: int = 720,
    height: int = 180,
) -> Markup:
    """Bars side by side, each stacked from `series`, with the largest total as the scale."""
    count = max(len(labels), 1)
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    top = max(totals, default=0) or 1
    plot_height = height - 30
    slot = width / count
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" aria-label="{_esc(title)}">',
        f"<title>{_esc(title)}</title>",
    ]
    for i, label in enumerate(labels):
        y = float(plot_height)
        for s in series:
            value = s.values[i]
            if not value:
                continue
            h = plot_height * value / top
            y -= h
            colour = COLOURS.get(s.name, OTHER_COLOUR)
            parts.append(
                f'<rect x="{i * slot + 1:.1f}" y="{y:.1f}" width="{max(slot - 2, 1):.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{_esc(label)}: {value} '
                f"{_esc(s.name)}</title></rect>"
            )
        if i % max(count // 8, 1) == 0:
            parts.append(
                f'<text x="{i * slot:.1f}" y="{height - 8}" class="axis">{_esc(label)}</text>'
            )
    parts.append(f'<text x="0" y="12" class="axis">max {top}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def horizontal_bars(
    rows: Sequence[tuple[str, int]], *, title: str, width: int = 480, row_height: int = 22
) -> Markup:
    """One bar per row, labelled, longest first as given."""
    top = max((value for _, value in rows), default=0) or 1
    label_width = 180
    height = row_height * max(len(rows), 1) + 4
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" '
        f'aria-label="{_esc(title)}"><title>{_esc(title)}</title>'
    ]
    for i, (label, value) in enumerate(rows):
        y = i * row_height + 2
        bar = (width - label_width - 50) * value / top
        parts.append(
            f'<text x="0" y="{y + 15}" class="axis">{_esc(label[:28])}</text>'
            f'<rect x="{label_width}" y="{y + 3}" width="{bar:.1f}" height="{row_height - 6}" '
            f'fill="#b3261e"></rect>'
            f'<text x="{label_width + bar + 4:.1f}" y="{y + 15}" class="axis">{value}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _esc(text: str) -> str:
    return escape(str(text), quote=True)
