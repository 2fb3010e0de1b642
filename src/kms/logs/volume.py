"""Aggregations of the index endpoints: ``/index/volume(_range)`` and ``/detected_labels``."""

from __future__ import annotations

from kms.metrics.promql.model import Matcher
from kms.metrics.storage.labels import parse_labels_text

__all__ = ["volume", "detected_labels", "HIDDEN_LABELS"]

#: Labels Grafana hides and Loki leaves out of detected labels.
HIDDEN_LABELS = frozenset({"__aggregated_metric__", "__tenant_id__", "__stream_shard__"})


def volume(
    per: dict[tuple[str, int], tuple[int, int]],
    selector: list[Matcher],
    targets: list[str],
    by_labels: bool,
    limit: int,
) -> list[tuple[dict[str, str], dict[int, int]]]:
    """Bytes per group and bucket, largest groups first, at most ``limit`` groups.

    Groups are Loki's: by the ``targetLabels`` when given, else by the label names of the
    selector; ``aggregateBy=labels`` gives one group per label name (``{"<name>": ""}``)."""
    names = targets or list(dict.fromkeys(m.name for m in selector))
    groups: dict[tuple, dict[int, int]] = {}
    for (text, bucket), (_, nbytes) in per.items():
        labels = parse_labels_text(text)
        if by_labels:
            keys = [((n, ""),) for n in names if n in labels] if names else [((n, ""),) for n in labels]
        else:
            keys = [tuple((n, labels[n]) for n in names if n in labels) if names else tuple(sorted(labels.items()))]
        for k in keys:
            pts = groups.setdefault(k, {})
            pts[bucket] = pts.get(bucket, 0) + nbytes
    ranked = sorted(groups.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    return [(dict(k), pts) for k, pts in ranked[:limit]]


def detected_labels(streams: list[dict[str, str]]) -> list[dict]:
    """``[{"label": name, "cardinality": distinct values}]`` over the stream label sets."""
    values: dict[str, set[str]] = {}
    for labels in streams:
        for k, v in labels.items():
            if k not in HIDDEN_LABELS:
                values.setdefault(k, set()).add(v)
    return [{"label": k, "cardinality": len(v)} for k, v in sorted(values.items())]
