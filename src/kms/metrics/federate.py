"""``GET /federate`` like Prometheus's: the newest sample (within the lookback delta, staleness
respected) of every series matching any ``match[]`` selector, in the text exposition format with
the samples' own timestamps, so another Prometheus (or a central stack) can scrape this one."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from kms.errors import KmsError, http_status
from kms.metrics.http.params import ApiError, parse_selector
from kms.metrics.promql.model import SeriesSource
from kms.metrics.samples import STALE_NAN_BITS

__all__ = ["federate_routes", "federate_text"]

TEXT = "text/plain; version=0.0.4; charset=utf-8"


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _value(v: float) -> str:
    """The text format's float, as Prometheus writes it (Go's strconv 'g', shortest)."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == int(v) and abs(v) < 1e6:
        return str(int(v))
    sci = np.format_float_scientific(v, unique=True, exp_digits=2)
    exp = int(sci.rsplit("e", 1)[1])
    if exp < -4 or exp >= 6:
        mantissa, e = sci.split("e")
        return f"{mantissa.rstrip('.')}e{e}"
    return np.format_float_positional(v, unique=True, trim="-")


def federate_text(source: SeriesSource, selectors: list[str], now_ms: int, lookback_ms: int) -> str:
    found: dict[tuple, tuple[int, float]] = {}
    for sel in selectors:
        for s in source.select(parse_selector(sel), now_ms - lookback_ms + 1, now_ms):
            if not len(s.t):
                continue
            v = float(s.v[-1])
            if math.isnan(v) and s.v[-1:].view("uint64")[0] == STALE_NAN_BITS:
                continue  # the series ended: not federated, as in Prometheus
            found[tuple(sorted(s.labels.items()))] = (int(s.t[-1]), v)
    out, last_name = [], None
    for labels in sorted(found, key=lambda ls: (dict(ls).get("__name__", ""), ls)):
        d = dict(labels)
        name = d.pop("__name__", "")
        if name != last_name:
            out.append(f"# TYPE {name} untyped")
            last_name = name
        t, v = found[labels]
        body = ",".join(f'{k}="{_esc(val)}"' for k, val in sorted(d.items()))
        out.append(f"{name}{{{body}}} {_value(v)} {t}" if body else f"{name} {_value(v)} {t}")
    return "\n".join(out) + ("\n" if out else "")


def federate_routes(source_for: Callable[[list[str]], SeriesSource], resolve_tenants: Callable[[str | None], list[str]],
                    lookback_ms: int) -> list[Route]:
    async def federate(request: Request) -> Response:
        try:
            tenants = resolve_tenants(request.headers.get("x-scope-orgid"))
            selectors = request.query_params.getlist("match[]")
            if not selectors:
                return PlainTextResponse("bad_data: at least one match[] selector is required\n", 400)
            text = await run_in_threadpool(federate_text, source_for(tenants), selectors,
                                           int(time.time() * 1000), lookback_ms)
        except ApiError as e:
            return PlainTextResponse(f"{e.error_type}: {e.message}\n", e.status)
        except KmsError as e:
            return PlainTextResponse(f"{e.message}\n", http_status(e))
        return Response(text, media_type=TEXT)

    return [Route("/federate", federate, methods=["GET"]), Route("/prometheus/federate", federate, methods=["GET"])]
