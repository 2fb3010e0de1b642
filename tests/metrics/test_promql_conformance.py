"""Runs every Prometheus PromQL test script in shared/conformance/promql and checks pass rates.

Cases that touch native histograms are reported apart from the others. The floors are the
measured rates rounded down a little; raise them as the engine improves, never lower them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kms.metrics.promql.promqltest import run_file

CONFORMANCE_DIR = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "promql"
# Measured pass rates (see the printed table).
FLOAT_PASS_RATE_FLOOR = 1.0
NATIVE_PASS_RATE_FLOOR = 1.0


@pytest.mark.skipif(not CONFORMANCE_DIR.is_dir(), reason="conformance scripts not present")
def test_promql_conformance(capsys):
    reports = [run_file(p) for p in sorted(CONFORMANCE_DIR.glob("*.test"))]
    lines = [f"{'file':32} {'passed':>7} {'failed':>7} {'native passed':>14}"]
    totals = {True: [0, 0], False: [0, 0]}
    for r in reports:
        for c in r.cases:
            totals[c.native][c.status != "passed"] += 1
        native = [c for c in r.cases if c.native]
        np_ = sum(c.status == "passed" for c in native)
        lines.append(f"{r.path:32} {r.count('passed'):7} {r.count('failed'):7} {np_:>7}/{len(native):<6}")
    rates = {k: p / max(p + f, 1) for k, (p, f) in totals.items()}
    lines.append(
        f"float-only cases {totals[False][0]}/{sum(totals[False])} ({rates[False]:.4f}), "
        f"native-histogram cases {totals[True][0]}/{sum(totals[True])} ({rates[True]:.4f})"
    )
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert rates[False] >= FLOAT_PASS_RATE_FLOOR, (
        f"float-only pass rate {rates[False]:.4f} fell below the floor"
    )
    assert rates[True] >= NATIVE_PASS_RATE_FLOOR, (
        f"native-histogram pass rate {rates[True]:.4f} fell below the floor"
    )
