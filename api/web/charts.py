"""Server-rendered SVG charts (no script, no external asset).

:func:`rates_chart` draws the three rates (三率: response, resolution, satisfaction) of
each unit as groups of horizontal bars: unit names (Chinese, often long) sit on the
left where they have room, and the chart scales to the width of a phone screen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

FONT = "'WenQuanYi Micro Hei','Noto Sans CJK SC','Microsoft YaHei','PingFang SC',sans-serif"
SERIES: tuple[tuple[str, str, str], ...] = (
    ("响应率", "Response", "#2b6cb0"),
    ("解决率", "Resolution", "#2f855a"),
    ("满意率", "Satisfaction", "#c05621"),
)


@dataclass(frozen=True)
class RateRow:
    """One unit's rates, each a fraction in [0, 1] or None when there is nothing to rate."""

    label: str
    response: float | None
    resolution: float | None
    satisfaction: float | None
    cases: int = 0


def _text_width(text: str, size: float) -> float:
    """Rough rendered width: CJK characters are square, Latin ones about half."""
    return sum(size if ord(ch) > 0x2E80 else size * 0.56 for ch in text)


def _fit(text: str, size: float, width: float) -> str:
    if _text_width(text, size) <= width:
        return text
    while text and _text_width(text + "…", size) > width:
        text = text[:-1]
    return text + "…"


def rates_chart(
    rows: Sequence[RateRow],
    *,
    lang: str = "zh",
    title: str | None = None,
    width: int = 720,
) -> str:
    """An accessible SVG (role="img", a <title>, a <desc> listing every figure)."""
    en = lang == "en"
    names = [s[1] if en else s[0] for s in SERIES]
    # Narrow charts (phones) put each unit's name above its bars, wide ones beside them.
    compact = width < 500
    label_w = min(220.0, max(90.0, max((_text_width(r.label, 13) for r in rows), default=90) + 12))
    label_h = 18.0 if compact else 0.0
    left, right, top = (10.0 if compact else label_w), 40.0, 44.0
    bar_h, gap, group_gap = 11.0, 2.0, 14.0
    group_h = 3 * bar_h + 2 * gap
    plot_w = width - left - right
    height = int(top + max(len(rows), 1) * (label_h + group_h + group_gap) + 28)
    chart_title = title or ("各单位三率" if not en else "Three rates by unit")

    desc_parts = []
    for r in rows:
        figures = ", ".join(
            f"{n} {_pct(v)}"
            for n, v in zip(names, (r.response, r.resolution, r.satisfaction), strict=True)
        )
        desc_parts.append(f"{r.label}: {figures}")
    ident = f"rates-{width}"
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-labelledby="{ident}-title {ident}-desc" '
        f'class="chart {"chart-narrow" if compact else "chart-wide"}" font-family="{FONT}">',
        f'<title id="{ident}-title">{escape(chart_title)}</title>',
        f'<desc id="{ident}-desc">{escape("; ".join(desc_parts))}</desc>',
    ]
    # Legend
    x = left if not compact else 10.0
    for name, (_zh, _en, colour) in zip(names, SERIES, strict=True):
        out.append(f'<rect x="{x:.0f}" y="10" width="12" height="12" rx="2" fill="{colour}"/>')
        out.append(
            f'<text x="{x + 17:.0f}" y="20.5" font-size="13" fill="#1a202c">{escape(name)}</text>'
        )
        x += 34 + _text_width(name, 13)
    # Grid lines at 0, 25, 50, 75, 100 %
    grid_bottom = height - 24
    for tick in (0, 25, 50, 75, 100):
        gx = left + plot_w * tick / 100
        out.append(
            f'<line x1="{gx:.1f}" y1="{top - 6:.0f}" x2="{gx:.1f}" y2="{grid_bottom:.0f}" '
            f'stroke="#e2e8f0" stroke-width="1"/>'
        )
        out.append(
            f'<text x="{gx:.1f}" y="{grid_bottom + 16:.0f}" font-size="11" fill="#4a5568" '
            f'text-anchor="middle">{tick}%</text>'
        )
    if not rows:
        out.append(
            f'<text x="{left + plot_w / 2:.0f}" y="{top + 16:.0f}" font-size="13" '
            f'fill="#4a5568" text-anchor="middle">'
            f"{'No data yet' if en else '暂无数据'}</text>"
        )
    for i, r in enumerate(rows):
        y0 = top + i * (label_h + group_h + group_gap) + label_h
        if compact:
            label = _fit(r.label, 13, plot_w)
            out.append(
                f'<text x="{left:.0f}" y="{y0 - 5:.1f}" font-size="13" fill="#1a202c">'
                f"<title>{escape(r.label)}</title>{escape(label)}</text>"
            )
        else:
            label = _fit(r.label, 13, label_w - 10)
            out.append(
                f'<text x="{left - 8:.0f}" y="{y0 + group_h / 2 + 4.5:.1f}" font-size="13" '
                f'fill="#1a202c" text-anchor="end"><title>{escape(r.label)}</title>'
                f"{escape(label)}</text>"
            )
        for j, (value, (_zh, _en, colour)) in enumerate(
            zip((r.response, r.resolution, r.satisfaction), SERIES, strict=True)
        ):
            y = y0 + j * (bar_h + gap)
            w = plot_w * max(0.0, min(1.0, value or 0.0))
            if value is None:
                out.append(
                    f'<text x="{left + 3:.0f}" y="{y + bar_h - 2:.1f}" font-size="10" '
                    f'fill="#718096">—</text>'
                )
                continue
            out.append(
                f'<rect x="{left:.1f}" y="{y:.1f}" width="{w:.1f}" height="{bar_h:.0f}" '
                f'fill="{colour}"><title>{escape(r.label)} {escape(names[j])} '
                f"{_pct(value)}</title></rect>"
            )
            out.append(
                f'<text x="{left + w + 4:.1f}" y="{y + bar_h - 1.5:.1f}" font-size="10.5" '
                f'fill="#2d3748">{_pct(value)}</text>'
            )
    out.append("</svg>")
    return "\n".join(out)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"
