"""Values: the public query results and the internal step-vectorised intermediates.

Internally every expression is evaluated at all steps at once. An instant vector is a list of
``VSeries`` whose ``v``/``ok`` arrays have one slot per step (``ok`` False = no sample there).
A range vector is a list of ``RSeries``: raw samples plus per-step window bounds ``lo:hi``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kms.errors import BadInput

__all__ = ["PromQLError", "Sample", "Vector", "Matrix", "Scalar", "String", "Result"]


class PromQLError(BadInput):
    reason = "bad_promql"


def label_key(labels: dict[str, str]) -> tuple:
    return tuple(sorted(labels.items()))


NAME_LABELS = ("__name__", "__type__", "__unit__")


def without_name(labels: dict[str, str]) -> dict[str, str]:
    """Drop the metric name and the metadata labels that belong to it."""
    return {k: v for k, v in labels.items() if k not in NAME_LABELS}


def format_labels(labels: dict[str, str]) -> str:
    name = labels.get("__name__", "")
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{inner}}}"


@dataclass
class Sample:
    labels: dict[str, str]
    t_ms: int
    value: float


@dataclass
class Vector:
    samples: list[Sample]
    type: str = "vector"


@dataclass
class MatrixSeries:
    labels: dict[str, str]
    t: np.ndarray
    v: np.ndarray


@dataclass
class Matrix:
    series: list[MatrixSeries]
    type: str = "matrix"


@dataclass
class Scalar:
    t_ms: int
    value: float
    type: str = "scalar"


@dataclass
class String:
    t_ms: int
    value: str
    type: str = "string"


@dataclass
class Result:
    value: Vector | Matrix | Scalar | String
    warnings: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)


# ---- internal, step-vectorised values ----


@dataclass
class VSeries:
    labels: dict[str, str]
    v: np.ndarray
    ok: np.ndarray
    drop_name: bool = False


@dataclass
class InstantVec:
    series: list[VSeries]


@dataclass
class RSeries:
    labels: dict[str, str]
    t: np.ndarray
    v: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    drop_name: bool = False


@dataclass
class RangeVec:
    series: list[RSeries]
    wstart: np.ndarray  # exclusive window start per step (ms)
    wend: np.ndarray  # inclusive window end per step (ms)
    range_ms: int
    ts: np.ndarray  # the evaluation step times (before offset and @)
    mode: str | None = None  # "anchored" / "smoothed": lo:hi then cover the widened fetch window


@dataclass
class ScalarVal:
    v: np.ndarray


@dataclass
class StringVal:
    s: str
