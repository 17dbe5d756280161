"""Inline SVG charts rendered in Python, so reports need neither JavaScript nor network.

Every text that comes from a run (model names) is escaped here; the result is ``Markup``
that templates insert as is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict

from markupsafe import Markup, escape

from ..analysis.summary import ModelSummary, pareto_front
from ..costing import Currency
from ..i18n import Translator

PALETTE = ("#1b6ca8", "#c8553d", "#2a9d8f", "#8e5ea2", "#e9a03b", "#5c677d", "#d1495b",
           "#00798c", "#6a994e", "#9c6644")


@dataclass(frozen=True)
class Point:
    label: str
    x: float
    y: float
    on_front: bool = False
    note: str = ""  # shown after the label in the legend, e.g. the model size


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    step = (high - low) / (count - 1)
    return [low + i * step for i in range(count)]


def _span(values: Sequence[float], floor_zero: bool) -> tuple[float, float]:
    low, high = min(values), max(values)
    if floor_zero:
        low = min(0.0, low)
    if high - low < 1e-12:
        pad = abs(high) * 0.1 or 1.0
        return low - (0 if floor_zero else pad), high + pad
    pad = (high - low) * 0.08
    return (low if floor_zero else low - pad), high + pad


def scatter(
    points: Sequence[Point], *, x_label: str, y_label: str, title: str,
    x_format: str = "{:,.3g}", width: int = 560, height: int = 340,
    legend_max: int | None = None, point_titles: bool = True,
) -> Markup:
    """A scatter plot of models with the Pareto front drawn as a line. ``y`` is a quality
    in [0, 1] shown in percent; ``x`` is a cost or latency (lower is better).
    ``legend_max``: past that many points the legend names only the front's (a leaderboard
    of a thousand models); ``point_titles``: hover titles on the points (useless, and only
    weight, in an SVG shown as an image)."""
    left, right, top, bottom = 64, 170, 16, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    if not points:
        return Markup("")
    x_low, x_high = _span([p.x for p in points], floor_zero=True)
    y_low, y_high = _span([p.y for p in points], floor_zero=False)
    y_low, y_high = max(0.0, y_low), min(1.0, y_high)

    def sx(x: float) -> float:
        return left + (x - x_low) / (x_high - x_low) * plot_w

    def sy(y: float) -> float:
        return top + plot_h - (y - y_low) / ((y_high - y_low) or 1.0) * plot_h

    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg" direction="ltr">',
        f"<title>{escape(title)}</title>",
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafbfc" '
        'stroke="#d0d4d9"/>',
    ]
    for tick in _ticks(x_low, x_high):
        x = sx(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{top + plot_h}" x2="{x:.1f}" '
                     f'y2="{top + plot_h + 4}" stroke="#5f6368"/>')
        parts.append(f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle" '
                     f'font-size="10">{escape(x_format.format(tick))}</text>')
    for tick in _ticks(y_low, y_high):
        y = sy(tick)
        parts.append(f'<line x1="{left - 4}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" '
                     'stroke="#e3e6ea"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 3:.1f}" text-anchor="end" '
                     f'font-size="10">{100 * tick:.0f}%</text>')
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 8}" text-anchor="middle" '
                 f'font-size="11">{escape(x_label)}</text>')
    parts.append(f'<text transform="translate(14 {top + plot_h / 2:.1f}) rotate(-90)" '
                 f'text-anchor="middle" font-size="11">{escape(y_label)}</text>')
    front = sorted((p for p in points if p.on_front), key=lambda p: (p.x, p.y))
    if len(front) > 1:
        path = " ".join(f"{sx(p.x):.1f},{sy(p.y):.1f}" for p in front)
        parts.append(f'<polyline class="front" points="{path}" fill="none" stroke="#2a9d8f" '
                     'stroke-width="2" stroke-dasharray="5 3"/>')
    for i, point in enumerate(points):
        colour = PALETTE[i % len(PALETTE)]
        x, y = sx(point.x), sy(point.y)
        shape = (f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{6 if point.on_front else 4}" '
                 f'fill="{colour}" stroke="{"#1d1d1f" if point.on_front else "none"}"/>')
        parts.append(f"<g><title>{escape(point.label)}</title>{shape}</g>" if point_titles
                     else shape)
    # Legend instead of labels next to points: labels of close points would overlap.
    listed = list(enumerate(points))
    if legend_max is not None and len(points) > legend_max:
        listed = [(i, p) for i, p in listed if p.on_front]
    for row, (i, point) in enumerate(listed):
        colour = PALETTE[i % len(PALETTE)]
        ly = top + 6 + row * 15
        mark = " ★" if point.on_front else ""
        parts.append(f'<circle cx="{left + plot_w + 12}" cy="{ly}" r="4" fill="{colour}"/>')
        parts.append(f'<text x="{left + plot_w + 20}" y="{ly + 3}" font-size="10">'
                     f"{escape(_shorten(point.label))}{escape(point.note)}{mark}</text>")
    parts.append("</svg>")
    return Markup("".join(parts))


def _shorten(text: str, limit: int = 22) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Chart(TypedDict):
    title: str
    svg: Markup
    front: list[str]  # models on the Pareto front
    missing: list[str]  # models without the figure (no cost or latency known)


def tradeoff_charts(models: Sequence[ModelSummary], t: Translator,
                    currency: Currency) -> list[Chart]:
    """Quality against cost per 1,000 requests and against p95 latency, Pareto front marked."""
    charts: list[Chart] = []
    for key, axis in (("cost", "chart_x_cost"), ("p95", "chart_x_p95")):
        rows = []
        for model in models:
            quality = model.quality()
            x = model.cost_per_1k(currency) if key == "cost" else model.latency("p95_ms")
            if quality is not None and x is not None:
                rows.append((model, x, quality))
        front = pareto_front([(x, q) for _, x, q in rows])
        points = [Point(m.name, x, q, i in front,
                        "" if m.parameters_b is None else f" ({m.parameters_b:g} B)")
                  for i, (m, x, q) in enumerate(rows)]
        charts.append({
            "title": t(f"chart_title_{key}"),
            "svg": scatter(points, x_label=t(axis, currency=currency), y_label=t("chart_y"),
                           title=t(f"chart_title_{key}")),
            "front": [p.label for p in points if p.on_front],
            "missing": [m.name for m in models if m.name not in {p.label for p in points}],
        })
    return charts
