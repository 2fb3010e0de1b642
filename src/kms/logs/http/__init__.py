"""Helpers of the Loki HTTP API (``kms.logs.api``): parameters, selectors, response encoding."""
