"""`kms images`: every image of the rendered stack, and mirror pairs for a private registry."""

from __future__ import annotations

import pytest
from deploy_stacks import SETS

from kms.cli import main
from kms.deploy.images import IMAGES, registry_overrides, rewrite


@pytest.mark.parametrize("ref, want", [
    ("quay.io/prometheus/prometheus:v3.14.0", "reg.local/mirror/prometheus/prometheus:v3.14.0"),
    ("grafana/mimir:3.2.0", "reg.local/mirror/grafana/mimir:3.2.0"),
    ("localhost/x/y:1", "reg.local/mirror/x/y:1"),
    ("registry.k8s.io:443/a/b:1", "reg.local/mirror/a/b:1"),
])  # fmt: skip
def test_rewrite(ref: str, want: str) -> None:
    assert rewrite(ref, "reg.local/mirror/") == want


def test_charts_without_a_global_key_get_one_override_per_image() -> None:
    o = registry_overrides("mimir", "reg.local")
    assert o["image"]["repository"] == "reg.local/grafana/mimir"
    assert o["gateway"]["nginx"]["image"] == {"registry": "reg.local", "repository": "nginxinc/nginx-unprivileged"}
    assert registry_overrides("loki", "reg.local") == {"global": {"imageRegistry": "reg.local"}}
    for alias, images in IMAGES.items():
        assert registry_overrides(alias, "reg.local"), alias  # every chart can be rewritten
        assert all(":" in i.ref.rsplit("/", 1)[1] for i in images), alias  # pinned tags


def test_images_command(capsys) -> None:
    assert main(["images", "--profile", "single-cluster", *[a for s in SETS["single-cluster"] for a in ("--set", s)]]) == 0
    plain = capsys.readouterr().out.split()
    for want in ("quay.io/prometheus/prometheus:v3.14.0", "docker.io/grafana/mimir:3.2.0",
                 "docker.io/otel/opentelemetry-collector-k8s:0.158.0", "docker.io/chrislusf/seaweedfs:3.85",
                 "quay.io/prometheuscommunity/postgres-exporter:v0.18.1", "docker.io/oliver006/redis_exporter:v1.80.0"):
        assert want in plain
    assert main(["images", "--profile", "small", "--registry", "reg.local"]) == 0
    pairs = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert pairs and all(len(p) == 2 and p[1].startswith("reg.local/") for p in pairs)
    assert ["ghcr.io/kube-monitoring-stack/kms:0.1.0", "reg.local/kube-monitoring-stack/kms:0.1.0"] in pairs


def test_every_pinned_chart_has_images_and_an_install_phase() -> None:
    from kms.deploy.charts import CHARTS, CRD_ONLY
    from kms.deploy.plan import PHASES

    phased = {m for _, members in PHASES for m in members}
    for key in CHARTS:
        assert bool(IMAGES.get(key)) != (key in CRD_ONLY), key  # CRD-only charts pull no image
        assert key in phased, key
