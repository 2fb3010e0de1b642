"""The label-set hash ``limit_ratio`` selects by: Prometheus picks a series when
``xxhash64(labels) / MaxUint64`` is under the ratio, labels serialised as
``name 0xff value 0xff`` in label-name order."""

from __future__ import annotations

import xxhash

__all__ = ["labels_hash"]


def labels_hash(labels: dict[str, str]) -> int:
    buf = b"".join(k.encode() + b"\xff" + v.encode() + b"\xff" for k, v in sorted(labels.items()))
    return xxhash.xxh64_intdigest(buf)
