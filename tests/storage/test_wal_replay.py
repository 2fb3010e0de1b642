"""WAL replay after unclean stops, torn and damaged records, I/O faults, and the
crash window between a block upload and the WAL truncation."""

from __future__ import annotations

import errno
import shutil
import struct

import pytest

from kms.errors import Unavailable
from kms.storage import ScanRequest
from kms.storage import wal as walmod
from kms.storage.walrec import SEGMENT_HEADER_SIZE, WalCorrupt

from .conftest import numbers, simulate_crash, toy_rows


def rows(store, tenant="t1"):
    return numbers(store.scan(ScanRequest(tenant, "toy")))


def segments(data_dir):
    return sorted((data_dir / "wal").glob("*.wal"))


def record_offsets(path):
    """Offsets of the frames in a segment (trusting its lengths)."""
    data = path.read_bytes()
    off, out = SEGMENT_HEADER_SIZE, []
    while off < len(data):
        out.append(off)
        off += 8 + struct.unpack_from("<I", data, off)[0]
    return out


def test_unclean_stop_replays_everything(make_store, tmp_path):
    store = make_store()
    for i in range(5):
        store.append("t1", "toy", toy_rows(range(i * 10, i * 10 + 10)))
    store.append("t2", "toy", toy_rows([999]))
    simulate_crash(store)
    store = make_store()
    assert rows(store) == list(range(50)) and rows(store, "t2") == [999]
    assert store.stats()["replayed_rows"] == 51
    store.append("t1", "toy", toy_rows([50]))  # and keeps going
    simulate_crash(store)
    assert rows(make_store()) == list(range(51))


@pytest.mark.parametrize("cut", ["1 byte", "header only", "half the payload", "all but one byte"])
def test_torn_last_record_is_dropped(make_store, tmp_path, cut):
    store = make_store()
    for i in range(3):
        store.append("t1", "toy", toy_rows(range(i * 10, i * 10 + 10)))
    simulate_crash(store)
    seg = segments(tmp_path / "data")[-1]
    last = record_offsets(seg)[-1]
    size = seg.stat().st_size
    keep = {
        "1 byte": last + 1,
        "header only": last + 8,
        "half the payload": (last + size) // 2,
        "all but one byte": size - 1,
    }[cut]
    with open(seg, "r+b") as f:
        f.truncate(keep)
    store = make_store()
    assert rows(store) == list(range(20))
    assert store.stats()["wal_dropped_tail_bytes"] == keep - last
    store.append("t1", "toy", toy_rows([100]))
    simulate_crash(store)  # the repaired segment is no longer the last one: it must still replay
    assert rows(make_store()) == list(range(20)) + [100]


@pytest.mark.parametrize("where", ["payload", "crc", "length", "shorter length"])
def test_bit_flipped_last_record_is_dropped(make_store, tmp_path, where):
    store = make_store()
    for i in range(3):
        store.append("t1", "toy", toy_rows(range(i * 10, i * 10 + 10)))
    simulate_crash(store)
    seg = segments(tmp_path / "data")[-1]
    last = record_offsets(seg)[-1]
    data = bytearray(seg.read_bytes())
    if where == "shorter length":
        struct.pack_into("<I", data, last, struct.unpack_from("<I", data, last)[0] - 100)
    else:
        data[{"payload": len(data) - 40, "crc": last + 5, "length": last + 1}[where]] ^= 0x10
    seg.write_bytes(bytes(data))
    assert rows(make_store()) == list(range(20))


def test_damage_in_the_middle_is_an_error_naming_segment_and_offset(make_store, tmp_path):
    store = make_store()
    for i in range(3):
        store.append("t1", "toy", toy_rows(range(i * 10, i * 10 + 10)))
    simulate_crash(store)
    seg = segments(tmp_path / "data")[-1]
    second = record_offsets(seg)[1]
    data = bytearray(seg.read_bytes())
    data[second + 30] ^= 0x01
    seg.write_bytes(bytes(data))
    with pytest.raises(WalCorrupt) as e:
        make_store()
    assert seg.name in str(e.value) and f"offset {second}" in str(e.value)


