"""What Loki adds at ingest and Grafana relies on: the ``service_name`` stream label and the
``detected_level`` structured metadata (defaults of Loki's ``limits.go``)."""

from __future__ import annotations

import functools
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kms.logs.batch import LEVEL_NAMES, NO_LEVEL, LogBatch

__all__ = ["SERVICE_NAME", "DETECTED_LEVEL", "UNKNOWN_SERVICE", "discover_service_name", "detect_level",
           "level_of_severity", "normalise", "detect_levels", "enrich"]

SERVICE_NAME = "service_name"
DETECTED_LEVEL = "detected_level"
UNKNOWN_SERVICE = "unknown_service"
#: Loki's ``discover_service_name`` default, in order of preference.
SERVICE_NAME_SOURCES = (
    "service", "app", "application", "app_name", "name", "app_kubernetes_io_name", "container",
    "container_name", "k8s_container_name", "component", "workload", "job", "k8s_job_name",
)
LEVEL_KEYS = ("level", "LEVEL", "Level", "severity", "SEVERITY", "Severity", "lvl", "LVL", "Lvl")
UNKNOWN = "unknown"

# Loki's normalisation of level words to its fixed set.
_WORDS = {
    "trace": "trace", "trc": "trace",
    "debug": "debug", "dbg": "debug", "debu": "debug",
    "info": "info", "inf": "info", "information": "info", "informational": "info", "notice": "info",
    "warn": "warn", "warning": "warn", "wrn": "warn",
    "error": "error", "err": "error", "eror": "error",
    "critical": "critical", "crit": "critical",
    "fatal": "fatal", "panic": "fatal", "emerg": "fatal", "alert": "fatal",
}
_FIELD = re.compile(r'"?(?:level|lvl|severity)"?\s*[=:]\s*"?([A-Za-z]+)', re.IGNORECASE)
# Keyword scan, in Loki's order of precedence (a line with both "error" and "info" is an error).
_KEYWORDS = [("critical", "critical"), ("fatal", "fatal"), ("error", "error"), ("warn", "warn(?:ing)?"),
             ("info", "info"), ("debug", "debug"), ("trace", "trace")]
_KEYWORD_RX = [(lvl, re.compile(rf"\b{w}\b", re.IGNORECASE)) for lvl, w in _KEYWORDS]
# The same two steps for Arrow's RE2 kernels, run over a whole stream's lines at once.
_FIELD_RE2 = r'(?i)"?(?:level|lvl|severity)"?\s*[=:]\s*"?(?P<w>[A-Za-z]+)'
_KEYWORD_RE2 = [(lvl, rf"(?i)\b{w}\b") for lvl, w in _KEYWORDS]
_ANY_KEYWORD_RE2 = r"(?i)\b(?:" + "|".join(w for _, w in _KEYWORDS) + r")\b"


def discover_service_name(labels: dict[str, str]) -> None:
    """Add ``service_name`` from the first present source label, else ``unknown_service``."""
    if labels.get(SERVICE_NAME):
        return
    for key in SERVICE_NAME_SOURCES:
        if labels.get(key):
            labels[SERVICE_NAME] = labels[key]
            return
    labels[SERVICE_NAME] = UNKNOWN_SERVICE


