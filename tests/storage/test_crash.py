"""kill -9 in the middle of a write stream: every acknowledged row survives, exactly once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kms.storage import ScanRequest

from .conftest import numbers

WRITER = Path(__file__).with_name("crash_writer.py")


def run_and_kill(data_dir: Path, first: int, acks_before_kill: int) -> set[int]:
    """Run the writer, SIGKILL it after ``acks_before_kill`` acknowledgements; the numbers it acknowledged."""
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(data_dir), str(first), "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acked: set[int] = set()
    try:
        assert proc.stdout.readline().strip() == "OPEN", proc.stderr.read()
        n = 0
        for line in proc.stdout:
            _, a, b = line.split()
            acked.update(range(int(a), int(b) + 1))
            n += 1
            if n >= acks_before_kill:
                os.kill(proc.pid, signal.SIGKILL)
                break
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, err
    for line in rest.splitlines():  # printed before the kill landed: acknowledged too
        if line.startswith("ACK "):
            _, a, b = line.split()
            acked.update(range(int(a), int(b) + 1))
    return acked


@pytest.mark.slow
def test_kill_9_loses_and_duplicates_nothing(make_store, tmp_path):
    data_dir = tmp_path / "data"
    rng = random.Random(os.environ.get("KMS_CRASH_SEED", "9"))
    all_acked: set[int] = set()
    for round_ in range(3):
        all_acked |= run_and_kill(data_dir, round_ * 1_000_000, rng.randint(150, 500))
        store = make_store(data_dir)
        got = numbers(store.scan(ScanRequest("t1", "toy")))
        assert len(got) == len(set(got)), "duplicated rows after restart"
        missing = all_acked - set(got)
        assert not missing, (
            f"round {round_}: {len(missing)} acknowledged rows lost, e.g. {sorted(missing)[:5]}"
        )
        s = store.stats()
        assert s["partitions"][0]["blocks"] >= 1  # the kill came after some cuts
        store.close(flush=round_ == 1)
