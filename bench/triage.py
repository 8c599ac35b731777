"""Triage classifier: classifications per second, p99 per text, model load time, and the
old keyword rules' accuracy beside the model's on the held-out test split.

Load time is measured in fresh Python processes (import, model file, dictionary, first
classification), the median of three; throughput and latency in this process, over
the test split's texts, after one warm-up pass.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from typing import Any

from rich.console import Console

from bench.common import Workspace
from bench.config import Sizes

LOAD_SCRIPT = (
    "import time; t = time.perf_counter()\n"
    "from models.assessment import assess\n"
    "assess('楼上漏水，物业也不管')\n"
    "print(time.perf_counter() - t)\n"
)


def _load_s() -> float:
    runs = []
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", LOAD_SCRIPT], capture_output=True, text=True, check=True
        )
        runs.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(runs)


def run(ws: Workspace, sizes: Sizes, console: Console) -> dict[str, Any]:
    from models.assessment import assess
    from models.classifier import MODEL_FILE, shipped_model
    from models.classifier_train import evaluate, load_corpus, split

    test = split(load_corpus(), "test")
    texts = [e.text for e in test]
    model = shipped_model()
    for text in texts:  # warm-up
        assess(text, model=model)
    times: list[float] = []
    rounds = 3 if sizes.name == "full" else 1
    start = time.perf_counter()
    for _ in range(rounds):
        for text in texts:
            t = time.perf_counter()
            assess(text, model=model)
            times.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - start
    times.sort()
    report = evaluate(model, test)
    load = _load_s()
    console.print(
        f"triage: {len(times) / elapsed:,.0f} texts/s, p99 {times[int(len(times) * 0.99)] * 1e3:.2f}"
        f" ms, load {load:.2f} s, accuracy {report.accuracy:.1%} (rules {report.rules_accuracy:.1%})"
    )
    return {
        "texts": len(times),
        "classifications_per_s": round(len(times) / elapsed, 1),
        "p50_ms": round(times[len(times) // 2] * 1e3, 3),
        "p99_ms": round(times[int(len(times) * 0.99)] * 1e3, 3),
        "load_s": round(load, 3),
        "model_bytes": MODEL_FILE.stat().st_size,
        "accuracy": round(report.accuracy, 4),
        "rules_accuracy": round(report.rules_accuracy, 4),
        "emergency_recall": round(report.emergency_recall, 4),
        "false_emergency_rate": round(report.false_emergency_rate, 4),
    }
