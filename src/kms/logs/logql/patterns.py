"""Loki's ``pattern`` expressions (``<ip> - <_> "<method> <uri>"``): parsing, the line test of
``|>``/``!>`` and the captures of ``| pattern``.

A pattern is literals and captures; ``<_>`` captures nothing. Facts kept from Loki: a line
filter pattern matches when the literals occur in order, the first one at the start of the
line (when the pattern starts with one), each capture non-empty, and the line ends right
after a final literal (a final capture takes a non-empty rest). The parser takes the first
occurrence of each literal; a literal that is missing ends the captures with the rest of the
line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import LogQLError

__all__ = ["Pattern", "compile_pattern", "re2_escape"]

_CAPTURE = re.compile(r"<(_|[a-zA-Z_][a-zA-Z0-9_]*)>")
_RE2_SPECIAL = set("\\.+*?()|[]{}^$")


def re2_escape(s: str) -> str:
    """``s`` as an RE2 literal (only the metacharacters escaped)."""
    return "".join("\\" + c if c in _RE2_SPECIAL else c for c in s)


@dataclass(frozen=True)
class Pattern:
    parts: tuple[tuple[str, str], ...]  # ("lit", text) or ("cap", name); name "_" is unnamed

    @property
    def names(self) -> list[str]:
        return [v for k, v in self.parts if k == "cap" and v != "_"]

    def regex(self) -> str:
        """An RE2 regex (for Arrow) that matches exactly the lines ``test`` accepts, up to
        Loki's choice of the first literal occurrence."""
        out = ["^"]
        for kind, v in self.parts:
            out.append(re2_escape(v) if kind == "lit" else "(?s:.+?)")
        if self.parts and self.parts[-1][0] == "cap":
            out[-1] = "(?s:.+)"
        out.append("$")
        return "".join(out)

    def matches(self, line: str) -> dict[str, str] | None:
        """The named captures of ``line``, Loki's way; None when it does not match at all."""
        parts = list(self.parts)
        if not parts or not line:
            return None
        rest = line
        out: dict[str, str] = {}
        if parts[0][0] == "lit":
            if not rest.startswith(parts[0][1]):
                return None
            rest = rest[len(parts[0][1]) :]
            parts = parts[1:]
        while parts:
            name = parts[0][1]
            if len(parts) == 1:
                if name != "_":
                    out[name] = rest
                return out
            lit = parts[1][1]
            parts = parts[2:]
            i = rest.find(lit)
            if i < 0:
                if name != "_":
                    out[name] = rest
                return out
            if name != "_":
                out[name] = rest[:i]
            rest = rest[i + len(lit) :]
        return out


def compile_pattern(text: str, *, need_capture: bool) -> Pattern:
    parts: list[tuple[str, str]] = []
    pos = 0
    for m in _CAPTURE.finditer(text):
        if m.start() > pos:
            parts.append(("lit", text[pos : m.start()]))
        elif parts and parts[-1][0] == "cap":
            raise LogQLError(f"invalid pattern: consecutive capture: {text}")
        parts.append(("cap", m.group(1)))
        pos = m.end()
    if pos < len(text):
        parts.append(("lit", text[pos:]))
    p = Pattern(tuple(parts))
    names = p.names
    if need_capture and not names:
        raise LogQLError(f"invalid pattern: at least one capture is required: {text}")
    if len(set(names)) != len(names):
        raise LogQLError(f"invalid pattern: duplicate capture: {text}")
    return p
