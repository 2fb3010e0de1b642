"""Fixtures: recorded-style API objects (tests/kube/data) and an API server double serving them."""

from __future__ import annotations

import pytest
from kube_objects import load

from kms.kube import KubeClient, load_credentials
from kms.testing.kube_api import FakeKubeApi


@pytest.fixture(scope="module")
def cluster() -> list[dict]:
    return load("cluster-shop.yaml")


@pytest.fixture
def api():
    server = FakeKubeApi().start()
    yield server
    server.stop()


@pytest.fixture
def kubeconfig(api, tmp_path) -> str:
    return str(api.kubeconfig(tmp_path / "kubeconfig", namespace="shop"))


@pytest.fixture
def client_factory(kubeconfig):
    creds = load_credentials(kubeconfig)
    return lambda: KubeClient(creds)
