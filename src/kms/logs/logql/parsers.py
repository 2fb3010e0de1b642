"""The label parsers ``json``, ``logfmt``, ``regexp``, ``pattern``, ``unpack``: line -> labels.

Each returns the extracted labels (a dict) or raises ``ParseFailure`` with Loki's error name
(``JSONParserErr``, ``LogfmtParserErr``, ...) and details. Facts kept from Loki: JSON
numbers keep their text, nested objects flatten with ``_``, arrays are skipped (without
parameters); label names have every character outside ``[a-zA-Z0-9_]`` replaced with ``_``;
logfmt keeps the first value of a repeated key, drops empty values unless ``--keep-empty``
and, unless ``--strict``, skips malformed pairs.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable

from .ast import Parser
from .errors import LogQLError
from .patterns import compile_pattern

__all__ = ["ParseFailure", "make_parser", "sanitize"]

_INVALID_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_]")


class ParseFailure(Exception):
    def __init__(self, error: str, details: str):
        super().__init__(details)
        self.error, self.details = error, details


@functools.lru_cache(maxsize=4096)
def sanitize(name: str) -> str:
    name = _INVALID_NAME_CHARS.sub("_", name)
    return "_" + name if name[:1].isdigit() else name


def _scalar_text(v: object) -> str | None:
    """Text of a JSON scalar decoded with numbers kept as text; None for objects/arrays."""
    if isinstance(v, str):
        return v
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return ""
    return None


def _first_wins(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object whose key repeats keeps the first value, as Loki's parser does."""
    d = dict(pairs)
    if len(d) != len(pairs):
        d = {}
        for k, v in pairs:
            d.setdefault(k, v)
    return d


def _loads(line: str) -> object:
    try:
        return json.loads(line, parse_float=str, parse_int=str, object_pairs_hook=_first_wins)
    except ValueError as e:
        raise ParseFailure("JSONParserErr", str(e)) from None


def _flatten(obj: dict, prefix: str, out: dict[str, str]) -> None:
    for k, v in obj.items():
        name = f"{prefix}_{sanitize(k)}" if prefix else sanitize(k)
        if isinstance(v, dict):
            _flatten(v, name, out)
        elif isinstance(v, list) or v is None:  # (Loki leaves arrays and nulls out)
            continue
        else:
            out.setdefault(name, _scalar_text(v) or "")


_PATH_PART = re.compile(r'\.?([^.\[\]]+)|\[(\d+)\]|\[\s*"((?:[^"\\]|\\.)*)"\s*\]')


def _compile_path(path: str) -> list[str | int]:
    parts: list[str | int] = []
    pos = 0
    while pos < len(path):
        m = _PATH_PART.match(path, pos)
        if not m or m.end() == pos:
            raise LogQLError(f"cannot parse expression [{path}]: unexpected token at {pos}")
        if m.group(1) is not None:
            parts.append(m.group(1))
        elif m.group(2) is not None:
            parts.append(int(m.group(2)))
        else:
            parts.append(m.group(3).replace('\\"', '"'))
        pos = m.end()
    return parts


def _walk(obj: object, path: list[str | int]) -> object:
    for p in path:
        if isinstance(p, int) and isinstance(obj, list) and p < len(obj):
            obj = obj[p]
        elif isinstance(p, str) and isinstance(obj, dict) and p in obj:
            obj = obj[p]
        else:
            return None
    return obj


def _lookup(obj: object, path: list[str | int], line: str) -> str:
    found = _walk(obj, path)
    text = _scalar_text(found)
    if text is not None:
        return text
    # an object or array: its JSON, numbers as numbers (decode again without the text hooks)
    return json.dumps(_walk(json.loads(line, object_pairs_hook=_first_wins), path), separators=(",", ":"),
                      ensure_ascii=False)


