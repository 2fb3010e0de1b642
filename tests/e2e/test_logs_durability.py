"""Loki pushes acknowledged (204) before a kill -9 are all there after the restart."""

from __future__ import annotations

import threading
import time

import httpx
import orjson
import pytest

from kms.testing import KmsProcess

pytestmark = pytest.mark.slow


def test_kill_9_while_pushing_loses_no_acknowledged_line(tmp_path):
    kms = KmsProcess(tmp_path / "data").start()
    acked: list[str] = []
    stop = threading.Event()

    def client(worker: int):
        with httpx.Client(base_url=kms.url, timeout=5) as c:
            n = 0
            while not stop.is_set():
                lines = [f"w{worker} push {n} line {i}" for i in range(20)]
                t = time.time_ns()
                body = {"streams": [{"stream": {"app": "crash", "worker": str(worker)},
                                     "values": [[str(t + i), line] for i, line in enumerate(lines)]}]}
                try:
                    r = c.post("/loki/api/v1/push", content=orjson.dumps(body), headers={"Content-Type": "application/json"})
                except httpx.HTTPError:
                    return  # the server died mid-request: not acknowledged
                if r.status_code != 204:
                    return
                acked.extend(lines)
                n += 1

    threads = [threading.Thread(target=client, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    kms.kill()  # SIGKILL while the clients are pushing
    stop.set()
    for t in threads:
        t.join(10)
    assert len(acked) > 200, "the clients should have had many pushes acknowledged"

    kms.start()
    try:
        r = httpx.get(kms.url + "/loki/api/v1/index/stats", params={"query": '{app="crash"}', "start": "0",
                                                                    "end": str(time.time_ns())}, timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["entries"] >= len(acked)
        assert kms.stop() == 0
    finally:
        kms.kill()
    from kms.logs.schema import LOGS
    from kms.storage import LocalObjectStore, ScanRequest, Store, StoreConfig

    store = Store(StoreConfig(data_dir=kms.data_dir), LocalObjectStore(kms.data_dir / "blocks"), [LOGS])
    store.open()
    try:
        stored = {line for t in store.scan(ScanRequest("anonymous", "logs", columns=("line",)))
                  for line in t.column("line").to_pylist()}
    finally:
        store.close()
    missing = [line for line in acked if line not in stored]
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged lines lost: {missing[:5]}"
