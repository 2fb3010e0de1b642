"""Duration expressions (``x[5m+1m]``, ``[step()]``, ``offset (2*2)``, ``min_of``/``max_of``).

promql_parser 0.12 does not parse them, so a query that fails to parse is rewritten: each
bracket content and each ``offset`` operand is evaluated here and replaced by a literal in ms.
Durations are seconds internally; ``step()`` and ``range()`` are the query's step and
``end - start`` (both 0 for an instant query).
"""

from __future__ import annotations

import math
import re

__all__ = ["rewrite_durations"]

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?:(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)?)|(?P<id>[a-zA-Z_]\w*)|(?P<op>[-+*/%^(),]))"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"bad duration expression {text!r}")
        kind = m.lastgroup or "op"
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _num(tok: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)", tok)
    if m:
        return float(tok)
    total = 0.0
    for n, u in re.findall(r"(\d+)(ms|[smhdwy])", tok):
        total += int(n) * _UNITS[u]
    return total


class _Parser:
    def __init__(self, toks, step_s: float, range_s: float):
        self.toks, self.i, self.step_s, self.range_s = toks, 0, step_s, range_s

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else ("end", "")

    def take(self, want: str | None = None):
        tok = self.peek()
        if want is not None and tok[1] != want:
            raise ValueError(f"expected {want!r}, got {tok[1]!r}")
        self.i += 1
        return tok

    def expr(self) -> float:  # + -
        v = self.term()
        while self.peek()[1] in ("+", "-"):
            op = self.take()[1]
            r = self.term()
            v = v + r if op == "+" else v - r
        return v

    def term(self) -> float:  # * / %
        v = self.unary()
        while self.peek()[1] in ("*", "/", "%"):
            op = self.take()[1]
            r = self.unary()
            v = v * r if op == "*" else (v / r if op == "/" else math.fmod(v, r))
        return v

    def unary(self) -> float:  # unary binds looser than ^
        if self.peek()[1] in ("+", "-"):
            op = self.take()[1]
            v = self.unary()
            return -v if op == "-" else v
        return self.power()

    def power(self) -> float:
        base = self.atom()
        if self.peek()[1] == "^":
            self.take()
            return base ** self.unary()
        return base

    def atom(self) -> float:
        kind, tok = self.take()
        if kind == "num":
            return _num(tok)
        if tok == "(":
            v = self.expr()
            self.take(")")
            return v
        if kind == "id":
            name = tok.lower()
            self.take("(")
            args = []
            while self.peek()[1] != ")":
                args.append(self.expr())
                if self.peek()[1] == ",":
                    self.take()
            self.take(")")
            if name == "step" and not args:
                return self.step_s
            if name == "range" and not args:
                return self.range_s
            if name in ("min_of", "max_of") and args:
                return min(args) if name == "min_of" else max(args)
        raise ValueError(f"unexpected {tok!r} in duration expression")


def _eval(text: str, step_s: float, range_s: float) -> float:
    p = _Parser(_tokens(text), step_s, range_s)
    v = p.expr()
    if p.i != len(p.toks):
        raise ValueError(f"trailing input in duration expression {text!r}")
    return v


def _lit(seconds: float) -> str:
    ms = round(seconds * 1000)
    if ms == 0:
        return "0"
    return f"-{-ms}ms" if ms < 0 else f"{ms}ms"


def _skip_string(q: str, i: int) -> int:
    quote = q[i]
    i += 1
    while i < len(q) and q[i] != quote:
        i += 2 if q[i] == "\\" and quote != "`" else 1
    return i + 1


def _match_paren(q: str, i: int) -> int:
    depth = 0
    while i < len(q):
        if q[i] == "(":
            depth += 1
        elif q[i] == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError("unbalanced parentheses")


def _offset_operand_end(q: str, i: int) -> int:
    while i < len(q) and q[i] in " \t+-":
        i += 1
    if i < len(q) and q[i] == "(":
        return _match_paren(q, i)
    m = re.compile(r"[a-zA-Z_]\w*\s*\(").match(q, i)
    if m:
        return _match_paren(q, m.end() - 1)
    m = re.compile(r"[0-9.]+[a-zA-Z0-9.]*").match(q, i)
    if m:
        return m.end()
    raise ValueError("bad offset")


def rewrite_durations(q: str, step_ms: int, range_ms: int) -> str:
    step_s, range_s = step_ms / 1000.0, range_ms / 1000.0
    out: list[str] = []
    i = 0
    while i < len(q):
        c = q[i]
        if c in "\"'`":
            j = _skip_string(q, i)
            out.append(q[i:j])
            i = j
        elif c == "[":
            j = q.index("]", i)
            parts = q[i + 1 : j].split(":")
            done = [(_lit(_eval(p, step_s, range_s)) if p.strip() else "") for p in parts]
            out.append("[" + ":".join(done) + "]")
            i = j + 1
        elif (
            q[i : i + 6].lower() == "offset"
            and (i == 0 or not (q[i - 1].isalnum() or q[i - 1] == "_"))
            and (i + 6 < len(q) and not (q[i + 6].isalnum() or q[i + 6] == "_"))
        ):
            j = _offset_operand_end(q, i + 6)
            out.append("offset " + _lit(_eval(q[i + 6 : j], step_s, range_s)))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)
