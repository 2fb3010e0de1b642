"""The LogQL tokenizer, reproducing the facts of Loki's lexer (a Go ``text/scanner`` underneath).

- Whitespace is space/tab/CR/LF; ``#`` starts a comment to the end of the line, and Go's
  ``//`` and ``/* */`` comments are skipped too (the Go scanner's default mode).
- Identifiers are letters, digits and ``_``; strings are Go literals (``"..."`` with escapes,
  or raw backquoted); a number directly followed by duration runes is a duration if
  Prometheus' or Go's duration parser accepts it, else by byte-size runes a byte size.
- ``[...]`` is one RANGE token whose content must be a Prometheus duration.
- Function words (``rate``, ``sum``, ``bytes``, ``ip``, ...) are keywords only when ``(``
  follows (after ``by (...)``/``without (...)`` for aggregations); otherwise they are
  identifiers, so ``| unwrap bytes`` and ``{ip="x"}`` work.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from lark import Token
from lark.lexer import Lexer, LexerState

from kms.traces.traceql.statics import parse_go_duration

from .errors import LogQLParseError

__all__ = ["tokenize", "LogQLLexer", "TOKEN_TEXT", "parse_bytes", "parse_duration", "parse_prom_duration", "unquote"]

#: Keywords and operators; the value is the token type.
TOKENS: dict[str, str] = {
    ",": "COMMA", ".": "DOT", "{": "OPEN_BRACE", "}": "CLOSE_BRACE", "=": "EQ", "!=": "NEQ", "=~": "RE",
    "!~": "NRE", "|=": "PIPE_EXACT", "|~": "PIPE_MATCH", "|>": "PIPE_PATTERN", "!>": "NPA", "|": "PIPE",
    "(": "OPEN_PARENS", ")": "CLOSE_PARENS", "by": "BY", "without": "WITHOUT", "bool": "BOOL",
    "offset": "OFFSET", "on": "ON", "ignoring": "IGNORING", "group_left": "GROUP_LEFT",
    "group_right": "GROUP_RIGHT", "or": "OR", "and": "AND", "unless": "UNLESS", "+": "ADD", "-": "SUB",
    "*": "MUL", "/": "DIV", "%": "MOD", "^": "POW", "==": "CMP_EQ", "<": "LT", "<=": "LTE", ">": "GT",
    ">=": "GTE", "json": "JSON", "logfmt": "LOGFMT", "regexp": "REGEXP", "unpack": "UNPACK",
    "pattern": "PATTERN", "line_format": "LINE_FMT", "label_format": "LABEL_FMT", "decolorize": "DECOLORIZE",
    "drop": "DROP", "keep": "KEEP", "unwrap": "UNWRAP", "--strict": "PARSER_FLAG", "--keep-empty": "PARSER_FLAG",
}
#: Words that are keywords only when used as functions.
FUNCTION_TOKENS: dict[str, str] = {
    "rate": "RANGE_OP", "rate_counter": "RANGE_OP", "count_over_time": "RANGE_OP", "bytes_rate": "RANGE_OP",
    "bytes_over_time": "RANGE_OP", "absent_over_time": "RANGE_OP", "avg_over_time": "RANGE_OP",
    "sum_over_time": "RANGE_OP", "min_over_time": "RANGE_OP", "max_over_time": "RANGE_OP",
    "stddev_over_time": "RANGE_OP", "stdvar_over_time": "RANGE_OP", "quantile_over_time": "RANGE_OP",
    "first_over_time": "RANGE_OP", "last_over_time": "RANGE_OP",
    "sum": "VECTOR_OP", "avg": "VECTOR_OP", "max": "VECTOR_OP", "min": "VECTOR_OP", "count": "VECTOR_OP",
    "stddev": "VECTOR_OP", "stdvar": "VECTOR_OP", "topk": "VECTOR_OP", "bottomk": "VECTOR_OP",
    "sort": "VECTOR_OP", "sort_desc": "VECTOR_OP", "approx_topk": "VECTOR_OP",
    "vector": "VECTOR", "label_replace": "LABEL_REPLACE", "ip": "IP",
    "bytes": "CONV", "duration": "CONV", "duration_seconds": "CONV", "variants": "VARIANTS", "of": "OF",
}
#: Token type -> how error messages show it.
TOKEN_TEXT = {v: k for k, v in TOKENS.items()} | {
    "$END": "$end", "RANGE_OP": "range function", "VECTOR_OP": "aggregation", "VECTOR": "vector",
    "LABEL_REPLACE": "label_replace", "IP": "ip", "CONV": "conversion", "PARSER_FLAG": "parser flag",
}
_OPERATOR_CHARS = set(",.{}=!~|()+-*/%^<>")
_DURATION_RUNES = set("nsuµmhdwy")
_BYTES_RUNES = set("BikKMGTP")
_PROM_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_PROM_UNITS = (365 * 86400 * 10**9, 7 * 86400 * 10**9, 86400 * 10**9, 3600 * 10**9, 60 * 10**9, 10**9, 10**6)
_BYTES = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)$")
_BYTE_UNITS = {
    "": 1, "b": 1, "k": 10**3, "kb": 10**3, "ki": 2**10, "kib": 2**10, "m": 10**6, "mb": 10**6, "mi": 2**20,
    "mib": 2**20, "g": 10**9, "gb": 10**9, "gi": 2**30, "gib": 2**30, "t": 10**12, "tb": 10**12, "ti": 2**40,
    "tib": 2**40, "p": 10**15, "pb": 10**15, "pi": 2**50, "pib": 2**50, "e": 10**18, "eb": 10**18,
    "ei": 2**60, "eib": 2**60,
}
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"',
            "'": "'"}
_IDENT = re.compile(r"[^\W\d]\w*")  # Go identifiers: Unicode letters, digits and _
_FLAG = re.compile(r"--[A-Za-z-]*")
_DIGITS = "0123456789"
_HEX_FLOAT = re.compile(r"0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][-+]?[0-9]+")
_NUMBER = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def parse_prom_duration(text: str) -> int | None:
    """Nanoseconds of a Prometheus duration (``5m``, ``1h30m``, ``1w``), None when invalid."""
    m = _PROM_DURATION.match(text)
    if not m or not text:
        return None
    return sum(int(g) * u for g, u in zip(m.groups(), _PROM_UNITS, strict=True) if g)


def parse_duration(text: str) -> int | None:
    """Loki's label-filter durations: Prometheus units first, then Go's ``time.ParseDuration``."""
    ns = parse_prom_duration(text)
    return ns if ns is not None else parse_go_duration(text)


def parse_bytes(text: str) -> float | None:
    """A byte size as go-humanize's ParseBytes reads it (``2.5KiB``, ``1GB``, ``42``), or None."""
    m = _BYTES.match(text.strip())
    if not m:
        return None
    unit = _BYTE_UNITS.get(m.group(2).lower())
    return None if unit is None else float(m.group(1)) * unit


