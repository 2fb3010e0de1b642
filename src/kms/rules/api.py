"""The rules HTTP APIs.

- Prometheus: ``GET /api/v1/rules`` (filters ``type=alert|record``, ``rule_name[]``,
  ``rule_group[]`` (also ``group_name[]``), ``file[]``, ``exclude_alerts``) and
  ``GET /api/v1/alerts``, both also under ``/prometheus``.
- Mimir's ruler configuration API under ``/prometheus/config/v1/rules`` and Loki's under
  ``/loki/api/v1/rules``: list all (``GET``), list a namespace (``GET /<ns>``), get a group
  (``GET /<ns>/<group>``), set a group (``POST /<ns>``, YAML body, 202), delete a group
  (``DELETE /<ns>/<group>``) or a namespace (``DELETE /<ns>``); YAML answers, per tenant.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
import yaml
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kms.errors import KmsError, http_status
from kms.rules.group import alert_json
from kms.rules.load import RuleFileError, group_to_dict, parse_groups
from kms.rules.manager import APIS, Ruler

__all__ = ["rules_routes"]

_OK_NULL = b'{"status":"success","data":null,"errorType":"","error":""}'


def _json(data, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _error(e: Exception) -> Response:
    status = http_status(e) if isinstance(e, KmsError) else 500
    kind = "bad_data" if status == 400 else "unavailable" if status == 503 else "server_error"
    msg = e.message if isinstance(e, KmsError) else str(e)
    return _json({"status": "error", "errorType": kind, "error": msg}, status)


def _yaml(data) -> Response:
    return Response(yaml.safe_dump(data, sort_keys=False), media_type="application/yaml")


def rules_routes(ruler: Ruler, read_tenants: Callable[[str | None], list[str]],
                 write_tenant: Callable[[str | None], str]) -> list[Route]:
    async def rules(request: Request) -> Response:
        try:
            tenants = read_tenants(request.headers.get("x-scope-orgid"))
            q = request.query_params
            kind = q.get("type", "").lower()
            if kind not in ("", "alert", "record"):
                return _json({"status": "error", "errorType": "bad_data",
                              "error": f'unsupported type "{kind}": want "alert" or "record"'}, 400)
            names = set(q.getlist("rule_name[]"))
            groups = set(q.getlist("rule_group[]")) | set(q.getlist("group_name[]"))
            files = set(q.getlist("file[]"))
            exclude_alerts = q.get("exclude_alerts", "").lower() == "true"
            out = []
            for g in ruler.groups(tenants):
                if (groups and g.spec.name not in groups) or (files and g.spec.file not in files):
                    continue
                snap = g.snapshot()
                snap["rules"] = [r for r in snap["rules"]
                                 if (not kind or r["type"] == ("alerting" if kind == "alert" else "recording"))
                                 and (not names or r["name"] in names)]
                if exclude_alerts:
                    for r in snap["rules"]:
                        r.pop("alerts", None)
                if snap["rules"] or not (kind or names):
                    out.append(snap)
            return _json({"status": "success", "data": {"groups": out}})
        except Exception as e:  # noqa: BLE001 - mapped to a status in one place
            return _error(e)

    async def alerts(request: Request) -> Response:
        try:
            tenants = read_tenants(request.headers.get("x-scope-orgid"))
            found = []
            for g in ruler.groups(tenants):
                with g.lock:
                    found += [alert_json(a) for r in g.rules if r.alerts is not None for a in r.alerts.live()]
            return _json({"status": "success", "data": {"alerts": found}})
        except Exception as e:  # noqa: BLE001
            return _error(e)

    routes = []
    for prefix in ("/api/v1", "/prometheus/api/v1"):
        routes += [Route(prefix + "/rules", rules, methods=["GET", "POST"]),
                   Route(prefix + "/alerts", alerts, methods=["GET", "POST"])]
    for api, base in (("prometheus", "/prometheus/config/v1/rules"), ("loki", "/loki/api/v1/rules")):
        routes += _config_routes(ruler, write_tenant, api, base)
    return routes


def _config_routes(ruler: Ruler, tenant_of: Callable[[str | None], str], api: str, base: str) -> list[Route]:
    store = ruler.store
    lang = APIS[api]
    interval = ruler.settings.evaluation_interval_s

    def tenant(request: Request) -> str:
        if store is None:
            raise RuleFileError(["the ruler API has no storage configured"])
        return tenant_of(request.headers.get("x-scope-orgid"))

    async def list_all(request: Request) -> Response:
        try:
            found = store.namespaces(api, tenant(request))
            if not found:
                return Response("no rule groups found\n", status_code=404, media_type="text/plain")
            return _yaml(found)
        except Exception as e:  # noqa: BLE001
            return _error(e)

    async def namespace(request: Request) -> Response:
        ns = request.path_params["namespace"]
        try:
            t = tenant(request)
            if request.method == "GET":
                found = store.namespaces(api, t).get(ns)
                if not found:
                    return Response("no rule groups found\n", status_code=404, media_type="text/plain")
                return _yaml({ns: found})
            if request.method == "DELETE":
                if not store.delete_namespace(api, t, ns):
                    return Response("no rule groups found\n", status_code=404, media_type="text/plain")
                await run_in_threadpool(ruler.reload)  # may wait for a running evaluation
                return Response(_OK_NULL, status_code=202, media_type="application/json")
            body = (await request.body()).decode("utf-8", "replace")
            spec, = parse_groups(body, ns, interval, single=True, default_source=lang)
            store.set_group(api, t, ns, group_to_dict(spec))
            await run_in_threadpool(ruler.reload)
            return Response(_OK_NULL, status_code=202, media_type="application/json")
        except ValueError as e:  # a group that is not exactly one mapping
            return _error(RuleFileError([f"{ns}: {e}"]))
        except Exception as e:  # noqa: BLE001
            return _error(e)

    async def group(request: Request) -> Response:
        ns, name = request.path_params["namespace"], request.path_params["group"]
        try:
            t = tenant(request)
            if request.method == "DELETE":
                if not store.delete_group(api, t, ns, name):
                    return Response("group does not exist\n", status_code=404, media_type="text/plain")
                await run_in_threadpool(ruler.reload)  # may wait for a running evaluation
                return Response(_OK_NULL, status_code=202, media_type="application/json")
            for g in store.namespaces(api, t).get(ns, []):
                if g.get("name") == name:
                    return _yaml(g)
            return Response("group does not exist\n", status_code=404, media_type="text/plain")
        except Exception as e:  # noqa: BLE001
            return _error(e)

    return [
        Route(base, list_all, methods=["GET"]),
        Route(base + "/{namespace}", namespace, methods=["GET", "POST", "DELETE"]),
        Route(base + "/{namespace}/{group}", group, methods=["GET", "DELETE"]),
    ]
