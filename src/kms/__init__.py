"""kube-monitoring-stack: traces, metrics and logs in one place, linked by trace id."""

__version__ = "0.1.0"
