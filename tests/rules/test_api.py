"""The rules APIs over a real Ruler (in-memory data, rule store on tmp_path): Prometheus's
/api/v1/rules and /alerts, Mimir's and Loki's ruler configuration APIs, reload."""

from __future__ import annotations

import time

import pytest
import yaml
from starlette.applications import Starlette
from starlette.testclient import TestClient

from kms.rules import Ruler, RulerSettings, RuleStore, rules_routes
from kms.tenancy import TenantResolver

T0 = 1_700_000_000_000

FILE = """
groups:
  - name: api
    rules:
      - record: job:errors:sum
        expr: sum by (job) (errors)
      - alert: HighErrors
        expr: job:errors:sum > 10
        for: 1m
        annotations: {summary: "{{ $value }} errors"}
  - name: other
    rules:
      - record: two
        expr: "2"
"""


@pytest.fixture
def setup(env, tmp_path):
    f = tmp_path / "rules.yml"
    f.write_text(FILE)
    ruler = Ruler(RulerSettings([str(f)], "anonymous", 60.0, 0), env.ctx(), RuleStore(tmp_path / "store"))
    ruler.reload()
    tenants = TenantResolver("anonymous")
    client = TestClient(Starlette(routes=rules_routes(ruler, tenants.for_read, tenants)))
    return ruler, client, f


def test_rules_and_alerts_with_filters(env, setup):
    ruler, client, f = setup
    env.source.add({"__name__": "errors", "job": "api"}, T0 - 1000, 50)
    for g in ruler.groups():
        g.evaluate(T0)
    data = client.get("/api/v1/rules").json()["data"]
    api, other = data["groups"]
    assert (api["name"], api["file"], api["interval"], other["name"]) == ("api", str(f), 60, "other")
    rec, alert = api["rules"]
    assert rec == {**rec, "type": "recording", "name": "job:errors:sum", "health": "ok", "query": "sum by (job) (errors)"}
    assert (alert["type"], alert["state"], alert["duration"]) == ("alerting", "pending", 60)
    assert alert["alerts"][0]["annotations"] == {"summary": "50 errors"} and alert["alerts"][0]["value"] == "5e+01"
    assert alert["lastEvaluation"] == "2023-11-14T22:13:20.000Z"

    def names(**params):
        return [(g["name"], [r["name"] for r in g["rules"]])
                for g in client.get("/prometheus/api/v1/rules", params=params).json()["data"]["groups"]]

    assert names(type="alert") == [("api", ["HighErrors"])]
    assert names(type="record") == [("api", ["job:errors:sum"]), ("other", ["two"])]
    assert names(**{"rule_name[]": "two"}) == [("other", ["two"])]
    assert names(**{"rule_group[]": "other"}) == names(**{"group_name[]": "other"}) == [("other", ["two"])]
    assert names(**{"file[]": "nope"}) == []
    assert client.get("/api/v1/rules", params={"type": "x"}).status_code == 400
    assert "alerts" not in client.get("/api/v1/rules", params={"exclude_alerts": "true"}).json()[
        "data"]["groups"][0]["rules"][1]
    (a,) = client.get("/api/v1/alerts").json()["data"]["alerts"]
    assert a["labels"] == {"alertname": "HighErrors", "job": "api"} and a["state"] == "pending"
    # another tenant has no rules
    assert client.get("/api/v1/rules", headers={"X-Scope-OrgID": "team-a"}).json()["data"]["groups"] == []


GROUP = """
name: g1
interval: 30s
rules:
  - alert: Down
    expr: up == 0
    for: 5m
"""


@pytest.mark.parametrize("base, expr", [("/prometheus/config/v1/rules", "up == 0"),
                                        ("/loki/api/v1/rules", 'sum(rate({app="x"} |= "e" [1m])) > 1')])
def test_ruler_config_api_set_get_list_delete_per_tenant(setup, base, expr):
    ruler, client, _ = setup
    h = {"X-Scope-OrgID": "team-a"}
    assert client.get(base, headers=h).status_code == 404
    body = GROUP.replace("up == 0", expr)
    r = client.post(base + "/ns1", content=body, headers={**h, "Content-Type": "application/yaml"})
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "success"
    assert client.post(base + "/ns1", content=body.replace("g1", "g2"), headers=h).status_code == 202
    listed = yaml.safe_load(client.get(base, headers=h).text)
    assert list(listed) == ["ns1"] and [g["name"] for g in listed["ns1"]] == ["g1", "g2"]
    assert yaml.safe_load(client.get(base + "/ns1", headers=h).text)["ns1"][0]["rules"][0]["expr"] == expr
    got = yaml.safe_load(client.get(base + "/ns1/g1", headers=h).text)
    assert got == {"name": "g1", "interval": "30s", "rules": [{"alert": "Down", "expr": expr, "for": "5m"}]}
    # the ruler runs it for that tenant only
    (g1, g2) = [g for g in ruler.groups(["team-a"])]
    assert (g1.spec.file, g1.spec.name, g1.spec.interval_s) == ("ns1", "g1", 30.0)
    assert g1.rules[0].spec.lang == ("logql" if base.startswith("/loki") else "promql")
    assert client.get(base, headers={"X-Scope-OrgID": "team-b"}).status_code == 404
    # invalid groups are refused with the reason
    bad = client.post(base + "/ns1", content="name: bad\nrules:\n- alert: X\n  expr: 'sum('\n", headers=h)
    assert bad.status_code == 400 and 'group "bad", rule 1 ("X"): expr:' in bad.json()["error"]
    assert client.delete(base + "/ns1/g1", headers=h).status_code == 202
    assert client.get(base + "/ns1/g1", headers=h).status_code == 404
    assert [g.spec.name for g in ruler.groups(["team-a"])] == ["g2"]
    assert client.delete(base + "/ns1", headers=h).status_code == 202
    assert client.get(base + "/ns1", headers=h).status_code == 404 and ruler.groups(["team-a"]) == []


def test_reload_keeps_unchanged_groups_and_a_broken_file_keeps_the_old_rules(env, setup):
    ruler, _, f = setup
    ruler.running = True  # reloads from now on are "while running": no exception, old rules stay
    before = {g.spec.name: g for g in ruler.groups()}
    f.write_text(FILE.replace('expr: "2"', 'expr: "3"'))
    assert ruler.reload()
    after = {g.spec.name: g for g in ruler.groups()}
    assert after["api"] is before["api"] and after["other"] is not before["other"]
    f.write_text("groups:\n- name: x\n  rules:\n  - record: y\n    expr: 'sum('\n")
    assert not ruler.reload() and {g.spec.name for g in ruler.groups()} == {"api", "other"}
    ruler.running = False


def test_file_changes_are_picked_up_by_polling(env, tmp_path):
    f = tmp_path / "r.yml"
    f.write_text("groups: []\n")
    ruler = Ruler(RulerSettings([str(f)], "anonymous", 60.0, 0.05), env.ctx())
    ruler.start()
    try:
        f.write_text(FILE)
        deadline = time.monotonic() + 5
        while not ruler.groups() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [g.spec.name for g in ruler.groups()] == ["api", "other"]
    finally:
        ruler.stop()