def level_of_severity(number: int) -> str:
    """OTLP ``SeverityNumber`` ranges (1-4 trace ... 21-24 fatal)."""
    if number <= 0:
        return UNKNOWN
    return ("trace", "debug", "info", "warn", "error", "fatal")[min(number - 1, 23) // 4]


@functools.lru_cache(maxsize=1024)
def normalise(word: str) -> str:
    return _WORDS.get(word.strip().lower(), UNKNOWN)


def detect_level(line: str, metadata: dict[str, str], labels: dict[str, str]) -> str:
    for source in (metadata, labels):
        for key in LEVEL_KEYS:
            if source.get(key):
                return normalise(source[key])
    m = _FIELD.search(line)
    if m:
        lvl = normalise(m.group(1))
        if lvl != UNKNOWN:
            return lvl
    for lvl, rx in _KEYWORD_RX:
        if rx.search(line):
            return lvl
    return UNKNOWN


_CODE = {name: i for i, name in enumerate(LEVEL_NAMES)}  # LogStream.levels holds these codes
assert set(_WORDS.values()) | {UNKNOWN} == set(LEVEL_NAMES)


def detect_levels(lines: pa.Array) -> np.ndarray:
    """``detect_level`` of each line without metadata or labels, vectorised (RE2 over the array):
    a level field first, else the first keyword by precedence. Level codes (int8, indexes of
    ``LEVEL_NAMES``); no Python string per line on the way. (Prefiltering streams with
    ``bytes.find`` over their lower-cased lines cost more than these RE2 passes.)"""
    codes = _field_codes(lines)
    # one pass over the lines without a level field finds those with any keyword; only those are
    # searched level by level
    idx = np.flatnonzero(codes == 0)
    if not len(idx):
        return codes
    idx = idx[pc.match_substring_regex(lines.take(pa.array(idx)), _ANY_KEYWORD_RE2).to_numpy(zero_copy_only=False)]
    if len(idx):
        sub = lines.take(pa.array(idx))
        left = np.ones(len(idx), dtype=bool)
        for level, rx in _KEYWORD_RE2:
            hit = pc.match_substring_regex(sub, rx).to_numpy(zero_copy_only=False) & left
            codes[idx[hit]] = _CODE[level]
            left &= ~hit
    return codes


def _field_codes(lines: pa.Array) -> np.ndarray:
    """Level codes from a level field (``level=warn``, ``"severity": "ERROR"``), 0 where none."""
    n = len(lines)
    if not n:
        return np.zeros(0, dtype=np.int8)
    words = pc.extract_regex(lines, _FIELD_RE2).field("w")
    if words.null_count == n:
        return np.zeros(n, dtype=np.int8)
    uniq = pc.unique(words.drop_null())
    norm = np.array([_CODE[normalise(w)] for w in uniq.to_pylist()], dtype=np.int8)
    idx = pc.fill_null(pc.index_in(words, uniq), -1).to_numpy(zero_copy_only=False)
    return np.where(idx >= 0, norm[idx], 0).astype(np.int8)


def enrich(batch: LogBatch, *, service_name: bool = True, levels: bool = True) -> None:
    """Loki's ingest-time additions, in place: ``service_name`` on every stream; ``detected_level``
    (as ``LogStream.levels``) unless the stream carries a level label; an entry whose metadata
    already holds ``detected_level`` keeps it, one with a level field in its metadata gets that."""
    todo = []
    for s in batch.streams:
        if service_name:
            discover_service_name(s.labels)
        if levels and s.times and s.texts is None and not any(k in s.labels for k in (*LEVEL_KEYS, DETECTED_LEVEL)):
            todo.append(s)
    if not todo:
        return
    # levels from metadata first; the lines of the other entries are searched in one pass
    undecided: list[np.ndarray] = []
    for s in todo:
        lv = np.zeros(len(s.times), dtype=np.int8)
        decided = np.zeros(len(s.times), dtype=bool)
        for i, md in enumerate(s.metadata if any(s.metadata) else ()):
            if not md:
                continue
            if DETECTED_LEVEL in md:
                lv[i] = NO_LEVEL
                decided[i] = True
                continue
            for key in LEVEL_KEYS:
                if md.get(key):
                    lv[i] = _CODE[normalise(md[key])]
                    decided[i] = True
                    break
        s.levels = lv
        undecided.append(np.flatnonzero(~decided))
    parts = [s.line_array() if len(u) == len(s.times) else s.line_array().take(pa.array(u))
             for s, u in zip(todo, undecided, strict=True) if len(u)]
    if not parts:
        return
    found = detect_levels(pa.concat_arrays(parts))
    off = 0
    for s, u in zip(todo, undecided, strict=True):
        s.levels[u] = found[off:off + len(u)]
        off += len(u)
