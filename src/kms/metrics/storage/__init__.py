"""Metrics storage modules; import them through ``kms.metrics.store``."""
