"""Tiny inline-SVG charts for the HTML report (no scripts, no network, no dependencies)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from html import escape

STATE_COLOURS = {"recording": "#e4572e", "display": "#f3a712", "standby": "#9ec1cf",
                 "off": "#555555"}
INK, GRID, LINE = "#222", "#ddd", "#1d3557"


def _num(x: float) -> str:
    return f"{x:.1f}"


#: a generous width of one character of the report's sans-serif fonts, in em (DejaVu Sans
#: digits are 0.64 em): labels are placed so that even this wide they stay in the chart
CHAR_EM = 0.65


def text_width(text: str, font_size: float) -> float:
    """How wide `text` may be drawn at `font_size`, at most."""
    return len(text) * font_size * CHAR_EM


def _anchored(x: float, text: str, font_size: float, width: float) -> tuple[float, str]:
    """(x, text-anchor) for a label centred on x, moved to start or end where centring would
    put part of it outside 0…width (the last hour of a chart, say: "10h" at the right edge)."""
    half = text_width(text, font_size) / 2
    if x + half > width - 1:
        return width - 1, "end"
    if x - half < 1:
        return 1, "start"
    return x, "middle"


#: a percent-over-hours chart's margins (left: the % labels, bottom: the hour labels)
_LEFT, _RIGHT, _TOP, _BOTTOM = 34, 8, 20, 24


def _percent_frame(width: int, height: int, span: float, title: str
                   ) -> tuple[float, float, Callable[[float], float],
                              Callable[[float], float], list[str]]:
    """The plot's size, its hour → x and percent → y maps, and the SVG opened with its
    title, shared by the shift and the dock charge charts."""
    w, h = width - _LEFT - _RIGHT, height - _TOP - _BOTTOM

    def x(t: float) -> float:
        return _LEFT + w * t / span

    def y(v: float) -> float:
        return _TOP + h * (1 - v / 100)

    parts = [f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} '
             f'{height}" xmlns="http://www.w3.org/2000/svg" role="img">',
             f'<title>{escape(title)}</title>',
             f'<text x="{_LEFT}" y="13" font-size="11" fill="{INK}">{escape(title)}</text>']
    return w, h, x, y, parts


def _percent_grid(w: float, y: Callable[[float], float]) -> list[str]:
    """The 0-100 % grid lines with their labels (drawn over bands, under the curve)."""
    return [f'<line x1="{_LEFT}" x2="{_LEFT + w}" y1="{_num(y(v))}" y2="{_num(y(v))}" '
            f'stroke="{GRID}" stroke-width="1"/>'
            f'<text x="{_LEFT - 4}" y="{_num(y(v) + 4)}" font-size="10" '
            f'text-anchor="end" fill="{INK}">{v}</text>' for v in (0, 25, 50, 75, 100)]


def shift_chart(samples: Sequence[tuple[float, float]], bands: Sequence[tuple[float, float, str]],
                *, hours: float, shift_hours: float, title: str, width: int = 380,
                height: int = 190) -> str:
    """Charge (%) over hours since the shift began, with the camera's state as bands and a
    dashed line at the configured shift length."""
    left, top = _LEFT, _TOP
    span = max(hours, shift_hours, 0.1)
    w, h, x, y, parts = _percent_frame(width, height, span, title)
    for a, b, state in bands:
        parts.append(f'<rect x="{_num(x(a))}" y="{top}" width="{_num(max(0.5, x(b) - x(a)))}" '
                     f'height="{h}" fill="{STATE_COLOURS.get(state, "#ccc")}" '
                     f'fill-opacity="0.35"/>')
    parts += _percent_grid(w, y)
    step = 2 if span <= 14 else 4
    t = 0
    while t <= span + 1e-9:
        tx, anchor = _anchored(x(t), f"{t}h", 10, width)
        parts.append(f'<text x="{_num(tx)}" y="{top + h + 14}" font-size="10" '
                     f'text-anchor="{anchor}" fill="{INK}">{t}h</text>')
        t += step
    sx = x(shift_hours)
    parts.append(f'<line x1="{_num(sx)}" x2="{_num(sx)}" y1="{top}" y2="{top + h}" '
                 f'stroke="{INK}" stroke-dasharray="4 3"/>')
    if samples:
        pts = " ".join(f"{_num(x(t))},{_num(y(v))}" for t, v in samples)
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{LINE}" '
                     f'stroke-width="2"/>')
    parts.append(f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" '
                 f'stroke="#999"/></svg>')
    return "".join(parts)


def trend_chart(points: Sequence[tuple[datetime, float]], *, warn: float, critical: float,
                title: str, width: int = 300, height: int = 190) -> str:
    """State of health (%) at each dock over time, with the warning/critical lines."""
    left, right, top, bottom = 34, 10, 20, 24
    w, h = width - left - right, height - top - bottom
    lo = max(0.0, min([critical - 5] + [v - 5 for _, v in points]))
    t0 = points[0][0] if points else None
    days = max(((points[-1][0] - t0).total_seconds() / 86400) if t0 else 0.0, 1.0)

    def x(t: datetime) -> float:
        assert t0 is not None
        if len(points) == 1:
            return left + w / 2
        return left + w * ((t - t0).total_seconds() / 86400) / days

    def y(v: float) -> float:
        return top + h * (1 - (v - lo) / (100 - lo))

    parts = [f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} '
             f'{height}" xmlns="http://www.w3.org/2000/svg" role="img">',
             f'<title>{escape(title)}</title>',
             f'<text x="{left}" y="13" font-size="11" fill="{INK}">{escape(title)}</text>']
    for v, colour in ((warn, "#f3a712"), (critical, "#e4572e")):
        parts.append(f'<line x1="{left}" x2="{left + w}" y1="{_num(y(v))}" y2="{_num(y(v))}" '
                     f'stroke="{colour}" stroke-dasharray="5 3"/>'
                     f'<text x="{left - 4}" y="{_num(y(v) + 4)}" font-size="10" '
                     f'text-anchor="end" fill="{colour}">{v:g}</text>')
    parts.append(f'<text x="{left - 4}" y="{_num(y(100) + 4)}" font-size="10" '
                 f'text-anchor="end" fill="{INK}">100</text>')
    if points:
        pts = " ".join(f"{_num(x(t))},{_num(y(v))}" for t, v in points)
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{LINE}" stroke-width="2"/>')
        parts += [f'<circle cx="{_num(x(t))}" cy="{_num(y(v))}" r="3" fill="{LINE}"/>'
                  for t, v in points]
        parts.append(f'<text x="{left}" y="{top + h + 14}" font-size="10" fill="{INK}">'
                     f'{points[0][0]:%m-%d}</text><text x="{left + w}" y="{top + h + 14}" '
                     f'font-size="10" text-anchor="end" fill="{INK}">{points[-1][0]:%m-%d}</text>')
    else:
        parts.append(f'<text x="{left + w / 2}" y="{top + h / 2}" font-size="11" '
                     f'text-anchor="middle" fill="#888">no battery data</text>')
    parts.append(f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" '
                 f'stroke="#999"/></svg>')
    return "".join(parts)


def port_bars(rows: Sequence[tuple[str, int, int]], *, title: str, width: int = 300) -> str:
    """Per port: attempts (grey) and failed (red) transfer attempts as horizontal bars. The
    chart grows wider than `width` when a port name or a count would not fit in it."""
    bar_h, gap, top = 14, 8, 22
    left = max([90.0] + [text_width(port, 10) + 10 for port, _, _ in rows])
    right = max([40.0] + [text_width(f"{f}/{a}", 10) + 8 for _, a, f in rows])
    w = max(width - left - right, 120)
    width = round(left + w + right)
    height = top + max(1, len(rows)) * (bar_h + gap) + 8
    most = max([a for _, a, _ in rows] + [1])
    parts = [f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} '
             f'{height}" xmlns="http://www.w3.org/2000/svg" role="img">',
             f'<title>{escape(title)}</title>',
             f'<text x="4" y="13" font-size="11" fill="{INK}">{escape(title)}</text>']
    if not rows:
        parts.append(f'<text x="4" y="{top + 12}" font-size="11" fill="#888">'
                     'no transfers</text>')
    for i, (port, attempts, failed) in enumerate(rows):
        yy = top + i * (bar_h + gap)
        parts.append(f'<text x="{_num(left - 6)}" y="{yy + 11}" font-size="10" text-anchor="end" '
                     f'fill="{INK}">{escape(port)}</text>'
                     f'<rect x="{_num(left)}" y="{yy}" width="{_num(w * attempts / most)}" '
                     f'height="{bar_h}" fill="#c8d3dc"/>'
                     f'<rect x="{_num(left)}" y="{yy}" width="{_num(w * failed / most)}" '
                     f'height="{bar_h}" fill="#e4572e"/>'
                     f'<text x="{_num(left + w * attempts / most + 4)}" y="{yy + 11}" '
                     f'font-size="10" fill="{INK}">{failed}/{attempts}</text>')
    parts.append("</svg>")
    return "".join(parts)


def charge_chart(points: Sequence[tuple[float, float]], *, hours: float, title: str,
                 stalled_from: float | None = None, width: int = 300, height: int = 190) -> str:
    """The dock charge curve: charge (%) over hours since the camera was docked, read by the
    daemon while it stays there; a shaded band where it did not charge."""
    left, top = _LEFT, _TOP
    span = max(hours, 0.5)
    w, h, x, y, parts = _percent_frame(width, height, span, title)
    if stalled_from is not None:
        parts.append(f'<rect x="{_num(x(stalled_from))}" y="{top}" '
                     f'width="{_num(max(0.5, x(span) - x(stalled_from)))}" height="{h}" '
                     'fill="#e4572e" fill-opacity="0.15"/>')
    parts += _percent_grid(w, y)
    for t in (0.0, span / 2, span):
        label = f"{t * 60:.0f}m" if span < 2 else f"{t:.1f}h"
        tx, anchor = _anchored(x(t), label, 10, width)
        parts.append(f'<text x="{_num(tx)}" y="{top + h + 14}" font-size="10" '
                     f'text-anchor="{anchor}" fill="{INK}">{label}</text>')
    if points:
        pts = " ".join(f"{_num(x(t))},{_num(y(v))}" for t, v in points)
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{LINE}" '
                     f'stroke-width="2"/>')
        parts += [f'<circle cx="{_num(x(t))}" cy="{_num(y(v))}" r="2" fill="{LINE}"/>'
                  for t, v in points[-60:]]
    parts.append(f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" '
                 f'stroke="#999"/></svg>')
    return "".join(parts)
