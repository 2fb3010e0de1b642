"""``GET /loki/api/v1/tail``: live tailing over a WebSocket (Loki's frames
``{"streams":[...],"dropped_entries":null}``).

The query is re-run every ``POLL_S`` over the entries that arrived since the last frame (up to
``now - delay_for``), oldest first, at most ``limit`` entries a frame. Entries at the cursor's
timestamp that were already sent are not sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from kms.errors import BadInput, KmsError
from kms.logs.http.encode import encode_streams
from kms.logs.http.params import NS, Form, parse_limit, parse_time_ns
from kms.logs.source import LogEntry, StreamsResult

__all__ = ["tail_route", "POLL_S", "MAX_DELAY_S"]

POLL_S = 1.0
MAX_DELAY_S = 5  # Loki's largest delay_for


def tail_route(path: str, source_for: Callable[[list[str]], object], read_tenants: Callable[[str | None], list[str]],
               engine_for: Callable[[object], object], clock: Callable[[], float] = time.time) -> WebSocketRoute:
    """``engine_for(source)`` gives a LogQL engine; ``parse`` errors are sent as a close reason."""

    async def tail(ws: WebSocket) -> None:
        await ws.accept()
        gone = asyncio.Event()

        async def watch() -> None:  # notices the client (or the server's shutdown) closing the socket
            with contextlib.suppress(Exception):
                while (await ws.receive())["type"] != "websocket.disconnect":
                    pass
            gone.set()

        watcher = asyncio.create_task(watch())
        try:
            await _follow(ws, gone)
        except (WebSocketDisconnect, RuntimeError):
            pass
        except KmsError as e:
            with contextlib.suppress(Exception):
                await ws.close(code=1008, reason=e.message[:120])
        except Exception as e:  # noqa: BLE001 - the client learns why the tail ended
            with contextlib.suppress(Exception):
                await ws.close(code=1011, reason=f"internal error: {e}"[:120])
        finally:
            watcher.cancel()

    async def _follow(ws: WebSocket, gone: asyncio.Event) -> None:
        tenants = read_tenants(ws.headers.get("x-scope-orgid"))
        form = Form(ws.url.query)
        query = form.get("query")
        limit = parse_limit(form, 100)
        delay_s = float(form.get("delay_for") or 0)
        if not 0 <= delay_s <= MAX_DELAY_S:
            raise BadInput(f"delay_for can't be greater than {MAX_DELAY_S}")
        cursor = parse_time_ns(form, "start", int(clock() * NS) - 3600 * NS)
        engine = engine_for(source_for(tenants))
        seen: set[tuple] = set()  # entries already sent at the cursor's timestamp
        while not gone.is_set():
            end = int((clock() - delay_s) * NS) + 1
            if end > cursor:
                result, _ = await run_in_threadpool(
                    engine.query_range, query, cursor, end, NS, direction="forward", limit=limit + len(seen))
                fresh = [e for e in _entries(result) if _key(e) not in seen][:limit]
                if fresh:
                    await ws.send_text('{"streams":' + _streams(fresh) + ',"dropped_entries":null}')
                    newest = fresh[-1].time_ns
                    if newest != cursor:
                        seen.clear()
                    cursor = newest
                    seen |= {_key(e) for e in fresh if e.time_ns == newest}
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(gone.wait(), POLL_S)

    return WebSocketRoute(path, tail)


def _key(e: LogEntry) -> tuple:
    return e.time_ns, e.line, tuple(sorted(e.stream.items()))


def _entries(result) -> list[LogEntry]:
    if not isinstance(result, StreamsResult):
        raise KmsError("tail only supports log queries")
    return sorted(result.entries, key=lambda e: e.time_ns)


_PREFIX = '{"resultType":"streams","result":'


def _streams(entries: list[LogEntry]) -> str:
    """The ``result`` array of the streams encoding."""
    return encode_streams(entries, categorize=False)[len(_PREFIX):]
