"""The README's policy question, reproducibly: on the demo city (loaded at a fixed date),
do labour, environment and relocation cases fare better going to the paired agency at
once, or with 7 working days at the community first?

    .venv/bin/python scripts/heavy_cases_question.py [--out simulation-heavy]

Runs docs/scenarios/heavy-agency-at-once.toml and heavy-community-7days.toml (and the
limits in force, as-is.toml) over the demo city's 60 days of complaints with seed 2026,
writes summary.json and report.html to --out and the chart docs/img/simulate-heavy-cases.svg.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session

from models import clock
from models.db import build_engine
from models.demo import HISTORY_DAYS, load_demo_city
from models.scenario import read_scenario
from models.sim_output import summary_document, write_summary
from models.sim_report import heavy_cases_chart, share_of, write_report
from models.simulate import Period, run_scenario
from models.tables import metadata

ROOT = Path(__file__).resolve().parents[1]
LOADED = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
KEYS = ("as-is", "heavy-agency-at-once", "heavy-community-7days")
HEAVY = ("labour", "environment", "relocation")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("simulation-heavy"))
    args = parser.parse_args()
    previous = clock.get_clock()
    clock.set_clock(clock.VirtualClock(LOADED))
    engine = build_engine("sqlite://")
    metadata.create_all(engine)
    with Session(engine) as live:
        load_demo_city(live)
        live.commit()
    clock.set_clock(previous)
    period = Period(LOADED - timedelta(days=HISTORY_DAYS), HISTORY_DAYS + 1)
    results = {}
    with Session(engine) as live:
        for key in KEYS:
            scenario = read_scenario(ROOT / "docs" / "scenarios" / f"{key}.toml")
            results[key] = run_scenario(live, scenario, period, seed=2026)
            print(key, "done", flush=True)
    start = clock.to_local(period.start).date().isoformat()
    document = summary_document(results, start=start, days=period.days, seed=2026)
    write_summary(args.out, document)
    write_report(args.out, document)
    (ROOT / "docs" / "img" / "simulate-heavy-cases.svg").write_text(
        heavy_cases_chart(document, KEYS[1:]), encoding="utf-8"
    )
    for key in KEYS:
        r = results[key]
        print(
            f"{key}: community {r['settled_share_by_level'].get('community', 0):.1%}, "
            f"heavy at community or below {share_of(r['by_category'], HEAVY):.1%}, "
            f"referrals {r['referrals']['total']} "
            f"(agencies {sum(r['referrals']['by_agency'].values())}), "
            f"composite {r['composite']}, overdue peak {r['overdue_peak']}, "
            f"limits passed at communities "
            f"{sum(n for k, n in r['breaches'].items() if k.endswith('@community'))}"
        )
    fitted = results[KEYS[0]]["fitted_from"]
    print(f"fitted from the history: {len(fitted)} figures, {fitted}")


if __name__ == "__main__":
    main()
