"""Server-rendered SVG charts for the dashboard: columns (stacked), lines over time and
horizontal bars. No JavaScript and no style attributes (the admin's Content-Security-Policy):
colours come from CSS classes in events/static/events/dashboard.css. Every mark with an
``href`` is a link to the list behind it, and has a tooltip (an SVG ``<title>``).

Other apps draw their dashboard panels with these too (handlers.admin.dashboard).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

# The viewBox's size: a chart is drawn about as wide as it is shown, so its text stays legible.
WIDTH = 500
WIDE = 1000
HEIGHT = 170
LEFT = 44  # room for the y-axis labels
BOTTOM = 18  # room for the x-axis labels
TOP = 8
# A gap longer than this between two samples breaks a line: nothing was sampled then.
LINE_GAP = timedelta(minutes=2, seconds=30)


@dataclass(frozen=True)
class Segment:
    """One part of a column (or of a bar): its value, CSS class, tooltip and link."""

    value: float
    css: str
    title: str
    href: str = ""


@dataclass(frozen=True)
class Column:
    label: str  # under the column, for the first and the last one
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class Series:
    """A line over time: (time, value) points, oldest first."""

    name: str
    css: str
    points: tuple[tuple[datetime, float], ...]
    href: str = ""


@dataclass(frozen=True)
class Bar:
    """A row of horizontal bars drawn over each other, the longest first (p95 behind p50),
    with ``text`` (the figures) after them."""

    label: str
    segments: tuple[Segment, ...]
    text: str
    href: str = ""


def number(value: float) -> str:
    """Short axis and tooltip numbers: 3, 2.5, 1.2k, 3.4M."""
    for limit, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}".removesuffix(".0") + suffix
    if value == int(value):
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".") if abs(value) < 10 else f"{value:.1f}"


def joined(parts: Sequence[SafeString]) -> SafeString:
    """Parts built with format_html, one after another (nothing escaped twice)."""
    return format_html_join("", "{}", ((part,) for part in parts))


def _svg(label: str, body: list[SafeString], width: int) -> SafeString:
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}">'
        "<title>{}</title>{}</svg>",
        width,
        HEIGHT,
        label,
        label,
        joined(body),
    )


def _linked(href: str, mark: SafeString) -> SafeString:
    return format_html('<a href="{}">{}</a>', href, mark) if href else mark


def _y_axis(top: float, unit: str, width: int) -> list[SafeString]:
    """The frame's baseline and its top value."""
    base = HEIGHT - BOTTOM
    return [
        format_html(
            '<line class="axis" x1="{}" y1="{}" x2="{}" y2="{}"/>', LEFT, base, width, base
        ),
        format_html('<line class="grid" x1="{}" y1="{}" x2="{}" y2="{}"/>', LEFT, TOP, width, TOP),
        format_html(
            '<text class="tick" x="{}" y="{}" text-anchor="end">{}{}</text>',
            LEFT - 4,
            TOP + 4,
            number(top),
            unit,
        ),
        format_html('<text class="tick" x="{}" y="{}" text-anchor="end">0</text>', LEFT - 4, base),
    ]


def _x_labels(first: str, last: str, width: int) -> list[SafeString]:
    y = HEIGHT - 4
    return [
        format_html('<text class="tick" x="{}" y="{}">{}</text>', LEFT, y, first),
        format_html('<text class="tick" x="{}" y="{}" text-anchor="end">{}</text>', width, y, last),
    ]


def columns(
    cols: Sequence[Column], *, label: str, unit: str = "", width: int = WIDTH
) -> SafeString:
    """Stacked columns, one per entry of ``cols``, left to right."""
    top = max((sum(s.value for s in col.segments) for col in cols), default=0) or 1
    plot_h = HEIGHT - BOTTOM - TOP
    step = (width - LEFT) / max(len(cols), 1)
    column_w = max(step - 1, 1)
    body = _y_axis(top, unit, width)
    for n, col in enumerate(cols):
        x = LEFT + n * step
        base = float(HEIGHT - BOTTOM)
        for segment in col.segments:
            if segment.value <= 0:
                continue
            h = segment.value / top * plot_h
            base -= h
            rect = format_html(
                '<rect class="{}" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
                segment.css,
                f"{x:.1f}",
                f"{base:.1f}",
                f"{column_w:.1f}",
                f"{h:.1f}",
                segment.title,
            )
            body.append(_linked(segment.href, rect))
    if cols:
        body += _x_labels(cols[0].label, cols[-1].label, width)
    return _svg(label, body, width)


def lines(
    series: Sequence[Series],
    *,
    start: datetime,
    end: datetime,
    label: str,
    first: str,
    last: str,
    unit: str = "",
    width: int = WIDTH,
) -> SafeString:
    """Each series as a line from ``start`` to ``end``, broken where samples are missing."""
    values = [value for s in series for _, value in s.points]
    top = max(values, default=0) or 1
    span = (end - start).total_seconds() or 1
    plot_h = HEIGHT - BOTTOM - TOP

    def xy(moment: datetime, value: float) -> str:
        x = LEFT + (moment - start).total_seconds() / span * (width - LEFT)
        y = HEIGHT - BOTTOM - value / top * plot_h
        return f"{x:.1f},{y:.1f}"

    body = _y_axis(top, unit, width)
    for s in series:
        runs: list[list[tuple[datetime, float]]] = []
        for point in s.points:
            if runs and point[0] - runs[-1][-1][0] <= LINE_GAP:
                runs[-1].append(point)
            else:
                runs.append([point])
        marks = []
        for run in runs:
            if len(run) == 1:
                x, y = xy(*run[0]).split(",")
                marks.append(format_html('<circle class="{}" cx="{}" cy="{}" r="2"/>', s.css, x, y))
            else:
                marks.append(
                    format_html(
                        '<polyline class="{}" points="{}"/>',
                        s.css,
                        " ".join(xy(*point) for point in run),
                    )
                )
        group = format_html("<g><title>{}</title>{}</g>", s.name, joined(marks))
        body.append(_linked(s.href, group))
    body += _x_labels(first, last, width)
    return _svg(label, body, width)


def bars(rows: Sequence[Bar], *, label: str, width: int = WIDTH) -> SafeString:
    """One row per entry: its label on the left, its segments as bars over each other, its
    text on the right."""
    top = max((s.value for row in rows for s in row.segments), default=0) or 1
    row_h = 22
    height = max(len(rows), 1) * row_h + 4
    left = 150
    text_w = 120
    body: list[SafeString] = []
    for n, row in enumerate(rows):
        y = 2 + n * row_h
        marks = [
            format_html(
                '<text class="tick" x="{}" y="{}" text-anchor="end">{}</text>',
                left - 6,
                y + 14,
                row.label,
            )
        ]
        for segment in sorted(row.segments, key=lambda s: -s.value):
            w = max(segment.value / top * (width - left - text_w), 1)
            marks.append(
                format_html(
                    '<rect class="{}" x="{}" y="{}" width="{}" height="16">'
                    "<title>{}</title></rect>",
                    segment.css,
                    left,
                    y + 2,
                    f"{w:.1f}",
                    segment.title,
                )
            )
        marks.append(
            format_html(
                '<text class="value" x="{}" y="{}">{}</text>', width - text_w + 6, y + 14, row.text
            )
        )
        body.append(_linked(row.href, format_html("<g>{}</g>", joined(marks))))
    return format_html(
        '<svg class="chart bars" viewBox="0 0 {} {}" role="img" aria-label="{}">'
        "<title>{}</title>{}</svg>",
        width,
        height,
        label,
        label,
        joined(body),
    )
