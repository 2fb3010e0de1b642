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
    histogram: object | None = None  # a nativehist.FloatHistogram instead of ``value``


@dataclass
class Vector:
    samples: list[Sample]
    type: str = "vector"


@dataclass
class MatrixSeries:
    labels: dict[str, str]
    t: np.ndarray
    v: np.ndarray
    histograms: list[tuple[int, object]] = field(default_factory=list)  # (t_ms, histogram)


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
    """``ok`` marks the steps holding a float; ``h`` (None when there are no histograms) is an
    object array with a native histogram at the steps holding one instead."""

    labels: dict[str, str]
    v: np.ndarray
    ok: np.ndarray
    drop_name: bool = False
    h: np.ndarray | None = None

    def hmask(self) -> np.ndarray:
        if self.h is None:
            return np.zeros(len(self.ok), dtype=bool)
        return np.fromiter((x is not None for x in self.h), dtype=bool, count=len(self.h))

    def present(self) -> np.ndarray:
        return self.ok if self.h is None else self.ok | self.hmask()

    def only(self, keep: np.ndarray) -> VSeries:
        """The same series restricted to the steps in ``keep`` (floats and histograms)."""
        h = None
        if self.h is not None:
            h = np.where(keep, self.h, None)
        return VSeries(self.labels, self.v, self.ok & keep, self.drop_name, h)


@dataclass
class InstantVec:
    series: list[VSeries]


@dataclass
class RSeries:
    """Float samples ``t``/``v`` with per-step windows ``lo:hi``; native-histogram samples, if
    any, apart in ``ht``/``hv`` with their own windows ``hlo:hhi``."""

    labels: dict[str, str]
    t: np.ndarray
    v: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    drop_name: bool = False
    ht: np.ndarray | None = None
    hv: np.ndarray | None = None
    hlo: np.ndarray | None = None
    hhi: np.ndarray | None = None
    st: np.ndarray | None = None  # start timestamps of ``t`` (ms, 0 unknown), from selectors only
    hst: np.ndarray | None = None  # the same for ``ht``


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
