"""The collector layout is checked at load: what is wrong is named with file:line; both old and
new component names load."""

from __future__ import annotations

import pytest

from kms.errors import BadInput
from kms.pipeline.config import load_pipeline_config

GOOD = """\
receivers:
  otlp:
    protocols: {grpc: {endpoint: "127.0.0.1:4317"}, http: {endpoint: "127.0.0.1:4318"}}
  filelog/pods:
    include: [/var/log/pods/*/*/*.log]
processors:
  memory_limiter: {limit_mib: 200}
  batch: {}
exporters:
  otlphttp/central: {endpoint: "http://central:3200"}
  otlp_http/other: {endpoint: "http://other:3200"}
  logging: {}
extensions:
  health_check: {}
service:
  extensions: [health_check]
  pipelines:
    logs: {receivers: [otlp, filelog/pods], processors: [memory_limiter, batch], exporters: [otlphttp/central]}
    traces: {receivers: [otlp], exporters: [otlp_http/other, logging]}
"""


def load(tmp_path, text: str):
    f = tmp_path / "collector.yaml"
    f.write_text(text)
    return load_pipeline_config(f)


def test_old_and_new_names_load_to_canonical_types(tmp_path):
    cfg = load(tmp_path, GOOD)
    assert cfg.get("receivers", "filelog/pods").type == "file_log"
    assert cfg.get("exporters", "otlphttp/central").type == "otlp_http"
    assert cfg.get("exporters", "logging").type == "debug"
    assert [(p.name, p.signal, p.exporters) for p in cfg.pipelines] == [
        ("logs", "logs", ["otlphttp/central"]), ("traces", "traces", ["otlp_http/other", "logging"])]
    assert cfg.get("receivers", "filelog/pods").line == 4


@pytest.mark.parametrize("old,new,expect", [
    # a misspelled exporter in a pipeline: the line of the reference, and the near name
    ("exporters: [otlphttp/central]}", "exporters: [otlphttp/centrl]}",
     "collector.yaml:18: pipeline 'logs' names exporter 'otlphttp/centrl', which is not defined under exporters "
     "(did you mean 'otlphttp/central'?)"),
    # an unknown component type where it is defined
    ("  batch: {}", "  bacth: {}", "collector.yaml:8: unknown processor type 'bacth' in 'bacth' (did you mean 'batch'?)"),
    # a component the collector has but kms does not run
    ("  batch: {}", "  batch: {}\n  tail_sampling: {}", "collector.yaml:9: processor 'tail_sampling': type "
     "'tail_sampling' is not supported by kms"),
    ("traces: {receivers", "trace: {receivers", "pipeline 'trace': the signal must be one of traces, metrics, logs"),
    ("  extensions: [health_check]", "  extensions: [health_chek]", "collector.yaml:16: extension 'health_chek' is not "
     "defined under extensions"),
    ("receivers: [otlp], exporters", "receivers: [], exporters", "pipeline 'traces' has no receivers"),
])
def test_mistakes_are_named_with_their_line(tmp_path, old, new, expect):
    assert old in GOOD
    with pytest.raises(BadInput) as e:
        load(tmp_path, GOOD.replace(old, new, 1))
    assert expect in e.value.message


def test_every_mistake_is_reported_at_once(tmp_path):
    bad = GOOD.replace("  batch: {}", "  bacth: {}").replace("[otlp_http/other, logging]", "[otlp_http/othr, logging]")
    with pytest.raises(BadInput) as e:
        load(tmp_path, bad)
    assert "bacth" in e.value.message and "otlp_http/othr" in e.value.message


def test_env_references_are_expanded_and_relabel_groups_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("NODE_NAME", "node-7")
    monkeypatch.delenv("UNSET_THING", raising=False)
    cfg = load(tmp_path, GOOD.replace('otlphttp/central: {endpoint: "http://central:3200"}',
                                      'otlphttp/central: {endpoint: "http://${env:UNSET_THING:-central}:3200", '
                                      'headers: {node: "${env:NODE_NAME}", x: "${1}", y: "${env:UNSET_THING}"}}'))
    st = cfg.get("exporters", "otlphttp/central").settings
    assert st["endpoint"] == "http://central:3200"
    assert st["headers"] == {"node": "node-7", "x": "${1}", "y": ""}
