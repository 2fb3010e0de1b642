"""The storage engine: WAL (fsync before ack), head, immutable Parquet blocks in a local
directory or S3, compaction and retention, per tenant. Signal-agnostic: a signal is a
``SignalSpec`` (schema + sort order). ``Store`` is the one door; see FORMAT.md for the formats.
"""

from kms.storage.layout import validate_tenant
from kms.storage.objstore import LocalObjectStore, ObjectStore, S3ObjectStore
from kms.storage.store import Store, StoreConfig
from kms.storage.types import TIME_COLUMN, ScanRequest, SignalSpec

__all__ = [
    "Store",
    "StoreConfig",
    "ObjectStore",
    "LocalObjectStore",
    "S3ObjectStore",
    "SignalSpec",
    "ScanRequest",
    "TIME_COLUMN",
    "validate_tenant",
]
