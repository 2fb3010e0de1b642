"""Every dashboard query evaluates with our PromQL engine; every data-source UID referred to exists."""

from __future__ import annotations

import functools
import re

import pytest
from grafana_helpers import END, START, STEP, exposed_names, source

from kms.grafana import dashboards, datasources
from kms.metrics.http.params import parse_selector
from kms.metrics.promql import Engine
from kms.testing.dashboards import VAR, _regex_escape, interpolate, split_label_values

DASHBOARDS = dashboards()


@functools.cache
def _engine() -> Engine:
    return Engine(source())


def _panels(dash: dict) -> list[dict]:
    return [p for p in dash["panels"] if p["type"] != "row"]


def _prom_targets(dash: dict) -> list[tuple[str, dict]]:
    return [(p["title"], t) for p in _panels(dash) for t in p["targets"] if t["datasource"]["type"] == "prometheus"]


def _label_values(selector: str, label: str) -> list[str]:
    series = source().select(parse_selector(selector), START, END)
    return sorted({s.labels[label] for s in series if s.labels.get(label)})


def _variables(dash: dict, pick: bool) -> dict[str, str]:
    """All (``.*``) or the first option of each variable (escaped as Grafana does), resolved in order."""
    values: dict[str, str] = {}
    for var in dash["templating"]["list"]:
        selector, label = split_label_values(interpolate(var["query"]["query"], values))
        options = _label_values(selector, label)
        assert options, f"{dash['uid']}: variable {var['name']} has no options"
        values[var["name"]] = _regex_escape(options[0]) if pick else var["allValue"]
    return values


def test_uids_referred_to_exist() -> None:
    ds = datasources("http://kms:3200", "t")["datasources"]
    uids = {d["uid"] for d in ds}
    assert len(uids) == len(ds) == 3
    by_type = {d["type"]: d for d in ds}
    prom, loki, tempo = (by_type[t]["jsonData"] for t in ("prometheus", "loki", "tempo"))
    refs = [d["datasourceUid"] for d in prom["exemplarTraceIdDestinations"] + loki["derivedFields"]]
    refs += [tempo[k]["datasourceUid"] for k in ("tracesToLogsV2", "tracesToMetrics", "serviceMap")]
    assert {d["name"] for d in prom["exemplarTraceIdDestinations"]} == {"trace_id", "traceID"}
    for dash in DASHBOARDS.values():
        refs += [v["datasource"]["uid"] for v in dash["templating"]["list"]]
        for p in _panels(dash):
            refs += [p["datasource"]["uid"]] + [t["datasource"]["uid"] for t in p["targets"]]
    assert set(refs) <= uids
    # The links go to the right kind of data source, not just to some existing one.
    assert tempo["tracesToLogsV2"]["datasourceUid"] == by_type["loki"]["uid"]
    assert tempo["serviceMap"]["datasourceUid"] == by_type["prometheus"]["uid"]
    assert {d["datasourceUid"] for d in prom["exemplarTraceIdDestinations"]} == {by_type["tempo"]["uid"]}


def test_dashboards_are_well_formed() -> None:
    uids = [d["uid"] for d in DASHBOARDS.values()]
    assert len(set(uids)) == len(uids)
    for dash in DASHBOARDS.values():
        ids = [p["id"] for p in dash["panels"]]
        assert len(set(ids)) == len(ids)
        for p in dash["panels"]:
            g = p["gridPos"]
            assert g["x"] + g["w"] <= 24, p["title"]
        for _, t in _prom_targets(dash):
            assert t["refId"]
        for var in dash["templating"]["list"]:
            assert var["query"]["query"].startswith("label_values(")


def test_red_dashboard_shape() -> None:
    dash = DASHBOARDS["kms-red.json"]
    exprs = {title: t for title, t in _prom_targets(dash)}
    latency = [t for title, t in _prom_targets(dash) if title.startswith("Latency")]
    assert [t["expr"].split(",")[0] for t in latency] == [f"histogram_quantile({q}" for q in ("0.5", "0.9", "0.99")]
    assert all(t["exemplar"] for t in latency)
    assert 'status_code="STATUS_CODE_ERROR"' in exprs["Error ratio"]["expr"]
    assert "traces_spanmetrics_calls_total" in exprs["Request rate"]["expr"]
    assert {v["name"] for v in dash["templating"]["list"]} == {"service", "span_name"}


def test_stack_dashboard_uses_names_kms_exposes() -> None:
    exposed = exposed_names()
    used = {m for _, t in _prom_targets(DASHBOARDS["kms-stack.json"]) for m in re.findall(r"\bkms_\w+", t["expr"])}
    used |= {m for v in DASHBOARDS["kms-stack.json"]["templating"]["list"]
             for m in re.findall(r"\bkms_\w+", v["query"]["query"])}  # fmt: skip
    assert used and used <= exposed, used - exposed


CASES = [(name, i) for name, dash in DASHBOARDS.items() for i in range(len(_prom_targets(dash)))]


@pytest.mark.parametrize("pick", [False, True], ids=["all", "pick"])
@pytest.mark.parametrize(("name", "i"), CASES)
def test_query_evaluates(name: str, i: int, pick: bool) -> None:
    dash = DASHBOARDS[name]
    title, t = _prom_targets(dash)[i]
    q = interpolate(t["expr"], _variables(dash, pick))
    assert not VAR.search(q), q
    eng = _engine()
    res = eng.instant(q, END) if t["instant"] else eng.range(q, START, END, STEP)
    v = res.value
    size = len(v.samples) if v.type == "vector" else len(v.series)
    assert size > 0, f"{title}: {q} is empty over the synthetic data"
