"""The API server double's selectors: the API's label selector syntax (equality and set-based),
field selectors, 400 for what does not parse, and watches that report objects moving into and
out of a selection (as the API server's watch cache does)."""

from __future__ import annotations

import pytest
from kube_objects import wait_for

from kms.kube import Informer, KubeError
from kms.testing.kube_api import SelectorError, field_matcher, label_matcher

LABELS = {"app": "web", "tier": "front", "app.kubernetes.io/name": "shop"}


@pytest.mark.parametrize("selector, want", [
    ("", True), ("app=web", True), ("app==web", True), ("app!=web", False), ("app!=db", True),
    ("missing!=x", True), ("app=web,tier=back", False), ("app in (web,db)", True), ("app in (db)", False),
    ("app notin (db, cache)", True), ("app notin (web)", False), ("missing notin (x)", True),
    ("missing in (x)", False), ("tier", True), ("missing", False), ("!missing", True), ("!tier", False),
    ("app in (web),!legacy,app.kubernetes.io/name=shop", True), (" app = web , tier in ( front ) ", True),
])
def test_label_selectors(selector, want):
    assert label_matcher(selector)(LABELS) is want


POD = {"metadata": {"name": "web-0", "namespace": "shop"}, "spec": {"nodeName": "node-a"},
       "status": {"phase": "Running"}}


@pytest.mark.parametrize("selector, want", [
    ("metadata.name=web-0", True), ("metadata.name==web-1", False), ("metadata.namespace=shop", True),
    ("spec.nodeName=node-a,status.phase!=Failed", True), ("spec.nodeName!=node-a", False),
    ("spec.hostname=", True), ("", True),
])
def test_field_selectors(selector, want):
    assert field_matcher(selector)(POD) is want


@pytest.mark.parametrize("selector", ["app in web", "a=b=c", "=web", "app in (a", "tier notin"])
def test_bad_selectors(selector):
    with pytest.raises(SelectorError):
        label_matcher(selector)


def test_list_answers_400_for_a_bad_selector(api, client_factory):
    c = client_factory()
    try:
        with pytest.raises(KubeError) as e:
            c.list("/api/v1/pods", {"labelSelector": "app in web"})
        assert e.value.status == 400
        with pytest.raises(KubeError):
            c.list("/api/v1/pods", {"fieldSelector": "spec.nodeName=a=b"})
    finally:
        c.close()


def _pod(name: str, labels: dict, node: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "shop", "labels": labels},
            "spec": {"nodeName": node}}


def test_watch_reports_objects_entering_and_leaving_the_selection(api, client_factory):
    api.put("/api/v1/pods", _pod("a", {"app": "web"}, "node-a"))
    api.put("/api/v1/pods", _pod("b", {"app": "db"}, "node-a"))
    seen: list[list[str]] = []
    inf = Informer(client_factory(), "/api/v1/namespaces/shop/pods",
                   lambda objs: seen.append(sorted(o["metadata"]["name"] for o in objs)),
                   "app in (web,cache),!legacy", watch_timeout_s=2)
    inf.params["fieldSelector"] = "spec.nodeName=node-a"
    inf.start()
    try:
        wait_for(lambda: seen and seen[-1] == ["a"])
        api.put("/api/v1/pods", _pod("b", {"app": "cache"}, "node-a"))  # now selected: ADDED
        wait_for(lambda: seen[-1] == ["a", "b"])
        api.put("/api/v1/pods", _pod("a", {"app": "web", "legacy": "yes"}, "node-a"))  # no longer: DELETED
        wait_for(lambda: seen[-1] == ["b"])
        api.put("/api/v1/pods", _pod("b", {"app": "cache"}, "node-b"))  # moved off the node by field
        wait_for(lambda: seen[-1] == [])
        api.put("/api/v1/pods", _pod("c", {"app": "web"}, "node-b"))  # never selected: no change at all
        api.put("/api/v1/pods", _pod("d", {"app": "web"}, "node-a"))
        wait_for(lambda: seen[-1] == ["d"])
        assert ["c"] not in seen and all("c" not in s for s in seen)
    finally:
        inf.stop()
