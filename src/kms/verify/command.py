"""``kms verify``: the command-line face of :mod:`kms.verify`."""

from __future__ import annotations

import argparse
import json
import sys

from kms.config import parse_duration
from kms.verify.checks import Endpoints, run_checks
from kms.verify.probe import Probe
from kms.verify.report import render_table

__all__ = ["register"]

LOCAL_API = "http://127.0.0.1:3200"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify",
        help="prove every correlation link (trace, search, logs, exemplars, span metrics, service graph)",
        description=(
            "Send one tagged trace across two services, its log lines and a latency metric whose exemplar "
            "points at it, through OTLP; then prove each link through the query APIs only: the trace by id, "
            "TraceQL search, log lines carrying the trace id, Grafana's traces-to-logs query, the exemplar, "
            "span metrics and the service-graph edge. Prints a table (link, result, latency, what to fix) "
            "and exits 1 if any link is broken. Defaults: the local `kms up`; point the flags at Mimir, "
            "Loki, Tempo and a collector to check a Kubernetes install."
        ),
    )
    p.add_argument("--prometheus", default=f"{LOCAL_API}/prometheus", metavar="URL",
                   help=f"Prometheus/Mimir API base, the URL a Grafana data source uses (default {LOCAL_API}/prometheus)")
    p.add_argument("--loki", default=LOCAL_API, metavar="URL", help=f"Loki base URL (default {LOCAL_API})")
    p.add_argument("--tempo", default=LOCAL_API, metavar="URL", help=f"Tempo base URL (default {LOCAL_API})")
    p.add_argument("--otlp", default="http://127.0.0.1:4318", metavar="ENDPOINT",
                   help="OTLP endpoint the probe is sent to: http(s)://host:port (OTLP/HTTP, /v1/<signal> "
                        "appended) or grpc://host:port (default http://127.0.0.1:4318)")
    p.add_argument("--tenant", default=None, help="X-Scope-OrgID on every write and query (default none)")
    p.add_argument("--timeout", default="60s",
                   help="how long each link may take to become queryable (default 60s; the metrics "
                        "generator writes every 15s)")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    ep = Endpoints(args.prometheus.rstrip("/"), args.loki.rstrip("/"), args.tempo.rstrip("/"), args.otlp)
    probe = Probe()
    if not args.json:
        print(f"sending trace {probe.trace_id_hex} (run {probe.run_id}) to {ep.otlp}; checking links "
              f"for up to {args.timeout}...", file=sys.stderr, flush=True)
    results = run_checks(ep, args.tenant, parse_duration(args.timeout), probe)
    if args.json:
        print(json.dumps({"trace_id": probe.trace_id_hex, "run": probe.run_id,
                          "results": [r.as_dict() for r in results]}, indent=2))
    else:
        print(render_table(results))
    return 0 if all(r.ok for r in results) else 1
