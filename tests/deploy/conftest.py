"""Stacks for every profile, rendered once per session (rendering is pure and deterministic)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kms.deploy import build, load_stack, render

#: One stack per profile that switches on everything the profile offers.
SETS = {
    "single-cluster": ["exporters.node[0].name=db1", "exporters.node[0].addresses={10.0.0.5,10.0.0.6}",
                       "exporters.postgres[0].name=orders", "exporters.postgres[0].host=orders-db.shop.svc",
                       "exporters.redis[0].name=cache", "exporters.redis[0].address=redis://cache.shop.svc:6379"],
    "small": ["exporters.postgres[0].name=orders", "exporters.postgres[0].host=orders-db.shop.svc",
              "exporters.node[0].name=db1", "exporters.node[0].addresses={10.0.0.5}"],
    "multi-cluster": ["cluster=central", "multi_cluster.clusters={prod-eu,prod-us}",
                      "multi_cluster.central_url=https://mimir.example.com"],
}  # fmt: skip
PROFILES = list(SETS)


def stack_for(profile: str, *extra: str):
    return load_stack(None, [f"profile={profile}", *SETS[profile], *extra])


@pytest.fixture(scope="session")
def rendered(tmp_path_factory) -> dict[str, Path]:
    """profile -> output directory of ``render``."""
    out = {}
    for profile in PROFILES:
        d = tmp_path_factory.mktemp(profile)
        render(stack_for(profile), d)
        out[profile] = d
    return out


@pytest.fixture(scope="session")
def parts() -> dict[str, list]:
    return {p: build(stack_for(p)) for p in PROFILES}
