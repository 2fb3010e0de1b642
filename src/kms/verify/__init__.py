"""``kms verify``: send one tagged trace with its logs and an exemplar-carrying metric through OTLP,
then prove every correlation link through the query APIs alone (Tempo, Loki, Prometheus/Mimir)."""

from kms.verify.checks import Endpoints, run_checks
from kms.verify.probe import Probe
from kms.verify.report import Result, render_table

__all__ = ["Endpoints", "Probe", "Result", "render_table", "run_checks"]