def _json_parser(p: Parser) -> Callable[[str], dict[str, str]]:
    if p.params:
        paths = [(name, _compile_path(path)) for name, path in p.params]

        def extract(line: str) -> dict[str, str]:
            obj = _loads(line)
            return {name: _lookup(obj, path, line) for name, path in paths}

        return extract

    def flat(line: str) -> dict[str, str]:
        obj = _loads(line)
        if not isinstance(obj, dict):
            raise ParseFailure("JSONParserErr", "Value looks like object, but can't find closing '}' symbol")
        out: dict[str, str] = {}
        _flatten(obj, "", out)
        return out

    return flat


def _unpack(line: str) -> dict[str, str]:
    """Labels of a JSON object of strings; ``_entry`` holds the original line (returned under
    the key ``__line__``)."""
    try:
        obj = json.loads(line)
    except ValueError as e:
        raise ParseFailure("JSONParserErr", str(e)) from None
    if not isinstance(obj, dict):
        raise ParseFailure("JSONParserErr", "expecting json object")
    return {("__line__" if k == "_entry" else sanitize(k)): v for k, v in obj.items() if isinstance(v, str)}


# key[=value | ="quoted"] followed by whitespace or the end; anything else is one malformed token
_LOGFMT_TOKEN = re.compile(r'([^\s="]+)(?:(=)(?:"((?:[^"\\]|\\.)*)"|([^\s"]*)))?(?=\s|$)|(\S+)')
_LOGFMT_ESC = re.compile(r"\\(.)")


def _unescape(m: re.Match) -> str:
    return {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1))


def logfmt_pairs(line: str, strict: bool) -> list[tuple[str, str]]:
    """(key, value) pairs in line order; ParseFailure on a malformed token when ``strict``
    (otherwise it is skipped)."""
    out = []
    for key, _eq, quoted, plain, bad in _LOGFMT_TOKEN.findall(line):
        if bad:
            if strict:
                raise ParseFailure("LogfmtParserErr", f"logfmt syntax error: unexpected {bad[:20]!r}")
            continue
        if quoted:
            out.append((key, _LOGFMT_ESC.sub(_unescape, quoted) if "\\" in quoted else quoted))
        else:
            out.append((key, plain))
    return out


def _logfmt_parser(p: Parser) -> Callable[[str], dict[str, str]]:
    wanted = {path: name for name, path in p.params}
    strict, keep_empty = p.strict, p.keep_empty

    def parse(line: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, value in logfmt_pairs(line, strict):
            if wanted:
                name = wanted.get(key)
                if name is None:
                    continue
            elif not value and not keep_empty:
                continue
            else:
                name = sanitize(key)
            if name not in out:
                out[name] = value
        return out

    return parse


def _regexp_parser(p: Parser) -> Callable[[str], dict[str, str]]:
    from kms.metrics.promql.model import compile_go_regex

    try:
        rx = compile_go_regex(p.arg)
    except re.error as e:
        if "redefinition of group name" in str(e):
            raise LogQLError(f"duplicate extracted label name in regexp `{p.arg}`") from None
        raise LogQLError(f"error parsing regexp: {e}: `{p.arg}`") from None
    if not rx.groupindex:
        raise LogQLError("at least one named capture must be supplied")

    def parse(line: str) -> dict[str, str]:
        m = rx.search(line)
        if m is None:
            return {}
        return {sanitize(k): v for k, v in m.groupdict().items() if v is not None}

    return parse


def _pattern_parser(p: Parser) -> Callable[[str], dict[str, str]]:
    pat = compile_pattern(p.arg, need_capture=True)

    def parse(line: str) -> dict[str, str]:
        return pat.matches(line) or {}

    return parse


def make_parser(p: Parser) -> Callable[[str], dict[str, str]]:
    """A function line -> labels for the parser stage ``p`` (LogQLError if ``p`` is invalid)."""
    if p.kind == "json":
        return _json_parser(p)
    if p.kind == "logfmt":
        return _logfmt_parser(p)
    if p.kind == "regexp":
        return _regexp_parser(p)
    if p.kind == "pattern":
        return _pattern_parser(p)
    if p.kind == "unpack":
        return _unpack
    raise RuntimeError(f"BUG: unknown parser {p.kind}")
