"""The stack file: `kms init` output equals the defaults, and bad keys fail with file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from kms.cli import main
from kms.deploy import Stack, StackFileError, load_stack
from kms.deploy.init import STACK_FILE


def test_init_file_is_the_defaults(tmp_path: Path) -> None:
    f = tmp_path / "kms.yaml"
    assert main(["init", "-o", str(f)]) == 0
    assert f.read_text() == STACK_FILE
    assert load_stack(f) == Stack()
    assert main(["init", "-o", str(f)]) == 1  # no overwrite without --force
    assert main(["init", "-o", str(f), "--force"]) == 0


@pytest.mark.parametrize("text, expect", [
    ("storage:\n  tpye: external\n", ["kms.yaml:2:", "storage.tpye", "did you mean 'type'"]),
    ("loki:\n  write_replicas: three\n", ["kms.yaml:2:", "loki.write_replicas", "whole number"]),
    ("profile: single\n", ["kms.yaml:1:", "profile", "single-cluster"]),
    ("storage:\n  type: external\n", ["storage.endpoint", "required"]),
    ("storage:\n  type: external\n  endpoint: https://s3.example.com\n", ["kms.yaml:3:", "without scheme"]),
    ("alerting: yes please\n", ["alerting", "true or false"]),
    ("name: KMS\n", ["name", "DNS label"]),
    ("exporters:\n  node:\n    - name: db1\n      addresses: [db1.example.com]\n", ["kms.yaml:4:", "not an IPv4"]),
    ("instrumentation:\n  propagators: [w3c]\n", ["propagators[0]", "'w3c'"]),
    ("multi_cluster:\n  clusters: [a, a]\n", ["clusters[1]", "twice"]),
    ("- a\n", ["must be a mapping"]),
])  # fmt: skip
def test_bad_stack_files(tmp_path: Path, text: str, expect: list[str]) -> None:
    f = tmp_path / "kms.yaml"
    f.write_text(text)
    with pytest.raises(StackFileError) as e:
        load_stack(f)
    for part in expect:
        assert part.replace("kms.yaml", str(f)) in e.value.message


def test_set_overrides_are_typed() -> None:
    s = load_stack(None, ["loki.write_replicas=5", "alerting=false", "instrumentation.sampler_argument=0.25",
                          "multi_cluster.clusters={eu,us}", "exporters.node[0].name=db1",
                          "exporters.node[0].addresses={10.0.0.1}"])  # fmt: skip
    assert s.loki.write_replicas == 5 and s.alerting is False
    assert s.instrumentation.sampler_argument == "0.25"  # string field keeps the text
    assert s.multi_cluster.clusters == ["eu", "us"]
    assert s.exporters.node[0].addresses == ["10.0.0.1"] and s.exporters.node[0].port == 9100
    with pytest.raises(StackFileError, match="KEY=VALUE"):
        load_stack(None, ["loki.write_replicas"])
    with pytest.raises(StackFileError, match="loki.writes"):
        load_stack(None, ["loki.writes=3"])


def test_set_matches_helm_parsing() -> None:
    helm = pytest.importorskip("helm_python")
    from kms.deploy.load import apply_set

    for expr in ("a.b=3", "a.c=true", "a.d={x,y}", "e[0].f=text"):
        assert apply_set({}, [expr]) == helm.parse_set_string(expr), expr
