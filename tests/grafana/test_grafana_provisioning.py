"""The files `kms grafana` writes: YAML that loads, section 6 of the API contracts, dashboards as JSON."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kms.grafana import dashboards, datasources, write

CONTRACTS = Path("/work/shared/specs/api-contracts.md")


def _contract_datasources() -> list[dict]:
    """The example provisioning file of api-contracts section 6."""
    if not CONTRACTS.is_file():
        pytest.skip("api-contracts.md not present")
    section = CONTRACTS.read_text().split("## 6.", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block
    return yaml.safe_load(block.group(1))["datasources"]


def test_datasources_follow_the_contract() -> None:
    ours = {d["type"]: d for d in datasources("http://obs:3200")["datasources"]}
    for want in _contract_datasources():
        got = ours[want["type"]]
        # Everything but the URL, which is kms's one port (Prometheus under /prometheus).
        assert {k: v for k, v in got.items() if k != "url"} == {k: v for k, v in want.items() if k != "url"}
    assert ours["prometheus"]["url"] == "http://obs:3200/prometheus"
    assert ours["loki"]["url"] == ours["tempo"]["url"] == "http://obs:3200"


def test_tenant_header() -> None:
    for d in datasources("http://obs:3200/", "team-a")["datasources"]:
        assert d["jsonData"]["httpHeaderName1"] == "X-Scope-OrgID"
        assert d["secureJsonData"] == {"httpHeaderValue1": "team-a"}
        assert not d["url"].endswith("//prometheus")
    for d in datasources()["datasources"]:
        assert "httpHeaderName1" not in d["jsonData"] and "secureJsonData" not in d


def test_write_round_trips(tmp_path: Path) -> None:
    write(tmp_path, "http://obs:3200", "team-a")
    ds = yaml.safe_load((tmp_path / "provisioning/datasources/kms.yaml").read_text())
    assert ds == datasources("http://obs:3200", "team-a")
    prov = yaml.safe_load((tmp_path / "provisioning/dashboards/kms.yaml").read_text())
    (provider,) = prov["providers"]
    assert provider["type"] == "file" and Path(provider["options"]["path"]) == tmp_path / "dashboards"
    files = sorted(p.name for p in (tmp_path / "dashboards").glob("*.json"))
    assert files == sorted(dashboards())
    for name in files:
        assert json.loads((tmp_path / "dashboards" / name).read_text()) == dashboards()[name]


def test_cli(tmp_path: Path) -> None:
    out = tmp_path / "g"
    r = subprocess.run([sys.executable, "-m", "kms.cli", "grafana", "-o", str(out), "--url", "http://h:3200"],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "GF_PATHS_PROVISIONING" in r.stdout
    ds = yaml.safe_load((out / "provisioning/datasources/kms.yaml").read_text())
    assert ds["datasources"][0]["url"] == "http://h:3200/prometheus"
    assert (out / "provisioning/dashboards/kms.yaml").is_file()
    assert len(list((out / "dashboards").glob("*.json"))) == 2
    h = subprocess.run([sys.executable, "-m", "kms.cli", "grafana", "--help"], capture_output=True, text=True)
    assert h.returncode == 0 and "--tenant" in h.stdout
