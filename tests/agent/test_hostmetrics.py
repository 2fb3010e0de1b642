"""The agent's host metrics against Debian's prometheus-node-exporter on the same machine: the
same names and label sets, and the same values where they cannot move between two reads."""

from __future__ import annotations

import shutil
import subprocess

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kms.agent.hostmetrics import HostMetrics
from kms.testing import free_port, wait_http

EXPORTER = shutil.which("prometheus-node-exporter")
pytestmark = pytest.mark.skipif(EXPORTER is None, reason="needs Debian's prometheus-node-exporter (apt-get install)")


@pytest.fixture(scope="module")
def node_exporter() -> dict[str, dict[tuple, float]]:
    port = free_port()
    proc = subprocess.Popen([EXPORTER, f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/metrics", 20, proc)
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        proc.terminate()
        proc.wait(10)
    out: dict[str, dict[tuple, float]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


@pytest.fixture(scope="module")
def ours() -> dict[str, dict[tuple, float]]:
    b = HostMetrics(job="node", instance="host-1").collect()
    out: dict[str, dict[tuple, float]] = {}
    for i, ls in enumerate(b.series):
        d = dict(ls)
        name = d.pop("__name__")
        assert (d.pop("job"), d.pop("instance")) == ("node", "host-1")
        out.setdefault(name, {})[tuple(sorted(d.items()))] = float(b.values[list(b.series_idx).index(i)])
    return out


def test_every_name_is_a_node_exporter_name(ours, node_exporter):
    assert len(ours) > 60
    assert sorted(n for n in ours if n not in node_exporter) == []


def test_label_sets_match_where_both_report(ours, node_exporter):
    # node-exporter builds differ in default exclusions (loopback, zram, some mounts): compare
    # the families on what both report, and the label names everywhere
    for name in ("node_cpu_seconds_total", "node_uname_info", "node_memory_MemTotal_bytes", "node_load1"):
        assert set(ours[name]) == set(node_exporter[name]), name
    for name in ours:
        ours_names = {k for key in ours[name] for k, _ in key}
        theirs = {k for key in node_exporter[name] for k, _ in key}
        assert ours_names == theirs, name
    root = [k for k in ours["node_filesystem_size_bytes"] if ("mountpoint", "/") in k]
    assert root and root[0] in node_exporter["node_filesystem_size_bytes"]
    assert set(ours["node_network_receive_bytes_total"]) & set(node_exporter["node_network_receive_bytes_total"])


def test_values_that_do_not_move_agree(ours, node_exporter):
    for name in ("node_memory_MemTotal_bytes", "node_boot_time_seconds", "node_memory_SwapTotal_bytes"):
        (a,) = ours[name].values()
        (b,) = node_exporter[name].values()
        assert abs(a - b) <= 1, name
    for key, size in ours["node_filesystem_size_bytes"].items():
        if key in node_exporter["node_filesystem_size_bytes"]:
            assert size == node_exporter["node_filesystem_size_bytes"][key]
    for key, secs in ours["node_cpu_seconds_total"].items():  # counters read a moment apart
        assert abs(secs - node_exporter["node_cpu_seconds_total"][key]) < 60, key
