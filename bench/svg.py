"""Hand-written SVG charts for the benchmark report: grouped horizontal bars and lines against a count.

Plain SVG text (no plotting library): the charts are few and simple, render the same in every browser and on
GitHub, and stay small enough to diff. Each chart names its series in a legend and draws the target, when there
is one, as a dashed line, so a reader sees at a glance who is ahead and whether the target is met.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

COLOURS = ("#7a7a7a", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b")
"""Series colours in order: the reference broker (Mosquitto) first, in grey."""
WIDTH = 860
FONT = 'font-family="sans-serif"'

Series = tuple[str, Sequence[float | str | None]]
"""A series name and one value per group: a figure, a note drawn instead of a bar (why there is no figure), or None
(not measured)."""


def _nice_max(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above ``value``, so the axis ticks are round."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(float(step * power) for step in (1, 2, 5, 10) if step * power >= value)


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.1f}"
    return f"{value:.3f}"


def _tick(value: float) -> str:
    return f"{value:,.0f}" if value >= 1000 else f"{value:g}"


def _wrap(label: str, width: int = 44) -> list[str]:
    """A long scenario label broken at spaces into lines of at most ``width`` characters."""
    lines: list[str] = []
    for word in label.split(" "):
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def _text(x: float, y: float, text: str, anchor: str = "start", extra: str = "", size: int = 12) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {FONT} font-size="{size}"{extra}>{escape(text)}</text>'
    )


def _document(height: float, title: str, body: list[str]) -> str:
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0f}"'
            f' viewBox="0 0 {WIDTH} {height:.0f}" role="img">',
            f"<title>{escape(title)}</title>",
            f'<rect width="{WIDTH}" height="{height:.0f}" fill="white"/>',
            _text(WIDTH / 2, 22, title, "middle", ' font-weight="bold"', 15),
            *body,
            "</svg>",
            "",
        ]
    )


def _legend(names: Sequence[str], y: float, target: str | None) -> list[str]:
    out: list[str] = []
    x = 20.0
    for index, name in enumerate(names):
        out.append(
            f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12" fill="{COLOURS[index % len(COLOURS)]}"/>'
        )
        out.append(_text(x + 17, y, name))
        x += 30 + 7 * len(name)
    if target is not None:
        out.append(
            f'<line x1="{x:.1f}" y1="{y - 4:.1f}" x2="{x + 24:.1f}" y2="{y - 4:.1f}" stroke="#d62728"'
            ' stroke-width="2" stroke-dasharray="5,3"/>'
        )
        out.append(_text(x + 29, y, target))
    return out


def bar_chart(
    title: str,
    unit: str,
    groups: Sequence[str],
    series: Sequence[Series],
    target: tuple[str, float] | None = None,
) -> str:
    """Horizontal bars: one group per scenario, one bar per series, the value written at the end of each bar.

    Args:
        title: Heading of the chart.
        unit: What the values are (axis label), e.g. ``msg/s received``.
        groups: Scenario labels, top to bottom.
        series: Names and values, one value per group; a note or ``None`` leaves the bar out and says why.
        target: Optional (label, value) drawn as a dashed vertical line.
    """
    label_width, left_pad, right_pad, bar, gap = 300.0, 10.0, 70.0, 16.0, 14.0
    plot_left = left_pad + label_width
    plot_width = WIDTH - plot_left - right_pad
    values = [v for _, vs in series for v in vs if isinstance(v, int | float)]
    top_value = _nice_max(max([*values, target[1] if target else 0.0], default=1.0))
    top = 60.0
    group_height = bar * len(series) + gap
    body = _legend([name for name, _ in series], 44, target[0] if target else None)
    for g, group in enumerate(groups):
        y0 = top + g * group_height
        lines = _wrap(group)
        first = y0 + bar * len(series) / 2 + 4 - 7 * (len(lines) - 1)
        body += [_text(plot_left - 8, first + 14 * n, line, "end") for n, line in enumerate(lines)]
        for s, (_, vs) in enumerate(series):
            y = y0 + s * bar
            value = vs[g] if g < len(vs) else None
            if not isinstance(value, int | float):
                body.append(_text(plot_left + 4, y + bar - 4, value or "not measured", extra=' fill="#777"'))
                continue
            length = plot_width * value / top_value
            colour = COLOURS[s % len(COLOURS)]
            body.append(
                f'<rect x="{plot_left:.1f}" y="{y:.1f}" width="{length:.1f}" height="{bar - 2:.1f}" fill="{colour}"/>'
            )
            body.append(_text(plot_left + length + 4, y + bar - 5, _number(value)))
    bottom = top + len(groups) * group_height
    body.append(f'<line x1="{plot_left:.1f}" y1="{top - 4:.1f}" x2="{plot_left:.1f}" y2="{bottom:.1f}" stroke="#333"/>')
    for tick in range(6):
        value = top_value * tick / 5
        x = plot_left + plot_width * tick / 5
        body.append(f'<line x1="{x:.1f}" y1="{bottom:.1f}" x2="{x:.1f}" y2="{bottom + 4:.1f}" stroke="#333"/>')
        body.append(_text(x, bottom + 17, _tick(value), "middle"))
    body.append(_text(plot_left + plot_width / 2, bottom + 35, unit, "middle"))
    if target is not None:
        x = plot_left + plot_width * target[1] / top_value
        body.append(
            f'<line x1="{x:.1f}" y1="{top - 4:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" stroke="#d62728"'
            ' stroke-width="2" stroke-dasharray="5,3"/>'
        )
    return _document(bottom + 50, title, body)


def line_chart(
    title: str,
    x_label: str,
    y_label: str,
    series: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    target: tuple[str, float] | None = None,
) -> str:
    """Lines with a marked point per measurement: a figure against a count (say KiB per connection by connections).

    Args:
        title: Heading of the chart.
        x_label: What the x values count, e.g. ``connections``.
        y_label: What the y values are.
        series: Names and their (x, y) points; a series with one point is drawn as that point.
        target: Optional (label, value) drawn as a dashed horizontal line.
    """
    left, right, top, height = 80.0, 30.0, 60.0, 300.0
    plot_width = WIDTH - left - right
    xs = sorted({x for _, points in series for x, _ in points}) or [0.0]
    ys = [y for _, points in series for _, y in points]
    top_y = _nice_max(max([*ys, target[1] if target else 0.0], default=1.0))
    bottom = top + height

    # The x axis is evenly spaced by measured count (10,000 and 100,000 side by side, not squeezed to one end).
    def x_of(value: float) -> float:
        if len(xs) == 1:
            return left + plot_width / 2
        return left + plot_width * (0.05 + 0.9 * xs.index(value) / (len(xs) - 1))

    def y_of(value: float) -> float:
        return bottom - height * value / top_y

    body = _legend([name for name, _ in series], 44, target[0] if target else None)
    body.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#333"/>')
    body.append(f'<line x1="{left}" y1="{bottom}" x2="{WIDTH - right}" y2="{bottom}" stroke="#333"/>')
    for tick in range(6):
        value = top_y * tick / 5
        body.append(
            f'<line x1="{left - 4}" y1="{y_of(value):.1f}" x2="{WIDTH - right}" y2="{y_of(value):.1f}"'
            ' stroke="#e5e5e5"/>'
        )
        body.append(_text(left - 8, y_of(value) + 4, _tick(value), "end"))
    for x in xs:
        body.append(_text(x_of(x), bottom + 17, f"{x:,.0f}", "middle"))
    body.append(_text(left + plot_width / 2, bottom + 35, x_label, "middle"))
    body.append(_text(18, top + height / 2, y_label, "middle", f' transform="rotate(-90 18 {top + height / 2:.1f})"'))
    if target is not None:
        body.append(
            f'<line x1="{left}" y1="{y_of(target[1]):.1f}" x2="{WIDTH - right}" y2="{y_of(target[1]):.1f}"'
            ' stroke="#d62728" stroke-width="2" stroke-dasharray="5,3"/>'
        )
    for index, (_, points) in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        ordered = sorted(points)
        path = " ".join(f"{x_of(x):.1f},{y_of(y):.1f}" for x, y in ordered)
        body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in ordered:
            body.append(f'<circle cx="{x_of(x):.1f}" cy="{y_of(y):.1f}" r="4" fill="{colour}"/>')
            body.append(_text(x_of(x) + 7, y_of(y) - 6, _number(y)))
    return _document(bottom + 50, title, body)
