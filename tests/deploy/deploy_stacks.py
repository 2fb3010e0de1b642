"""Stacks for every profile, shared by the deploy tests. A module of its own rather than
conftest.py: `from conftest import ...` picks another package's conftest when several test
directories run in one session."""

from __future__ import annotations

from kms.deploy import load_stack

#: One stack per profile that switches on everything the profile offers.
SETS = {
    "single-cluster": ["exporters.node[0].name=db1", "exporters.node[0].addresses={10.0.0.5,10.0.0.6}",
                       "exporters.postgres[0].name=orders", "exporters.postgres[0].host=orders-db.shop.svc",
                       "exporters.redis[0].name=cache", "exporters.redis[0].address=redis://cache.shop.svc:6379"],
    "small": ["exporters.postgres[0].name=orders", "exporters.postgres[0].host=orders-db.shop.svc",
              "exporters.node[0].name=db1", "exporters.node[0].addresses={10.0.0.5}"],
    "multi-cluster": ["cluster=central", "multi_cluster.clusters={prod-eu,prod-us}",
                      "multi_cluster.central_url=https://mimir.example.com",
                      "multi_cluster.central_loki_url=https://loki.example.com",
                      "multi_cluster.central_tempo_url=https://tempo-otlp.example.com"],
}  # fmt: skip
PROFILES = list(SETS)


def stack_for(profile: str, *extra: str):
    return load_stack(None, [f"profile={profile}", *SETS[profile], *extra])
