"""Crash-test writer (run as a script): appends numbered toy rows from several threads and
prints ``ACK first last`` after each append returns, until it is killed.

    python crash_writer.py DATA_DIR FIRST_NUMBER THREADS
"""

from __future__ import annotations

import itertools
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from toy import TOY, toy_rows  # noqa: E402

from kms.storage import LocalObjectStore, Store, StoreConfig  # noqa: E402

BATCH = 5


def main() -> None:
    data_dir, first, threads = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    store = Store(
        StoreConfig(
            data_dir=data_dir,
            head_max_rows=300,  # many cuts, compactions and WAL truncations while we run
            background_interval_s=0.01,
            compaction_min_blocks=3,
            compaction_target_rows=3000,
            block_delete_delay_s=0.0,
        ),
        LocalObjectStore(data_dir / "blocks"),
        [TOY],
    )
    store.open()
    counter = itertools.count()
    lock = threading.Lock()
    print("OPEN", flush=True)

    def writer() -> None:
        while True:
            with lock:
                start = first + next(counter) * BATCH
            store.append("t1", "toy", toy_rows(range(start, start + BATCH)))
            with lock:
                sys.stdout.write(f"ACK {start} {start + BATCH - 1}\n")
                sys.stdout.flush()

    for _ in range(threads):
        threading.Thread(target=writer, daemon=True).start()
    threading.Event().wait()


if __name__ == "__main__":
    main()
