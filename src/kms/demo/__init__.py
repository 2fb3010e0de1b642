"""``kms demo``: a frontend calling a backend (a web app and its API), both real HTTP servers
instrumented with zero-code OpenTelemetry auto-instrumentation (``opentelemetry-instrument``),
and a bounded load generator driving them."""

__all__ = ["ITEMS"]

# The shop's catalogue: the backend's database rows and the load generator's requests.
ITEMS = ["apple", "banana", "cherry", "durian", "elderberry", "fig", "grape"]
