"""Every query of the 8 dotdc Kubernetes Grafana dashboards parses and evaluates with our engine.

Source: /work/shared/conformance/dashboards (``dotdc-queries.txt``: ``<dashboard>\\t<expr>`` per
line, 311 lines; the dashboard JSON gives the template variables). Each query is interpolated the
way Grafana's Prometheus datasource does it, under two variable selections:

- ``all``:  include-All variables pick All (their ``allValue``, ``.*``), multi-value variables pick
  every option, single-value variables their saved value if it is an option, else the first;
- ``pick``: multi-value variables pick their first and last option (``(a|b)``), the others the last.

Options of ``label_values(<selector>, <label>)`` variables come from the series lookup Grafana makes
(``/api/v1/label/<label>/values?match[]=<selector>``): our ``match[]`` parser, ``select`` over the
dashboard range and the label's non-empty values. Chained variables are resolved in dependency
order. ``$__interval`` = 30s (the panels' ``$resolution``), scrape interval 15s, so
``$__rate_interval`` = max(30s + 15s, 4 * 15s) = 1m; ``$__range`` = 1h.

Every PromQL line is evaluated as an instant query (at END) and as a range query (last hour, 30s
step) under both selections over a synthetic two-cluster data set with the 141 metric names the
dashboards use. The summary asserts no errors and a measured floor of non-empty results.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from kms.metrics.http.params import parse_selector
from kms.metrics.promql import Engine, MemorySeriesSource, Result
from kms.testing.dashboards import (
    QUERIES_FILE,
    VAR,
    dashboard_vars,
    interpolate,
    load_queries,
    split_label_values,
)
from kms.testing.k8s import k8s_series

pytestmark = pytest.mark.skipif(not QUERIES_FILE.is_file(), reason="dashboard queries not present")

S, M = 1000, 60_000
END = 1_780_000_200_000  # a multiple of the step, like Grafana's aligned range queries
START = END - 60 * M
STEP = 30 * S
SCRAPE = 15 * S
SCENARIOS = ("all", "pick")
N_QUERIES, N_LABEL_VALUES = 311, 22
# Measured: 619 of 622 instant and 619 of 622 range results are non-empty (311 lines x 2 selections;
# the 3 empty ones are `pick` selections that legitimately match nothing), 44 of 44 label lookups.
NON_EMPTY_FLOOR = 0.98


QUERIES = load_queries()


# -- synthetic data ------------------------------------------------------------------------------

_T = np.arange(END - 75 * M, END + 1, SCRAPE, dtype=np.int64)  # 1h15m: lookback and rate windows


@functools.cache
def _source() -> MemorySeriesSource:
    src = MemorySeriesSource()
    for labels, values in k8s_series(["prod", "staging"], _T):
        src.add_series(labels, _T, values)
    return src


@functools.cache
def _engine() -> Engine:
    return Engine(_source())


# -- Grafana template variables ------------------------------------------------------------------


def label_values(selector: str, label: str) -> list[str]:
    """Options of a ``label_values(<selector>, <label>)`` variable, from our ``match[]`` parser and
    ``select`` over the dashboard range (what ``/api/v1/label/<label>/values?match[]=`` gives)."""
    series = _source().select(parse_selector(selector), START, END)
    return sorted({s.labels[label] for s in series if s.labels.get(label)})


@functools.cache
def _dashboard_vars(dash: str, scenario: str) -> dict[str, str]:
    return dashboard_vars(dash, scenario, label_values)


# -- evaluation ----------------------------------------------------------------------------------


def _size(res: Result) -> int:
    v = res.value
    return len(v.samples) if v.type == "vector" else len(v.series) if v.type == "matrix" else 1


@functools.cache
def evaluate(idx: int) -> dict[str, int]:
    """Evaluate one line under both selections; returns result sizes by ``<scenario>/<kind>``."""
    _, dash, expr = QUERIES[idx]
    eng, out = _engine(), {}
    for scenario in SCENARIOS:
        q = interpolate(expr, _dashboard_vars(dash, scenario))
        assert not VAR.search(q), q
        if q.startswith("label_values("):
            selector, label = split_label_values(q)
            out[f"{scenario}/label_values"] = len(label_values(selector, label))
            q = selector  # the match[] selector must also be valid PromQL for the engine
        inst = eng.instant(q, END)
        rng = eng.range(q, START, END, STEP)
        assert rng.value.type == "matrix", (q, rng.value.type)
        out[f"{scenario}/instant"], out[f"{scenario}/range"] = _size(inst), _size(rng)
        if inst.value.type == "vector":  # the instant result is the range result's last step
            last = {tuple(sorted(m.labels.items())): m.v[-1] for m in rng.value.series if m.t[-1] == END}
            got = {tuple(sorted(x.labels.items())): x.value for x in inst.value.samples}
            assert got.keys() == last.keys(), q
            assert all(np.isclose(got[k], last[k], equal_nan=True) for k in got), q
    return out


def _id(q: tuple[int, str, str]) -> str:
    return f"{q[1].removeprefix('k8s-').removesuffix('.json')}:{q[0]}"


@pytest.mark.parametrize("idx", range(len(QUERIES)), ids=[_id(q) for q in QUERIES])
def test_dashboard_query(idx: int) -> None:
    sizes = evaluate(idx)  # raises on a parse/evaluation error or an instant/range mismatch
    assert (
        len(sizes) == 3 * len(SCENARIOS)
        if QUERIES[idx][2].startswith("label_values(")
        else 2 * len(SCENARIOS)
    )


def test_dashboard_summary(capsys) -> None:
    assert len(QUERIES) == N_QUERIES
    assert sum(e.startswith("label_values(") for _, _, e in QUERIES) == N_LABEL_VALUES
    rows: dict[str, list[int]] = {}
    totals = {"instant": [0, 0], "range": [0, 0], "label_values": [0, 0]}
    for idx, (_, dash, _) in enumerate(QUERIES):
        row = rows.setdefault(dash, [0, 0, 0])
        row[0] += 1
        for key, n in evaluate(idx).items():
            kind = key.split("/")[1]
            totals[kind][0] += 1
            totals[kind][1] += n > 0
            row[1] += 1
            row[2] += n > 0
    lines = [f"{'dashboard':34} {'lines':>5} {'evals':>6} {'non-empty':>9}"]
    lines += [f"{d:34} {a:5} {b:6} {c:9}" for d, (a, b, c) in sorted(rows.items())]
    lines += [f"{k:34} {'':5} {n:6} {ne:9}" for k, (n, ne) in totals.items()]
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert totals["instant"][0] == totals["range"][0] == 2 * (N_QUERIES - N_LABEL_VALUES) + 2 * N_LABEL_VALUES
    for kind, (n, ne) in totals.items():
        assert ne / n >= NON_EMPTY_FLOOR, f"{kind}: only {ne}/{n} non-empty"
