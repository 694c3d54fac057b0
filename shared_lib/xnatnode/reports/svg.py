"""Small inline-SVG charts (no plotting library, no network): horizontal bars and columns.

Charts scale with their container (``viewBox`` + ``width:100%``), so the same markup reads on a
desktop and a phone; every bar carries a ``<title>`` with its exact label and value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

Formatter = Callable[[float], str]

#: Palette shared by the charts and the page (colour-blind safe, after Okabe & Ito).
COLORS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999")

WIDTH = 420
ROW_HEIGHT = 22
LABEL_WIDTH = 150
FONT = 13
#: Characters of a bar label that fit in LABEL_WIDTH at FONT px (wider text was cut off at the
#: left edge); the bar's ``<title>`` keeps the whole label.
LABEL_CHARS = 19


def human_bytes(n: float | None) -> str:
    """``1536`` → ``1.5 KiB``; ``None`` → ``unknown``."""
    if n is None:
        return "unknown"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"  # pragma: no cover


def count(n: float) -> str:
    """Integer with thousands separators."""
    return f"{int(n):,}"


def quantity(n: float, noun: str, plural: str | None = None) -> str:
    """``n`` and its noun, singular only for one: ``1 error``, ``0 errors``, ``1,234 files``;
    ``plural`` for a noun that does not just add an s (``quantity(2, "series", "series")``)."""
    return f"{count(n)} {noun if int(n) == 1 else plural or noun + 's'}"


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bar_chart(
    items: Sequence[tuple[str, float]],
    *,
    title: str,
    fmt: Formatter = count,
    color: str = COLORS[0],
    colors: Sequence[str] | None = None,
    max_items: int = 15,
) -> str:
    """Horizontal bars, largest first as given; items beyond ``max_items`` are summed into
    "(N more)"."""
    shown = list(items[:max_items])
    if len(items) > max_items:
        rest = items[max_items:]
        shown.append((f"({len(rest)} more)", sum(v for _, v in rest)))
    if not shown:
        return _empty(title)
    top = max((v for _, v in shown), default=0) or 1
    height = len(shown) * ROW_HEIGHT + 8
    value_space = 84  # "117.7 MiB" at FONT px in a wide fallback font (DejaVu Sans)
    bar_space = WIDTH - LABEL_WIDTH - value_space
    parts = [_open(title, height)]
    for i, (label, value) in enumerate(shown):
        y = 4 + i * ROW_HEIGHT
        w = max(1.0, bar_space * value / top) if value else 0.0
        fill = colors[i % len(colors)] if colors else color
        parts.append(
            f'<g><title>{escape(label)}: {escape(fmt(value))}</title>'
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 15}" text-anchor="end" class="l">'
            f"{escape(_truncate(label, LABEL_CHARS))}</text>"
            f'<rect x="{LABEL_WIDTH}" y="{y + 3}" width="{w:.1f}" height="{ROW_HEIGHT - 6}" '
            f'rx="2" fill="{fill}"/>'
            f'<text x="{LABEL_WIDTH + w + 4:.1f}" y="{y + 15}" class="v">{escape(fmt(value))}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def column_chart(
    items: Sequence[tuple[str, float]],
    *,
    title: str,
    fmt: Formatter = count,
    color: str = COLORS[0],
    width: int = 2 * WIDTH,
) -> str:
    """Vertical columns in the given order (e.g. months); x labels thinned to stay legible."""
    if not items:
        return _empty(title)
    height = 190
    # right: half an x label ("2024-10" at 11 px), so the last one centred on its column fits.
    left, right, bottom, top_pad = 40, 24, 24, 10
    plot_w = width - left - right
    plot_h = height - bottom - top_pad
    top = max((v for _, v in items), default=0) or 1
    step = plot_w / len(items)
    bar_w = max(1.0, step * 0.8)
    parts = [_open(title, height, width)]
    # y axis: zero and the maximum
    parts.append(
        f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{width - right}" y2="{top_pad + plot_h}" '
        f'class="axis"/>'
        f'<text x="{left - 4}" y="{top_pad + 8}" text-anchor="end" class="v">{escape(fmt(top))}</text>'
        f'<text x="{left - 4}" y="{top_pad + plot_h}" text-anchor="end" class="v">0</text>'
    )
    every = max(1, math.ceil(len(items) / (width // 70)))
    for i, (label, value) in enumerate(items):
        x = left + i * step + (step - bar_w) / 2
        h = plot_h * value / top
        parts.append(
            f'<g><title>{escape(label)}: {escape(fmt(value))}</title>'
            f'<rect x="{x:.1f}" y="{top_pad + plot_h - h:.1f}" width="{bar_w:.1f}" '
            f'height="{h:.1f}" fill="{color}"/></g>'
        )
        if i % every == 0:
            parts.append(
                f'<text x="{left + i * step + step / 2:.1f}" y="{height - 8}" '
                f'text-anchor="middle" class="l" font-size="11">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _open(title: str, height: int, width: int = WIDTH) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}" class="chart" '
        f'font-size="{FONT}" font-family="system-ui, sans-serif">'
    )


def _empty(title: str) -> str:
    return (
        _open(title, 30)
        + f'<text x="{WIDTH / 2}" y="19" text-anchor="middle" class="v">no data</text></svg>'
    )