def test_damaged_older_segment_is_an_error(make_store, tmp_path):
    store = make_store()
    store.append("t1", "toy", toy_rows([1]))
    store.append("t2", "toy", toy_rows([2]))
    simulate_crash(store)
    store = make_store()  # a new segment starts at every open
    store.append("t1", "toy", toy_rows([3]))
    simulate_crash(store)
    old = segments(tmp_path / "data")[0]
    with open(old, "r+b") as f:
        f.truncate(old.stat().st_size - 3)
    with pytest.raises(WalCorrupt, match=old.name):
        make_store()


@pytest.mark.parametrize("extra_after_backup", [False, True])
def test_crash_between_block_upload_and_wal_truncation(make_store, tmp_path, extra_after_backup):
    data = tmp_path / "data"
    store = make_store()
    store.append("t1", "toy", toy_rows(range(0, 10)))
    store.append("t2", "toy", toy_rows(range(50, 55)))
    backup = tmp_path / "wal-backup"
    shutil.copytree(data / "wal", backup, ignore=shutil.ignore_patterns("LOCK"))
    if extra_after_backup:
        store.append("t1", "toy", toy_rows(range(10, 12)))  # in the block, not in the restored WAL
    store.flush()  # blocks are uploaded, then the checkpoint is written and the WAL truncated
    simulate_crash(store)
    # Undo the checkpoint and the truncation: as if we crashed right after the uploads.
    for p in (data / "wal").iterdir():
        if p.name != "LOCK":
            p.unlink()
    for p in backup.iterdir():
        shutil.copy2(p, data / "wal" / p.name)
    store = make_store()
    assert rows(store) == list(range(12 if extra_after_backup else 10))
    assert rows(store, "t2") == list(range(50, 55))
    assert store.stats()["replayed_rows"] == 0


def test_fsync_failure_refuses_and_hides_the_rows(make_store, monkeypatch):
    store = make_store()
    store.append("t1", "toy", toy_rows([1]))

    def broken(fd):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(walmod, "_fsync", broken)
    with pytest.raises(Unavailable):
        store.append("t1", "toy", toy_rows([2]))
    monkeypatch.undo()
    assert rows(store) == [1]
    with pytest.raises(Unavailable):  # a WAL whose fsync failed is never trusted again
        store.append("t1", "toy", toy_rows([3]))
    assert store.stats()["wal_failed"]
    simulate_crash(store)
    assert rows(make_store()) in ([1], [1, 2])  # row 2 was never acknowledged: either is fine


def test_write_failure_is_undone_and_the_wal_keeps_working(make_store, monkeypatch):
    store = make_store()
    store.append("t1", "toy", toy_rows([1]))
    real = walmod._write

    def half_then_enospc(fd, data):
        real(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(walmod, "_write", half_then_enospc)
    with pytest.raises(Unavailable):
        store.append("t1", "toy", toy_rows([2]))
    monkeypatch.undo()
    store.append("t1", "toy", toy_rows([3]))
    assert rows(store) == [1, 3]
    simulate_crash(store)
    assert rows(make_store()) == [1, 3]


def test_one_store_per_data_dir(make_store):
    make_store()
    with pytest.raises(Unavailable, match="in use"):
        make_store()


def test_clean_close_leaves_an_empty_wal(make_store, tmp_path):
    store = make_store()
    store.append("t1", "toy", toy_rows(range(10)))
    store.close()
    segs = segments(tmp_path / "data")
    assert len(segs) == 1 and segs[0].stat().st_size == SEGMENT_HEADER_SIZE
    store = make_store()
    assert rows(store) == list(range(10)) and store.stats()["replayed_rows"] == 0
