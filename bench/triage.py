"""Triage classifier: classifications per second, p99 per text, model load time, and the
old keyword rules' accuracy beside the model's on the held-out test split.

Load time is measured in fresh Python processes, the median of three: ``load_s`` is the
model file, the dictionary and the first classification once the libraries are
imported; ``cold_start_s`` adds importing numpy, jieba and the package. Throughput and
latency are measured in this process, over the test split's texts, after one warm-up
pass.
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

# Libraries first (numpy, jieba, the package), then the model file, the dictionary and
# the first classification: the load proper, and the whole cold start.
LOAD_SCRIPT = (
    "import time; t0 = time.perf_counter()\n"
    "import numpy, jieba, models.assessment as a, models.classifier as c\n"
    "t1 = time.perf_counter()\n"
    "a.assess('楼上漏水，物业也不管', model=c.shipped_model())\n"
    "t2 = time.perf_counter()\n"
    "print(t2 - t1, t2 - t0)\n"
)


def _load_s() -> tuple[float, float]:
    """(model load, cold start incl. imports), medians of three fresh processes."""
    loads, colds = [], []
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-W", "ignore", "-c", LOAD_SCRIPT],
            capture_output=True,
            text=True,
            check=True,
        )
        load, cold = out.stdout.strip().splitlines()[-1].split()
        loads.append(float(load))
        colds.append(float(cold))
    return statistics.median(loads), statistics.median(colds)


def run(ws: Workspace, sizes: Sizes, console: Console) -> dict[str, Any]:
    from models.assessment import assess
    from models.classifier import MODEL_FILE, shipped_model
    from models.classifier_train import evaluate, load_corpus, split
    from models.triage import keyword_category

    test = split(load_corpus(), "test")
    texts = [e.text for e in test]
    model = shipped_model()
    for text in texts:  # warm-up
        assess(text, model=model)
    times: list[float] = []
    cpu: list[float] = []
    rounds = 3 if sizes.name == "full" else 1
    start = time.perf_counter()
    for _ in range(rounds):
        for text in texts:
            t, c = time.perf_counter(), time.process_time()
            assess(text, model=model)
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    elapsed = time.perf_counter() - start
    times.sort()
    cpu.sort()
    report = evaluate(model, test, rules=keyword_category)
    load, cold = _load_s()
    console.print(
        f"triage: {len(times) / elapsed:,.0f} texts/s, p99 {times[int(len(times) * 0.99)] * 1e3:.2f}"
        f" ms, load {load:.2f} s, accuracy {report.accuracy:.1%} (rules {report.rules_accuracy:.1%})"
    )
    return {
        "texts": len(times),
        "classifications_per_s": round(len(times) / elapsed, 1),
        "p50_ms": round(times[len(times) // 2] * 1e3, 3),
        "p99_ms": round(times[int(len(times) * 0.99)] * 1e3, 3),
        # CPU time per text: the same figure without the waits for a busy machine's CPU.
        "p99_cpu_ms": round(cpu[int(len(cpu) * 0.99)] * 1e3, 3),
        "load_s": round(load, 3),
        "cold_start_s": round(cold, 3),
        "model_bytes": MODEL_FILE.stat().st_size,
        "accuracy": round(report.accuracy, 4),
        "rules_accuracy": round(report.rules_accuracy, 4),
        "emergency_recall": round(report.emergency_recall, 4),
        "false_emergency_rate": round(report.false_emergency_rate, 4),
    }
