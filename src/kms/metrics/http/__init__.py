"""Helpers of the Prometheus HTTP query API (``kms.metrics.api``): parameter parsing and the
Prometheus JSON encoding of results."""
