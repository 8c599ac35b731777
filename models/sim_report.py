"""The simulation's static report (report.html): scenarios side by side, with SVG charts
drawn by matplotlib inline in the page (no JavaScript, nothing fetched).

The same summary gives the same bytes: SVG ids are salted with a constant, the SVG
carries no date, and text is kept as text (the reader's Chinese font draws it).
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("svg")

import matplotlib.pyplot as plt
from jinja2 import Environment, select_autoescape
from markupsafe import Markup

# Text stays text in the SVG, so a missing font only changes the layout's estimate.
logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
plt.rcParams.update(
    {
        "svg.hashsalt": "tiaojie-simulate",
        "svg.fonttype": "none",
        "font.family": ["WenQuanYi Micro Hei", "DejaVu Sans"],
        "axes.spines.top": False,
        "axes.spines.right": False,
        "font.size": 9,
    }
)

RATES: tuple[tuple[str, str], ...] = (
    ("response", "及时响应率 Response"),
    ("resolution", "化解率 Resolution"),
    ("satisfaction", "满意率 Satisfaction"),
    ("composite", "综合 Composite"),
)
LEVELS = ("building", "compound", "community", "street", "district", "agency")


def _svg(fig: Any) -> Markup:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    return Markup(text[text.index("<svg") :])  # noqa: S704 - matplotlib's own SVG


def _bars(groups: list[str], series: dict[str, list[float]], *, title: str, pct: bool) -> Markup:
    fig, ax = plt.subplots(figsize=(7.2, 3.0))
    width = 0.8 / max(len(series), 1)
    for n, (label, values) in enumerate(series.items()):
        xs = [i + n * width for i in range(len(groups))]
        ax.bar(xs, [v * 100 if pct else v for v in values], width, label=label)
    ax.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(groups))], groups)
    ax.set_title(title)
    if pct:
        ax.set_ylabel("%")
    ax.legend(fontsize=7, frameon=False)
    return _svg(fig)


def _lines(days: list[str], series: dict[str, list[int]], *, title: str) -> Markup:
    fig, ax = plt.subplots(figsize=(7.2, 2.6))
    for label, values in series.items():
        ax.plot(range(len(values)), values, label=label, linewidth=1.4)
    step = max(1, len(days) // 8)
    ax.set_xticks(range(0, len(days), step), [d[5:] for d in days[::step]])
    ax.set_title(title)
    ax.legend(fontsize=7, frameon=False)
    return _svg(fig)


def charts(summary: dict[str, Any]) -> dict[str, Markup]:
    scenarios: dict[str, dict[str, Any]] = summary["scenarios"]
    keys = list(scenarios)
    out = {
        "rates": _bars(
            [label for _k, label in RATES],
            {k: [scenarios[k].get(r) or 0.0 for r, _l in RATES] for k in keys},
            title="三率与综合得分 The three rates and the composite",
            pct=True,
        ),
        "settled": _bars(
            list(LEVELS),
            {
                k: [scenarios[k]["settled_share_by_level"].get(lv, 0.0) for lv in LEVELS]
                for k in keys
            },
            title="各层级化解占比 Share of cases settled at each level",
            pct=True,
        ),
    }
    streets = sorted(
        {c for k in keys for c, r in scenarios[k]["rates"].items() if r["level"] == "street"}
    )
    out["streets"] = _bars(
        streets,
        {
            k: [scenarios[k]["rates"].get(s, {}).get("composite") or 0.0 for s in streets]
            for k in keys
        },
        title="各街道综合得分 Composite per street",
        pct=True,
    )
    first = scenarios[keys[0]]["backlog"]["days"] if keys else []
    out["backlog"] = _lines(
        first, {k: scenarios[k]["backlog"]["open"] for k in keys}, title="在办案件 Open cases"
    )
    out["overdue"] = _lines(
        first, {k: scenarios[k]["backlog"]["overdue"] for k in keys}, title="超期案件 Overdue cases"
    )
    return out


def heavy_cases_chart(summary: dict[str, Any], keys: tuple[str, ...]) -> str:
    """The README's question: per scenario, the share of labour, environment and
    relocation cases settled at community level or below, and the cases the paired
    agencies received."""
    with plt.rc_context({"svg.fonttype": "path"}):  # a stand-alone image: glyphs drawn
        return _heavy_cases_chart(summary, keys)


def _heavy_cases_chart(summary: dict[str, Any], keys: tuple[str, ...]) -> str:
    heavy = ("labour", "environment", "relocation")
    scenarios = summary["scenarios"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.4, 3.0))
    for ax, title, values in (
        (
            left,
            "劳资·环境·动迁 社区及以下化解占比 (%)\nSettled at community or below",
            [100 * share_of(scenarios[k]["by_category"], heavy) for k in keys],
        ),
        (
            right,
            "结对部门收案 Cases the agencies received",
            [float(sum(scenarios[k]["referrals"]["by_agency"].values())) for k in keys],
        ),
    ):
        bars = ax.bar(range(len(keys)), values, color=["#c0392b", "#2e86c1"][: len(keys)])
        ax.bar_label(bars, fmt="%.1f" if "%" in title else "%.0f")
        ax.set_xticks(range(len(keys)), [_wrap(scenarios[k]["name"]) for k in keys])
        ax.set_title(title, fontsize=9)
    return str(_svg(fig))


def _wrap(name: str) -> str:
    """Chinese name above, English below, each cut to fit under a bar."""
    zh, _, en = name.partition(" ")
    return f"{zh[:10]}\n{en[:24]}"


def share_of(by_category: dict[str, dict[str, int]], categories: tuple[str, ...]) -> float:
    cases = sum(by_category.get(c, {}).get("cases", 0) for c in categories)
    low = sum(by_category.get(c, {}).get("settled_low", 0) for c in categories)
    return low / cases if cases else 0.0


PAGE = Path(__file__).with_name("sim_report.html")


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


FIGURES = {
    "settle_directly": "首问直接化解 Settled directly by the first-contact worker",
    "consent": "同意调解 Parties consent to mediation",
    "success": "调解成功 Mediation ends in an agreement",
    "respond": "首次联系（中位办公小时）First contact, median office hours",
    "satisfaction": "回访满意 Satisfied at the return visit",
    "refer_after_failure": "调解不成后转办 Failed mediations referred on",
}


def _shown(kind: str, value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}" if kind == "respond" else _pct(value)


def fitted_rows(summary: dict[str, Any]) -> list[tuple[str, str, str, int]]:
    """(figure, where: category / level / street, value, decisions) of the behaviour
    fitted from the history (the same for every scenario: taken from the first that
    has it); empty when nothing was fitted."""
    for result in summary.get("scenarios", {}).values():
        counts: dict[str, int] = result.get("fitted_from") or {}
        values: dict[str, float] = result.get("fitted") or {}
        rows = []
        for key, n in counts.items():
            kind, _, where = key.partition(".")
            where = where.replace(".", " · ") or "全区 district"
            rows.append((FIGURES.get(kind, kind), where, _shown(kind, values.get(key)), n))
        if rows:
            return rows
    return []


def report_html(summary: dict[str, Any]) -> str:
    from models.sim_fit import FIT_MIN_CASES

    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    template = env.from_string(PAGE.read_text(encoding="utf-8"))
    return template.render(
        s=summary,
        c=charts(summary),
        rates=RATES,
        levels=LEVELS,
        pct=_pct,
        fitted=fitted_rows(summary),
        min_cases=FIT_MIN_CASES,
    )


def write_report(out: Path, summary: dict[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.html"
    path.write_text(report_html(summary), encoding="utf-8")
    return path
