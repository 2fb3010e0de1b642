"""``/detected_fields``: the fields Grafana offers for a query's lines, as Loki detects them:
structured metadata, labels the query's parsers extracted, and fields found by trying JSON,
then logfmt on each line; with a type guessed from the values and their cardinality."""

from __future__ import annotations

import re

import orjson

from kms.logs.source import LogEntry

__all__ = ["detect_fields", "field_values", "field_type"]

_LOGFMT = re.compile(r'([A-Za-z_][\w.\-]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)')
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+")
_BYTES = re.compile(r"\d+(?:\.\d+)?\s?(?:[KMGTPE]i?)?B", re.IGNORECASE)
_BAD = re.compile(r"[^A-Za-z0-9_]")


def _flatten(obj, prefix: str, path: list[str], out: dict[str, tuple[str, list[str]]]) -> None:
    for k, v in obj.items():
        name = prefix + _BAD.sub("_", str(k))
        if isinstance(v, dict):
            _flatten(v, name + "_", [*path, str(k)], out)
        elif not isinstance(v, list):
            out[name] = ("" if v is None else str(v).lower() if isinstance(v, bool) else str(v), [*path, str(k)])


def _parse_line(line: str) -> tuple[str, dict[str, tuple[str, list[str]]]]:
    """(parser, {field: (value, json path)}) for one line."""
    s = line.lstrip()
    if s.startswith("{"):
        try:
            doc = orjson.loads(s)
        except orjson.JSONDecodeError:
            doc = None
        if isinstance(doc, dict):
            out: dict[str, tuple[str, list[str]]] = {}
            _flatten(doc, "", [], out)
            return "json", out
    pairs = _LOGFMT.findall(line)
    if pairs:
        return "logfmt", {_BAD.sub("_", k): (v[1:-1] if v.startswith('"') else v, []) for k, v in pairs}
    return "", {}


def field_type(values: set[str]) -> str:
    """Loki's guess: int, float, boolean, duration, bytes, else string (all values must agree)."""
    vals = [v for v in values if v != ""]
    if not vals:
        return "string"

    def all_(pred) -> bool:
        return all(pred(v) for v in vals)

    if all_(lambda v: re.fullmatch(r"[+-]?\d+", v) is not None):
        return "int"
    if all_(lambda v: re.fullmatch(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", v) is not None):
        return "float"
    if all_(lambda v: v.lower() in ("true", "false")):
        return "boolean"
    if all_(lambda v: _DURATION.fullmatch(v) is not None):
        return "duration"
    if all_(lambda v: _BYTES.fullmatch(v) is not None):
        return "bytes"
    return "string"


def _collect(entries: list[LogEntry]) -> dict[str, dict]:
    fields: dict[str, dict] = {}

    def add(name: str, value: str, parser: str | None, path: list[str]) -> None:
        f = fields.setdefault(name, {"values": set(), "parsers": set(), "jsonPath": path})
        f["values"].add(value)
        if parser:
            f["parsers"].add(parser)

    for e in entries:
        for k, v in e.metadata.items():
            add(k, v, None, [])
        for k, v in e.parsed.items():
            if not k.startswith("__"):
                add(k, v, "parsed", [])
        parser, found = _parse_line(e.line)
        for k, (v, path) in found.items():
            if k not in e.stream and k not in e.metadata:
                add(k, v, parser, path)
    return fields


def detect_fields(entries: list[LogEntry], limit: int) -> list[dict]:
    out = []
    for name, f in sorted(_collect(entries).items())[:limit]:
        parsers = sorted(p for p in f["parsers"] if p != "parsed") or None
        item = {"label": name, "type": field_type(f["values"]), "cardinality": len(f["values"]), "parsers": parsers}
        if f["jsonPath"]:
            item["jsonPath"] = f["jsonPath"]
        out.append(item)
    return out


def field_values(entries: list[LogEntry], name: str, limit: int) -> list[str]:
    f = _collect(entries).get(name)
    return sorted(f["values"])[:limit] if f else []
