"""The agent's disk queue: order, durability across reopen, torn tails, the size bound."""

from __future__ import annotations

from kms.agent.queue import DiskQueue


def drain(q: DiskQueue, limit: int = 10_000) -> list[bytes]:
    out = []
    while len(out) < limit and (r := q.peek(0)) is not None:
        out.append(r.payload)
        q.ack(r)
    return out


def test_records_come_out_in_order_across_segments_and_read_segments_are_deleted(tmp_path):
    q = DiskQueue(tmp_path, segment_bytes=500)
    q.append([("m", "t1", f"r{i}".encode() * 20) for i in range(5)])
    for i in range(5, 40):
        q.append([("p", "t2", f"r{i}".encode() * 20)])
    assert q.pending() == 40 and len(list(tmp_path.glob("*.seg"))) > 3
    first = q.peek(0)
    assert (first.kind, first.tenant, first.payload) == ("m", "t1", b"r0" * 20)
    assert q.peek(0) == first  # not consumed until acknowledged
    got = drain(q)
    assert got == [f"r{i}".encode() * 20 for i in range(40)]
    assert q.pending() == 0 and len(list(tmp_path.glob("*.seg"))) <= 1


def test_reopen_resumes_after_the_last_acknowledged_record(tmp_path):
    q = DiskQueue(tmp_path, segment_bytes=300)
    q.append([("t", "a", f"{i:03d}".encode() * 10) for i in range(30)])
    assert drain(q, 12) == [f"{i:03d}".encode() * 10 for i in range(12)]
    q.close()
    q2 = DiskQueue(tmp_path, segment_bytes=300)
    assert q2.pending() == 18
    q2.append([("t", "a", b"new")])
    assert drain(q2) == [f"{i:03d}".encode() * 10 for i in range(12, 30)] + [b"new"]


def test_a_torn_record_at_the_end_is_cut_and_appends_go_on(tmp_path):
    q = DiskQueue(tmp_path)
    q.append([("l", "a", b"whole-1"), ("l", "a", b"whole-2")])
    q.close()
    (seg,) = tmp_path.glob("*.seg")
    with open(seg, "ab") as f:
        f.write(b"\x40\x00\x00\x00\x01\x02\x03\x04half a rec")  # a crash mid-append: never acknowledged
    q2 = DiskQueue(tmp_path)
    assert q2.pending() == 2
    q2.append([("l", "a", b"after")])
    assert drain(q2) == [b"whole-1", b"whole-2", b"after"]


def test_the_bound_drops_the_oldest_segments_and_counts_them(tmp_path):
    q = DiskQueue(tmp_path, max_bytes=4000, segment_bytes=1000)
    for i in range(100):
        q.append([("m", "a", f"{i:04d}".encode() * 25)])  # ~120 bytes a record
    assert q.bytes() <= 4000 + 1000
    assert q.dropped_records > 0
    got = drain(q)
    assert len(got) + q.dropped_records == 100
    assert got[-1] == b"0099" * 25  # the newest survive
    assert got == sorted(got)  # in order, a contiguous tail
    assert int(got[0][:4]) == q.dropped_records


def test_peek_waits_for_an_append(tmp_path):
    import threading

    q = DiskQueue(tmp_path)
    threading.Timer(0.2, lambda: q.append([("m", "a", b"late")])).start()
    rec = q.peek(timeout_s=5)
    assert rec is not None and rec.payload == b"late"
