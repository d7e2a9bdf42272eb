"""Inline SVG charts for the self-contained HTML report: no JavaScript library, no CDN (the
page must open on a machine with no internet access), just SVG the browser draws itself."""

from __future__ import annotations

from decimal import Decimal
from html import escape

PALETTE = ("#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6", "#dd4477")


def _fmt(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def bar_chart(
    items: list[tuple[str, float]], *, title: str, unit: str = "", width: int = 640
) -> str:
    """Horizontal bars, one per (label, value)."""
    if not items:
        return f'<p class="empty">{escape(title)}: no data yet</p>'
    bar_h, gap, label_w = 18, 6, 200
    height = len(items) * (bar_h + gap) + 30
    top = max((v for _, v in items), default=0) or 1.0
    rows = []
    for i, (label, value) in enumerate(items):
        y = 24 + i * (bar_h + gap)
        w = max(1.0, (width - label_w - 80) * max(value, 0) / top)
        rows.append(
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{escape(label)}</text>'
            f'<rect class="bar" x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" '
            f'fill="{PALETTE[0]}"><title>{escape(label)}: {_fmt(value)}{unit}</title></rect>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 13}">{_fmt(value)}{escape(unit)}</text>'
        )
    return (
        f'<svg class="chart" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}"><text x="0" y="14" class="title">{escape(title)}</text>'
        + "".join(rows)
        + "</svg>"
    )


def line_chart(
    series: dict[str, list[tuple[str, float]]], *, title: str, width: int = 640, height: int = 240
) -> str:
    """One line per series over shared x labels (in order of first appearance)."""
    points = [p for s in series.values() for p in s]
    if not points:
        return f'<p class="empty">{escape(title)}: no data yet</p>'
    xs: list[str] = []
    for label, _ in points:
        if label not in xs:
            xs.append(label)
    top = max(v for _, v in points) or 1.0
    left, right, upper, lower = 40, 140, 24, 30
    plot_w, plot_h = width - left - right, height - upper - lower

    def x_of(label: str) -> float:
        return left + (plot_w * xs.index(label) / max(len(xs) - 1, 1))

    def y_of(value: float) -> float:
        return upper + plot_h * (1 - value / top)

    parts = [
        f'<text x="0" y="14" class="title">{escape(title)}</text>',
        f'<line x1="{left}" y1="{upper + plot_h}" x2="{left + plot_w}" y2="{upper + plot_h}" stroke="#999"/>',
        f'<text x="{left - 4}" y="{upper + 4}" text-anchor="end">{_fmt(top)}</text>',
        f'<text x="{left}" y="{height - 8}">{escape(xs[0])}</text>',
        f'<text x="{left + plot_w}" y="{height - 8}" text-anchor="end">{escape(xs[-1])}</text>',
    ]
    for i, (name, values) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        path = " ".join(f"{x_of(lbl):.1f},{y_of(v):.1f}" for lbl, v in values)
        parts.append(
            f'<polyline class="line" fill="none" stroke="{color}" stroke-width="2" points="{path}"/>'
        )
        for lbl, v in values:
            parts.append(
                f'<circle cx="{x_of(lbl):.1f}" cy="{y_of(v):.1f}" r="3" fill="{color}">'
                f"<title>{escape(name)} {escape(lbl)}: {_fmt(v)}</title></circle>"
            )
        parts.append(
            f'<text x="{left + plot_w + 8}" y="{upper + 14 * (i + 1)}" fill="{color}">{escape(name)}</text>'
        )
    return f'<svg class="chart" width="{width}" height="{height}" role="img" aria-label="{escape(title)}">{"".join(parts)}</svg>'


DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def heatmap(cells: dict[tuple[int, int], float], *, title: str) -> str:
    """Hour-of-week grid: cells keyed by (ISO day 1-7, hour 0-23)."""
    if not cells:
        return f'<p class="empty">{escape(title)}: no data yet</p>'
    top = max(cells.values()) or 1.0
    size, left, upper = 22, 40, 40
    parts = [f'<text x="0" y="14" class="title">{escape(title)}</text>']
    for hour in range(0, 24, 3):
        parts.append(f'<text x="{left + hour * size}" y="{upper - 6}">{hour:02d}h</text>')
    for day in range(1, 8):
        y = upper + (day - 1) * size
        parts.append(f'<text x="0" y="{y + 15}">{DAYS[day - 1]}</text>')
        for hour in range(24):
            value = cells.get((day, hour), 0.0)
            shade = value / top
            parts.append(
                f'<rect class="cell" x="{left + hour * size}" y="{y}" width="{size - 2}" '
                f'height="{size - 2}" fill="rgba(51,102,204,{0.06 + 0.94 * shade:.3f})">'
                f"<title>{DAYS[day - 1]} {hour:02d}:00 UTC: {_fmt(value)}</title></rect>"
            )
    width, height = left + 24 * size + 10, upper + 7 * size + 10
    return f'<svg class="chart" width="{width}" height="{height}" role="img" aria-label="{escape(title)}">{"".join(parts)}</svg>'


def table(headers: list[str], rows: list[list[object]]) -> str:
    if not rows:
        return '<p class="empty">no rows</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(_cell(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float | Decimal):
        return _fmt(float(value))
    return str(value)
