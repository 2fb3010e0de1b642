"""Prometheus samples and exemplars in the generic store, and the ``SeriesSource`` reading them.

A sample is one row of the ``samples`` signal: ``time_ns`` (the sample's ms * 1e6), ``metric``
(``__name__``), ``series`` (the canonical text of the whole sorted label set, ``__name__``
included, see :func:`labels_text`) and ``value`` (float64, kept bit-exact so staleness markers
survive). Exemplars are rows of the ``exemplars`` signal with the same ``series`` text plus
``labels`` (the exemplar's own label set in the same text form). Native-histogram samples are
rows of the ``histograms`` signal (see ``storage/histograms.py``), merged into the series they
belong to when read.

PromQL selects read blocks through a ``SampleCache``: per tenant a ``SeriesIndex`` (ids,
postings) and each block decoded once into per-series runs, found with ``searchsorted``; the
head is scanned. The metadata queries push the ``__name__`` equality matcher down as a store
filter and apply every other matcher once per distinct series text.
"""

from __future__ import annotations

from kms.metrics.storage.cache import SampleCache
from kms.metrics.storage.histograms import HISTOGRAMS, histograms_table
from kms.metrics.storage.labels import labels_text, parse_labels_text
from kms.metrics.storage.source import StoreSeriesSource
from kms.metrics.storage.tables import (
    EXEMPLAR_SCHEMA,
    EXEMPLARS,
    SAMPLE_SCHEMA,
    SAMPLES,
    exemplars_table,
    samples_table,
)

__all__ = [
    "SAMPLES",
    "EXEMPLARS",
    "HISTOGRAMS",
    "histograms_table",
    "SAMPLE_SCHEMA",
    "EXEMPLAR_SCHEMA",
    "labels_text",
    "parse_labels_text",
    "samples_table",
    "exemplars_table",
    "StoreSeriesSource",
    "SampleCache",
]
