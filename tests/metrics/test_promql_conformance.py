"""Runs every Prometheus PromQL test script in shared/conformance/promql and checks the pass rate.

Native-histogram cases are counted as skipped (kms does not implement native histograms).
The floor is the measured rate rounded down a little; raise it as the engine improves, never lower it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kms.metrics.promql.promqltest import run_file

CONFORMANCE_DIR = Path("/work/shared/conformance/promql")
# Measured pass rate over non-native-histogram eval cases (see the printed table).
PASS_RATE_FLOOR = 0.98


@pytest.mark.skipif(not CONFORMANCE_DIR.is_dir(), reason="conformance scripts not present")
def test_promql_conformance(capsys):
    reports = [run_file(p) for p in sorted(CONFORMANCE_DIR.glob("*.test"))]
    lines = [f"{'file':32} {'passed':>7} {'failed':>7} {'skipped':>8}"]
    tp = tf = ts = 0
    for r in reports:
        p, f, s = r.count("passed"), r.count("failed"), r.count("skipped")
        tp, tf, ts = tp + p, tf + f, ts + s
        lines.append(f"{r.path:32} {p:7} {f:7} {s:8}")
    rate = tp / max(tp + tf, 1)
    lines.append(f"{'total':32} {tp:7} {tf:7} {ts:8}   pass rate {rate:.4f}")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert rate >= PASS_RATE_FLOOR, f"conformance pass rate {rate:.4f} fell below {PASS_RATE_FLOOR}"