def unquote(text: str) -> str:
    """The value of a Go string literal (``"..."`` or backquoted); ValueError when malformed."""
    if text.startswith("`"):
        return text[1:-1]
    out: list[str] = []
    i, s = 1, text[:-1]
    while i < len(s):
        c = s[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = s[i + 1] if i + 1 < len(s) else ""
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            i += 2
        elif e in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[e]
            digits = s[i + 2 : i + 2 + width]
            if len(digits) != width or not all(ch in "0123456789abcdefABCDEF" for ch in digits):
                raise ValueError("invalid syntax")
            out.append(chr(int(digits, 16)) if e != "x" else bytes([int(digits, 16)]).decode("latin-1"))
            i += 2 + width
        elif e in "01234567":
            digits = s[i + 1 : i + 4]
            if len(digits) != 3 or not all(ch in "01234567" for ch in digits):
                raise ValueError("invalid syntax")
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            raise ValueError("invalid syntax")
    return "".join(out)


class _Scanner:
    def __init__(self, text: str):
        self.s = text
        self.n = len(text)
        self.pos = 0
        self._newlines = [i for i, ch in enumerate(text) if ch == "\n"]

    def linecol(self, pos: int) -> tuple[int, int]:
        line = 1 + sum(1 for nl in self._newlines if nl < pos)
        start = self._newlines[line - 2] + 1 if line > 1 else 0
        return line, pos - start + 1

    def error(self, pos: int, msg: str) -> LogQLParseError:
        line, col = self.linecol(pos)
        return LogQLParseError(msg, line, col)

    def token(self, type_: str, value: object, pos: int) -> Token:
        line, col = self.linecol(pos)
        return Token(type_, value, start_pos=pos, line=line, column=col, end_pos=self.pos)

    def skip_space(self, pos: int) -> int:
        """Position of the next token start after whitespace and comments."""
        s = self.s
        while pos < self.n:
            c = s[pos]
            if c in " \t\r\n":
                pos += 1
            elif c == "#" or s.startswith("//", pos):
                nl = s.find("\n", pos)
                pos = self.n if nl < 0 else nl + 1
            elif s.startswith("/*", pos):
                end = s.find("*/", pos + 2)
                if end < 0:
                    raise self.error(pos, "comment not terminated")
                pos = end + 2
            else:
                break
        return pos

    def is_function(self, pos: int) -> bool:
        """Whether ``(`` follows, or ``by``/``without`` and then ``(`` (Loki's isFunction)."""
        pos = self.skip_space(pos)
        if self.s.startswith("(", pos):
            return True
        m = re.compile(r"(?i)(by|without)\b").match(self.s, pos)
        if m:
            return self.s.startswith("(", self.skip_space(m.end()))
        return False

    def __iter__(self) -> Iterator[Token]:
        s = self.s
        while True:
            self.pos = start = self.skip_space(self.pos)
            if start >= self.n:
                return
            c = s[start]
            if c in _DIGITS or (c == "." and start + 1 < self.n and s[start + 1] in _DIGITS):
                yield self._number(start)
            elif c in "\"`":
                yield self._string(start)
            elif c == "[":
                yield self._range(start)
            elif c.isalpha() or c == "_":
                yield self._word(start)
            elif s.startswith("--", start) and (m := _FLAG.match(s, start)) and m.group(0) in TOKENS:
                self.pos = m.end()
                yield self.token("PARSER_FLAG", m.group(0), start)
            elif c == "-" and (tok := self._negative_duration(start)) is not None:
                yield tok
            elif c in _OPERATOR_CHARS:
                two = s[start : start + 2]
                op = two if two in TOKENS else c
                if op not in TOKENS:
                    raise self.error(start, f"syntax error: unexpected character {c!r}")
                self.pos = start + len(op)
                yield self.token(TOKENS[op], op, start)
            else:
                raise self.error(start, f"syntax error: unexpected character {c!r}")

    def _number(self, start: int) -> Token:
        s = self.s
        if re.compile(r"0[xXoObB]").match(s, start):
            hex_float = _HEX_FLOAT.match(s, start)  # Go's ParseFloat reads hex floats (with a p exponent)
            if hex_float:
                self.pos = hex_float.end()
                return self.token("NUMBER", hex_float.group(), start)
            m = re.compile(r"0[xXoObB][0-9a-fA-F_.]*").match(s, start)
            self.pos = m.end()  # type: ignore[union-attr]
            text = s[start:self.pos]
            raise self.error(start, f'unable to parse literal as a float: strconv.ParseFloat: parsing "{text}": '
                                    "invalid syntax")
        m = _NUMBER.match(s, start)
        end = m.end()  # type: ignore[union-attr]
        number = s[start:end]
        if number[0] == "0" and number.isdigit() and any(d in number for d in "89"):
            raise self.error(start, f"invalid digit in octal literal {number}")  # Go's scanner
        # Loki tries a duration first, then a byte size, over the runes glued to the number.
        j = end
        while j < self.n and (s[j] in _DIGITS or s[j] in _DURATION_RUNES or s[j] == "."):
            j += 1
        if j > end:
            ns = parse_duration(s[start:j])
            if ns is not None:
                self.pos = j
                return self.token("DURATION", s[start:j], start)  # the text; parse_duration gives ns
        j = end
        while j < self.n and (s[j] in _DIGITS or s[j] in _BYTES_RUNES or s[j] == "."):
            j += 1
        if j > end:
            b = parse_bytes(s[start:j])
            if b is not None:
                self.pos = j
                return self.token("BYTES", s[start:j], start)  # the text; parse_bytes gives bytes
        self.pos = end
        return self.token("NUMBER", number, start)

    def _negative_duration(self, start: int) -> Token | None:
        """Loki reads ``-`` glued to a duration (``offset -5m``) as a negative duration."""
        s, j = self.s, start + 1
        while j < self.n and (s[j] in _DIGITS or s[j] in _DURATION_RUNES or s[j] == "."):
            j += 1
        if j == start + 1 or parse_duration(s[start + 1 : j]) is None:
            return None
        self.pos = j
        return self.token("DURATION", s[start:j], start)

    def _string(self, start: int) -> Token:
        s, q = self.s, self.s[start]
        i = start + 1
        while i < self.n:
            c = s[i]
            if c == q:
                break
            if c == "\\" and q == '"':
                i += 2
                continue
            if c == "\n" and q == '"':
                raise self.error(start, "literal not terminated")
            i += 1
        else:
            raise self.error(start, "literal not terminated")
        self.pos = i + 1
        try:
            value = unquote(s[start : self.pos])
        except ValueError as e:
            raise self.error(start, str(e)) from None
        return self.token("STRING", value, start)

    def _range(self, start: int) -> Token:
        end = self.s.find("]", start)
        if end < 0:
            raise self.error(start, "missing closing ']' in duration")
        text = self.s[start + 1 : end]
        ns = parse_prom_duration(text)
        if ns is None:
            raise self.error(start, f'not a valid duration string: "{text}"')
        self.pos = end + 1
        return self.token("RANGE", ns, start)

    def _word(self, start: int) -> Token:
        m = _IDENT.match(self.s, start)
        word = m.group(0)  # type: ignore[union-attr]
        self.pos = m.end()  # type: ignore[union-attr]
        lower = word.lower()  # keywords are case-insensitive; identifiers keep their case
        if lower in FUNCTION_TOKENS:
            if self.is_function(self.pos):
                return self.token(FUNCTION_TOKENS[lower], lower, start)
            return self.token("IDENTIFIER", word, start)
        if lower in TOKENS:
            return self.token(TOKENS[lower], lower, start)
        return self.token("IDENTIFIER", word, start)


def tokenize(text: str) -> Iterator[Token]:
    """Tokens of a LogQL query, lazily (lexer errors surface where they occur)."""
    return iter(_Scanner(text))


class LogQLLexer(Lexer):
    """Adapter so lark's LALR parser pulls tokens from ``tokenize``."""

    def __init__(self, lexer_conf: object):
        pass

    def lex(self, lexer_state: LexerState, parser_state: object = None) -> Iterator[Token]:
        text: object = lexer_state
        while not isinstance(text, str):  # a str, or a LexerState holding a TextSlice
            text = text.text  # type: ignore[attr-defined]
        yield from tokenize(text)
