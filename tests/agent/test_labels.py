"""External labels added while encoding remote write give the bytes of adding them to the batch."""

from __future__ import annotations

import cramjam
import numpy as np
import pytest

from kms.agent.labels import with_labels
from kms.metrics.remote_write import decode_write_request, encode_batch
from kms.metrics.samples import Exemplar, SampleBatch

EXTERNAL = {"cluster": "c1", "region": "eu"}


def batch(exemplars: bool) -> SampleBatch:
    series = [(("__name__", "a"), ("job", "j")),
              (("__name__", "b"), ("cluster", "own"), ("z", "1"))]  # its own cluster wins
    return SampleBatch(series, np.array([0, 1, 0], np.int32), np.array([3000, 1000, 2000], np.int64),
                       np.array([1.0, 2.0, 3.0]),
                       exemplars=[Exemplar(0, (("trace_id", "t"),), 1.0, 3000)] if exemplars else [])


@pytest.mark.parametrize("exemplars", [False, True])
def test_labels_while_encoding_equal_labelled_batch(exemplars):
    b = batch(exemplars)
    got = encode_batch(b, labels=EXTERNAL)
    assert got == encode_batch(with_labels(b, EXTERNAL))
    decoded = decode_write_request(bytes(cramjam.snappy.decompress_raw(got)))
    assert sorted(decoded.series) == [
        (("__name__", "a"), ("cluster", "c1"), ("job", "j"), ("region", "eu")),
        (("__name__", "b"), ("cluster", "own"), ("region", "eu"), ("z", "1")),
    ]
    assert encode_batch(b) == encode_batch(b, labels={})  # the plain encoding is unchanged
