"""Remote write of the generated series to a peer: a real HTTP server receives what the generator
sends, decoded with the project's own remote-write decoder."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from gen_spans import table

from kms.generator import Generator, GeneratorSettings, RemoteWriter
from kms.generator.names import CALLS_TOTAL
from kms.metrics.remote_write import decode_remote_write

TRACE = [{"service": "web", "id": "a1", "kind": "server", "name": "GET /", "trace": "abc"}]


@pytest.fixture
def peer():
    got: list[tuple[dict, bytes]] = []
    status = [204]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            got.append((dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(status[0])
            self.end_headers()

        def log_message(self, *_):
            pass

    srv = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}/api/v1/push", got, status
    srv.shutdown()


@pytest.mark.parametrize("exemplars", [True, False])
def test_collections_are_sent_with_the_tenant(peer, exemplars):
    url, got, _ = peer
    stored = []
    g = Generator(GeneratorSettings(), lambda t, b: stored.append(t), remote=RemoteWriter(url, exemplars))
    g.consume("team-a", table(TRACE))
    g.flush()
    assert stored == ["team-a"] and len(got) == 1
    headers, body = got[0]
    assert headers["X-Scope-OrgID"] == "team-a" and headers["Content-Encoding"] == "snappy"
    batch = decode_remote_write(body, content_type=headers["Content-Type"])
    calls = {ls: pts for ls, pts in batch.by_series().items() if dict(ls)["__name__"] == CALLS_TOTAL}
    assert [pts[-1][1] for pts in calls.values()] == [1.0]
    assert [dict(e.labels)["traceID"] for e in batch.exemplars] == (["abc".rjust(32, "0")] if exemplars else [])


def test_a_failing_peer_does_not_stop_local_writes(peer):
    url, _, status = peer
    status[0] = 500
    stored = []
    g = Generator(GeneratorSettings(), lambda t, b: stored.append(len(b)), remote=RemoteWriter(url))
    g.consume("t", table(TRACE))
    g.flush()
    assert stored and g.remote_errors == 1 and g.errors == 0
