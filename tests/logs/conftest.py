"""Real parts for the logs tests: a store on ``tmp_path`` and a receiver over it."""

from __future__ import annotations

import pytest

from kms.limits import MemoryLimiter, RateLimiter
from kms.logs.schema import LOGS
from kms.logs.validate import LogLimits, Validator
from kms.receive import Receiver
from kms.storage import LocalObjectStore, Store, StoreConfig
from kms.telemetry import Telemetry


@pytest.fixture
def store(tmp_path):
    s = Store(StoreConfig(data_dir=tmp_path), LocalObjectStore(tmp_path / "blocks"), [LOGS])
    s.open()
    yield s
    s.close()


@pytest.fixture
def receiver(store):
    r = Receiver(store, RateLimiter(0, 0), MemoryLimiter(1 << 40), Telemetry(),
                 log_validator=Validator(LogLimits(max_line_size=100, max_label_names_per_series=4,
                                                   max_structured_metadata_entries=3)))
    r.ready = True
    return r
