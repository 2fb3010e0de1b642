"""Service graphs (api-contracts.md 5.2): client/server span pairs become edges between services.

Only CLIENT/PRODUCER and SERVER/CONSUMER spans of resources with a ``service.name`` take part;
they are picked out of the span table with numpy and their attributes read vectorised. A client
half waits under ``trace id + span id``, a server half under ``trace id + parent span id``;
halves whose key occurs once on each side of a batch are paired with numpy; the others take one
dict lookup each against the waiting halves, whose data stays in an Arrow table (with the raw
``attrs``, so peer attributes are decoded only for halves that expire). Complete edges are
aggregated per label set with numpy.
A CLIENT span of a database call (any of ``db.namespace``, ``db.name``, ``db.system``,
``db.system.name``) completes at once with ``connection_type="database"``.

Halves wait at most ``wait_s``; then a root SERVER/CONSUMER becomes an edge from ``user`` (or
its peer attribute) and a client half with a peer attribute an edge to that peer, both
``connection_type="virtual_node"``; other expired halves are counted as unpaired. When
``max_items`` halves wait, new halves are dropped and counted.

Locking: ``_lock`` guards the pending halves; registry updates take the registry's lock.
Times: ``clock()`` in seconds (monotonic) for expiry, ``now_ms`` wall ms for the registry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kms.generator.lookup import Coded, Sparse, attribute_codes, resource_then_span
from kms.generator.names import (
    CONNECTION_DATABASE,
    CONNECTION_MESSAGING,
    CONNECTION_VIRTUAL,
    DATABASE_ATTRIBUTES,
    DROPPED_SPANS_TOTAL,
    PEER_ATTRIBUTES,
    REQUEST_CLIENT_SECONDS,
    REQUEST_FAILED_TOTAL,
    REQUEST_SERVER_SECONDS,
    REQUEST_TOTAL,
    SERVICE_GRAPH_BUCKETS,
    UNPAIRED_SPANS_TOTAL,
    sanitize_label_name,
)
from kms.generator.registry import Registry, make_labels
from kms.generator.spanmetrics import group_rows
from kms.traces.attributes import SpanAttributes, dictionary_codes, take_rows

__all__ = ["ServiceGraphs"]

_SERVER, _CLIENT, _PRODUCER, _CONSUMER = 2, 3, 4, 5
_ERROR = 2
_COLUMNS = ["trace_id", "span_id", "parent_span_id", "kind", "duration_ns", "status_code", "service_name"]
_DB_SERVER = ("peer.service", "server.address", "network.peer.address", "network.peer.port")  # database names


def _strings(coded: Coded) -> pa.Array:
    """A lookup as a string array ("" where absent)."""
    codes, values = coded
    return pa.array(values + [""], pa.string()).take(pa.array(np.where(codes < 0, len(values), codes)))


def _first_nonempty(arrays: Sequence[pa.Array], n: int) -> pa.Array:
    out = pa.array([""] * n, pa.string())
    for a in arrays:
        out = pc.if_else(pc.equal(out, ""), a, out)
    return out


class ServiceGraphs:
    """Service-graph metrics of one tenant into ``registry``."""

    def __init__(self, registry: Registry, dimensions: Sequence[str] = (),
                 buckets: Sequence[float] = SERVICE_GRAPH_BUCKETS, wait_s: float = 10.0, max_items: int = 10_000,
                 client_server_prefix: bool = False, peer_attributes: Sequence[str] = PEER_ATTRIBUTES,
                 virtual_node_label: bool = False, clock: Callable[[], float] = time.monotonic):
        self.registry = registry
        self.dimensions = list(dimensions)
        self.prefix = client_server_prefix
        self.peer_attributes = list(peer_attributes)
        self.virtual_node_label = virtual_node_label
        self.wait_s = wait_s
        self.max_items = max_items
        self.clock = clock
        self.total = registry.counter(REQUEST_TOTAL)
        self.failed = registry.counter(REQUEST_FAILED_TOTAL)
        self.server_seconds = registry.histogram(REQUEST_SERVER_SECONDS, buckets)
        self.client_seconds = registry.histogram(REQUEST_CLIENT_SECONDS, buckets)
        self.unpaired = registry.counter(UNPAIRED_SPANS_TOTAL)
        self.dropped = registry.counter(DROPPED_SPANS_TOTAL)
        self._dims = [f"d{i}" for i in range(len(self.dimensions))]
        self._schema = pa.schema([("key", pa.binary()), ("client", pa.bool_()), ("service", pa.string()),
                                  ("seconds", pa.float64()), ("failed", pa.bool_()), ("root", pa.bool_()),
                                  ("attrs", pa.binary()), ("messaging", pa.bool_()), ("trace_id", pa.binary()),
                                  ("expires", pa.float64()), *((d, pa.string()) for d in self._dims)])
        # waiting halves: rows in arrival order (paired ones are marked dead until expiry passes
        # them), a sequence number per row, and key -> (sequence number, is client side)
        self._rows = self._schema.empty_table()
        self._seqs = np.zeros(0, np.int64)
        self._alive = np.zeros(0, bool)
        self._index: dict[bytes, tuple[int, bool]] = {}
        self._next_seq = 0
        self._live = 0
        self._lock = threading.Lock()

    def pending(self) -> int:
        return self._live

    # -- input
    def consume(self, table: pa.Table, now_ms: int) -> None:
        kind = table.column("kind").to_numpy()
        rows = np.flatnonzero((kind >= _SERVER) & (kind <= _CONSUMER))
        if not len(rows):
            self.expire(now_ms)
            return
        has_service = SpanAttributes.for_table(table).resource("service.name", rows).present()
        rows = rows[has_service]
        if not len(rows):
            self.expire(now_ms)
            return
        # the attributes are read from ``table`` itself (its cache, no copy of ``attrs``)
        sub = table.select(_COLUMNS).take(pa.array(rows))
        with self._lock:
            now = self.clock()
            halves, db_edges = self._halves(table, rows, sub, now)
            expired = self._take_expired(now)
            in_batch, halves = self._pair_in_batch(halves)
            paired, dropped = self._pair(halves, table)
        self._record([db_edges, in_batch, paired], expired, dropped, now_ms)

    def _pair_in_batch(self, halves: pa.Table) -> tuple[dict | None, pa.Table]:
        """Vectorised pairing of the halves whose key occurs once as client and once as server in
        this batch and is not waiting: (their edges, the other halves)."""
        if not halves.num_rows:
            return None, halves
        enc = pc.dictionary_encode(halves.column("key")).combine_chunks()
        codes = enc.indices.to_numpy(zero_copy_only=False)
        client = halves.column("client").to_numpy()
        nk = len(enc.dictionary)
        single = (np.bincount(codes[client], minlength=nk) == 1) & (np.bincount(codes[~client], minlength=nk) == 1)
        if self._index and single.any():
            waiting = pa.array(list(self._index), pa.binary())
            single &= ~pc.is_in(enc.dictionary, value_set=waiting).to_numpy(zero_copy_only=False)
        pick = single[codes]
        if not pick.any():
            return None, halves
        cl = np.flatnonzero(client & pick)
        sv = np.flatnonzero(~client & pick)
        cl, sv = cl[np.argsort(codes[cl], kind="stable")], sv[np.argsort(codes[sv], kind="stable")]
        edges = self._paired(halves.take(pa.array(cl)), halves.take(pa.array(sv)))
        return edges, halves.filter(pa.array(~pick))

    def _pair(self, halves: pa.Table, table: pa.Table) -> tuple[dict | None, pa.Table | None]:
        """Pair new halves with waiting ones (and with each other); the rest waits. Returns the
        complete edges and the halves dropped over ``max_items``. Only a dict lookup per half runs
        in Python; the halves' data stays in Arrow."""
        index = self._index
        seq = self._next_seq
        pairs_new: list[int] = []  # row in ``halves``
        pairs_old: list[int] = []  # sequence number of the other half
        keep: list[int] = []
        dropped: list[int] = []
        replaced: list[int] = []
        live = self._live
        client = halves.column("client").to_numpy(zero_copy_only=False)
        roots = (~client & halves.column("root").to_numpy(zero_copy_only=False)).tolist()
        for i, (k, is_client) in enumerate(zip(halves.column("key").to_pylist(), client.tolist(), strict=True)):
            if roots[i]:  # a root server has no client span to wait for: it only waits to expire
                if live >= self.max_items:
                    dropped.append(i)
                else:
                    keep.append(i)
                    live += 1
                    seq += 1
                continue
            hit = index.get(k)
            if hit is not None and hit[1] != is_client:
                del index[k]
                pairs_new.append(i)
                pairs_old.append(hit[0])
                live -= 1
                continue
            if hit is None and live >= self.max_items:
                dropped.append(i)
                continue
            if hit is None:
                live += 1
            else:  # the same side again (a retried span) replaces the waiting half, as in Tempo
                replaced.append(hit[0])
            index[k] = (seq, is_client)
            keep.append(i)
            seq += 1
        self._live = live
        if keep:
            added = halves.take(pa.array(keep, pa.int64()))
            attrs = take_rows(table.column("attrs"), added.column("attrs").to_numpy())
            added = added.set_column(added.schema.get_field_index("attrs"), "attrs", attrs).cast(self._schema)
            self._rows = pa.concat_tables([self._rows, added]) if self._rows.num_rows else added
            self._seqs = np.concatenate([self._seqs, np.arange(self._next_seq, seq)])
            self._alive = np.concatenate([self._alive, np.ones(len(keep), bool)])
            if self._rows.column(0).num_chunks > 32:
                self._rows = self._rows.combine_chunks()
        self._next_seq = seq
        if replaced:
            self._alive[np.searchsorted(self._seqs, np.array(replaced, np.int64))] = False
        paired = None
        if pairs_new:
            pos = np.searchsorted(self._seqs, np.array(pairs_old, np.int64))
            self._alive[pos] = False
            new = halves.take(pa.array(pairs_new, pa.int64()))
            old = self._rows.take(pa.array(pos))
            paired = self._paired(new, old)
        return paired, halves.take(pa.array(dropped, pa.int64())) if dropped else None

    def _halves(self, table: pa.Table, rows: np.ndarray, sub: pa.Table, now: float) -> tuple[pa.Table, dict | None]:
        """(half edges of the non-database spans, complete database edges as columns or None);
        ``sub`` holds the span columns of ``rows`` of ``table``."""
        n = sub.num_rows
        kind = sub.column("kind").to_numpy()
        client = (kind == _CLIENT) | (kind == _PRODUCER)
        tid, sid, parent = sub.column("trace_id"), sub.column("span_id"), sub.column("parent_span_id")
        tid_b = tid.cast(pa.binary())
        keys = pc.binary_join_element_wise(tid_b, pc.if_else(pa.array(client), sid.cast(pa.binary()), parent), b"")
        svc_codes, services = dictionary_codes(sub.column("service_name"))
        service = pa.array(services or [""], pa.string()).take(pa.array(svc_codes))
        seconds = sub.column("duration_ns").to_numpy() / 1e9
        failed = sub.column("status_code").to_numpy() == _ERROR
        # peer attributes are read only for the halves that expire (few); here only database calls
        lk = Sparse(table, DATABASE_ATTRIBUTES, rows)
        dims = [_strings(resource_then_span(table, d, rows)) for d in self.dimensions]
        db = np.zeros(n, bool)
        for attr in DATABASE_ATTRIBUTES:
            db |= pc.not_equal(lk.resource_then_span(attr), "").to_numpy(zero_copy_only=False)
        db &= kind == _CLIENT
        cols = {"key": keys, "client": pa.array(client), "service": service, "seconds": pa.array(seconds),
                "failed": pa.array(failed), "root": pc.equal(pc.binary_length(parent), 0),
                "attrs": pa.array(rows),  # the row in ``table``: replaced by its attrs if the half waits
                "messaging": pa.array((kind == _PRODUCER) | (kind == _CONSUMER)), "trace_id": tid_b,
                "expires": pa.array(np.full(n, now + self.wait_s)), **dict(zip(self._dims, dims, strict=True))}
        halves = pa.table({k: cols[k] for k in self._schema.names})
        if not db.any():
            return halves, None
        mask = pa.array(db)
        d = halves.filter(mask)
        m = d.num_rows
        server = self._database_name(lk, mask)
        empty = pa.array([""] * m, pa.string())
        edges = {"client": d.column("service"), "server": server, "conn": pa.array([CONNECTION_DATABASE] * m),
                 "vn": empty, "client_seconds": d.column("seconds"), "server_seconds": d.column("seconds"),
                 "failed": d.column("failed"), "trace_id": d.column("trace_id"),
                 **{"c_" + k: d.column(k) for k in self._dims}, **{"s_" + k: empty for k in self._dims}}
        return halves.filter(pc.invert(mask)), edges

    @staticmethod
    def _database_name(lk: Sparse, mask: pa.Array) -> pa.Array:
        """peer.service, server.address, network.peer.address[:network.peer.port], else the value
        of the first database attribute present."""
        def get(a: str) -> pa.Array:
            return lk.resource_then_span(a).filter(mask)

        host, port = get("network.peer.address"), get("network.peer.port")
        host_port = pc.if_else(pc.equal(port, ""), host, pc.binary_join_element_wise(host, port, ":"))
        host_port = pc.if_else(pc.equal(host, ""), host, host_port)
        return _first_nonempty([get("peer.service"), get("server.address"), host_port,
                                *(get(a) for a in DATABASE_ATTRIBUTES)], len(host))

    def _paired(self, new: pa.Table, old: pa.Table) -> dict:
        """Edges of halves paired row by row (either may be the client side)."""
        c_new = new.column("client")

        def side(name: str, client: bool) -> pa.Array:
            first, second = (new, old) if client else (old, new)
            return pc.if_else(c_new, first.column(name), second.column(name))

        messaging = pc.or_(new.column("messaging"), old.column("messaging"))
        n = new.num_rows
        return {"client": side("service", True), "server": side("service", False),
                "conn": pc.if_else(messaging, CONNECTION_MESSAGING, ""), "vn": pa.array([""] * n, pa.string()),
                "client_seconds": side("seconds", True), "server_seconds": side("seconds", False),
                "failed": pc.or_(new.column("failed"), old.column("failed")), "trace_id": new.column("trace_id"),
                **{"c_" + k: side(k, True) for k in self._dims}, **{"s_" + k: side(k, False) for k in self._dims}}

    # -- expiry
    def expire(self, now_ms: int) -> None:
        """Resolve the halves that waited ``wait_s`` (virtual nodes) or count them unpaired."""
        with self._lock:
            expired = self._take_expired(self.clock())
        self._record([], expired, None, now_ms)

    def _take_expired(self, now: float) -> pa.Table | None:
        """Remove and return the waiting halves whose time is up. Halves are appended in time
        order, so they are a prefix of the rows; paired rows in it are just forgotten."""
        rows = self._rows
        if not rows.num_rows:
            return None
        cut = int(np.searchsorted(rows.column("expires").to_numpy(), now, side="right"))
        if not cut:
            return None
        alive = self._alive[:cut]
        expired = rows.slice(0, cut).filter(pa.array(alive))
        seqs = self._seqs[:cut][alive].tolist()
        index = self._index
        for k, sq in zip(expired.column("key").to_pylist(), seqs, strict=True):
            hit = index.get(k)
            if hit is not None and hit[0] == sq:
                del index[k]
        self._live -= len(seqs)
        self._rows, self._seqs, self._alive = rows.slice(cut), self._seqs[cut:], self._alive[cut:]
        if self._rows.num_rows > 4 * max(self._live, 1024):  # mostly paired rows: compact
            keep = pa.array(self._alive)
            self._rows, self._seqs, self._alive = self._rows.filter(keep), self._seqs[self._alive], self._alive[self._alive]
        return expired

    def _virtual(self, e: pa.Table) -> tuple[list[dict], pa.Table]:
        """Edges to and from virtual nodes among expired halves, and the halves left unpaired."""
        client, root = e.column("client"), e.column("root")
        attrs = pa.table({"attrs": e.column("attrs")})  # held here: SpanAttributes keeps tables weakly
        sa = SpanAttributes.for_table(attrs)
        peer = _first_nonempty([_strings(attribute_codes(sa.span(a))) for a in self.peer_attributes], e.num_rows)
        e = e.append_column("peer", peer)
        has_peer = pc.not_equal(peer, "")
        from_user = pc.and_(pc.invert(client), root)
        to_peer = pc.and_(client, has_peer)
        out = []
        u = e.filter(from_user)
        if u.num_rows:
            m = u.num_rows
            empty = pa.array([""] * m, pa.string())
            out.append({"client": pc.if_else(pc.equal(u.column("peer"), ""), "user", u.column("peer")),
                        "server": u.column("service"), "conn": pa.array([CONNECTION_VIRTUAL] * m),
                        "vn": pa.array(["client"] * m), "client_seconds": pa.array(np.zeros(m)),
                        "server_seconds": u.column("seconds"), "failed": u.column("failed"),
                        "trace_id": u.column("trace_id"), **{"c_" + k: empty for k in self._dims},
                        **{"s_" + k: u.column(k) for k in self._dims}})
        p = e.filter(to_peer)
        if p.num_rows:
            m = p.num_rows
            empty = pa.array([""] * m, pa.string())
            out.append({"client": p.column("service"), "server": p.column("peer"),
                        "conn": pa.array([CONNECTION_VIRTUAL] * m), "vn": pa.array(["server"] * m),
                        "client_seconds": p.column("seconds"), "server_seconds": pa.array(np.zeros(m)),
                        "failed": p.column("failed"), "trace_id": p.column("trace_id"),
                        **{"c_" + k: p.column(k) for k in self._dims}, **{"s_" + k: empty for k in self._dims}})
        return out, e.filter(pc.invert(pc.or_(from_user, to_peer)))

    # -- output
    def _record(self, edges: list[dict | None], expired: pa.Table | None, dropped: pa.Table | None,
                now_ms: int) -> None:
        edges = [e for e in edges if e is not None]
        unpaired = None
        if expired is not None and expired.num_rows:
            virtual, unpaired = self._virtual(expired)
            edges += virtual
        if edges:
            self._record_edges(edges, now_ms)
        for counter, halves in ((self.unpaired, unpaired), (self.dropped, dropped)):
            if halves is not None and halves.num_rows:
                self._count_halves(counter, halves, now_ms)

    def _record_edges(self, parts: list[dict], now_ms: int) -> None:
        names = ["client", "server", "conn", "vn", *("c_" + k for k in self._dims), *("s_" + k for k in self._dims)]
        cols = {k: pa.concat_arrays([pa.array(p[k]) if not isinstance(p[k], pa.ChunkedArray)
                                     else p[k].combine_chunks() for p in parts])
                for k in [*names, "client_seconds", "server_seconds", "failed", "trace_id"]}
        n = len(cols["client"])
        enc = {k: pc.dictionary_encode(cols[k]) for k in names}
        group, first = group_rows([enc[k].indices.to_numpy(zero_copy_only=False) for k in names])
        g = len(first)
        text = {k: enc[k].dictionary.to_pylist() for k in names}
        codes = {k: enc[k].indices.to_numpy(zero_copy_only=False)[first].tolist() for k in names}
        keys = []
        for j in range(g):
            v = {k: text[k][codes[k][j]] for k in names}
            pairs = [("client", v["client"]), ("server", v["server"]), ("connection_type", v["conn"])]
            for d, name in zip(self._dims, self.dimensions, strict=True):
                if self.prefix:
                    pairs += [(sanitize_label_name("client_" + name), v["c_" + d]),
                              (sanitize_label_name("server_" + name), v["s_" + d])]
                else:
                    pairs.append((sanitize_label_name(name), v["s_" + d] or v["c_" + d]))
            if self.virtual_node_label:
                pairs.append(("virtual_node", v["vn"]))
            keys.append(make_labels(pairs))
        failed = np.bincount(group, weights=cols["failed"].to_numpy(zero_copy_only=False).astype(np.float64),
                             minlength=g)
        total = np.bincount(group, minlength=g).astype(np.float64)
        tids = cols["trace_id"]
        hist = []
        for h, col in ((self.server_seconds, "server_seconds"), (self.client_seconds, "client_seconds")):
            v = cols[col].to_numpy(zero_copy_only=False)
            nb = len(h.bounds)
            cell = group * nb + h.bucket_of(v)
            per = np.bincount(cell, minlength=g * nb).reshape(g, nb).astype(np.float64)
            last_of = np.full(g * nb, -1, np.int64)
            last_of[cell] = np.arange(n)  # the last edge of each cell (numpy keeps the last assignment)
            cells = np.flatnonzero(last_of >= 0)
            last = last_of[cells]
            ex = list(zip((cells // nb).tolist(), (cells % nb).tolist(),
                          [t.hex() for t in tids.take(pa.array(last)).to_pylist()], v[last].tolist(), strict=True))
            hist.append((h, per, np.bincount(group, weights=v, minlength=g), ex))
        with self.registry.lock:
            self.total.add(keys, total, now_ms)
            some = np.flatnonzero(failed > 0)
            if len(some):
                self.failed.add([keys[i] for i in some.tolist()], failed[some], now_ms)
            for h, per, sums, ex in hist:
                h.add(keys, per, sums, total, now_ms, ex)

    def _count_halves(self, counter, halves: pa.Table, now_ms: int) -> None:
        side = pc.if_else(halves.column("client"), "client", "server")
        both = pc.binary_join_element_wise(side, halves.column("service"), "\x00")
        counts = pc.value_counts(both)
        keys = [make_labels([tuple(v.split("\x00", 1))]) for v in counts.field("values").to_pylist()]
        with self.registry.lock:
            counter.add(keys, counts.field("counts").to_numpy().astype(np.float64), now_ms)
