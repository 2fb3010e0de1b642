"""The canonical text of a label set (the ``series`` column of the metrics signals)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from kms.metrics.samples import Labels

__all__ = ["labels_text", "cached_labels_text", "parse_labels_text"]

_LEGACY_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_PAIR = re.compile(r'(?:([a-zA-Z_][a-zA-Z0-9_]*)|"((?:[^"\\]|\\.)*)")="((?:[^"\\]|\\.)*)"(,|\})', re.DOTALL)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_UNESCAPE = {"n": "\n", "\\": "\\", '"': '"'}


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _unquote(s: str) -> str:
    if "\\" not in s:
        return s
    return _ESCAPE.sub(lambda m: _UNESCAPE.get(m.group(1), m.group(1)), s)


def labels_text(labels: Labels | Iterable[tuple[str, str]]) -> str:
    """``{__name__="up",job="a\\"b"}``: pairs in the given (sorted) order, values escaped as
    Prometheus does (``\\``, ``"``, newline); a name that is not a legacy identifier is quoted
    the same way (Prometheus 3 UTF-8 form). :func:`parse_labels_text` inverts it exactly."""
    return (
        "{" + ",".join((k if _LEGACY_NAME.match(k) else _quote(k)) + "=" + _quote(v) for k, v in labels) + "}"
    )


@functools.lru_cache(maxsize=1 << 17)
def cached_labels_text(labels: Labels) -> str:
    """:func:`labels_text` of a (hashable) label tuple, cached: ingest meets the same series in
    every request (bench: half of a remote-write request's decode-to-table time)."""
    return labels_text(labels)


def parse_labels_text(text: str) -> dict[str, str]:
    """The label dict of a :func:`labels_text` string; ValueError if it is not one. Parses are
    cached: every query meets the same series texts again (bench: a third of a query's time)."""
    return dict(_parse_cached(text))


@functools.lru_cache(maxsize=1 << 17)
def _parse_cached(text: str) -> tuple[tuple[str, str], ...]:
    return tuple(_parse(text).items())


def _parse(text: str) -> dict[str, str]:
    if text == "{}":
        return {}
    out: dict[str, str] = {}
    pos = 1
    if not text.startswith("{"):
        raise ValueError(f"not a label set: {text!r}")
    for m in _PAIR.finditer(text, 1):
        if m.start() != pos:
            break
        name = m.group(1) if m.group(1) is not None else _unquote(m.group(2))
        out[name] = _unquote(m.group(3))
        pos = m.end()
        if m.group(4) == "}":
            break
    if pos != len(text) or not text.endswith("}"):
        raise ValueError(f"not a label set: {text!r}")
    return out
