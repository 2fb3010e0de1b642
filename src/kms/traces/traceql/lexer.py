"""The TraceQL tokenizer: Tempo's lexer (a Go ``text/scanner`` plus an attribute mode).

Facts it reproduces: whitespace is space/tab/CR/LF and Go comments are skipped; identifiers
are letters, digits and ``_``; numbers are Go literals and a number directly followed by
duration runes is a duration if Prometheus' or Go's duration parser accepts it; strings are
Go string literals (``"..."`` with escapes, or raw backquoted). Multi-character operators
are found by growing the token while the longer text is still a known token (``!>>``,
``&<<``, ``span.``). After ``.``, ``span.``, ``resource.`` ... the lexer reads an attribute
name: every rune up to whitespace or one of ``{}()=~!<>&|^,``, with ``"..."`` parts
(escapes ``\\"`` and ``\\\\`` only), then emits END_ATTRIBUTE.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from lark import Token
from lark.lexer import Lexer, LexerState

from .errors import TraceQLParseError
from .statics import INT_MAX, parse_go_duration

__all__ = ["tokenize", "TraceQLLexer", "TOKEN_TEXT"]

#: Token text -> token type (Tempo's tokenMap).
TOKENS: dict[str, str] = {
    ",": "COMMA", ".": "DOT", "{": "OPEN_BRACE", "}": "CLOSE_BRACE", "(": "OPEN_PARENS", ")": "CLOSE_PARENS",
    "=": "EQ", "!=": "NEQ", "=~": "RE", "!~": "NRE", ">": "GT", ">=": "GTE", "<": "LT", "<=": "LTE",
    "+": "ADD", "-": "SUB", "/": "DIV", "%": "MOD", "*": "MUL", "^": "POW",
    "true": "TRUE", "false": "FALSE", "nil": "NIL", "ok": "STATUS_OK", "error": "STATUS_ERROR",
    "unset": "STATUS_UNSET", "unspecified": "KIND_UNSPECIFIED", "internal": "KIND_INTERNAL",
    "server": "KIND_SERVER", "client": "KIND_CLIENT", "producer": "KIND_PRODUCER", "consumer": "KIND_CONSUMER",
    "&&": "AND", "||": "OR", "!": "NOT", "|": "PIPE", ">>": "DESC", "<<": "ANCE", "~": "SIBL",
    "!>": "NOT_CHILD", "!<": "NOT_PARENT", "!>>": "NOT_DESC", "!<<": "NOT_ANCE", "&~": "UNION_SIBL",
    "&>": "UNION_CHILD", "&<": "UNION_PARENT", "&>>": "UNION_DESC", "&<<": "UNION_ANCE",
    "duration": "IDURATION", "childCount": "CHILDCOUNT", "name": "NAME", "status": "STATUS",
    "statusMessage": "STATUS_MESSAGE", "kind": "KIND", "rootName": "ROOTNAME", "rootServiceName": "ROOTSERVICENAME",
    "rootService": "ROOTSERVICE", "traceDuration": "TRACEDURATION", "nestedSetLeft": "NESTEDSETLEFT",
    "nestedSetRight": "NESTEDSETRIGHT", "nestedSetParent": "NESTEDSETPARENT", "id": "ID", "traceID": "TRACE_ID",
    "spanID": "SPAN_ID", "parentID": "PARENT_ID", "timeSinceStart": "TIMESINCESTART", "version": "VERSION",
    "parent": "PARENT", "parent.": "PARENT_DOT", "resource.": "RESOURCE_DOT", "span.": "SPAN_DOT",
    "trace:": "TRACE_COLON", "span:": "SPAN_COLON", "event:": "EVENT_COLON", "link:": "LINK_COLON",
    "instrumentation:": "INSTRUMENTATION_COLON", "event.": "EVENT_DOT", "link.": "LINK_DOT",
    "instrumentation.": "INSTRUMENTATION_DOT", "count": "COUNT", "avg": "AVG", "max": "MAX", "min": "MIN",
    "sum": "SUM", "by": "BY", "coalesce": "COALESCE", "select": "SELECT", "rate": "RATE",
    "count_over_time": "COUNT_OVER_TIME", "min_over_time": "MIN_OVER_TIME", "max_over_time": "MAX_OVER_TIME",
    "avg_over_time": "AVG_OVER_TIME", "sum_over_time": "SUM_OVER_TIME", "quantile_over_time": "QUANTILE_OVER_TIME",
    "histogram_over_time": "HISTOGRAM_OVER_TIME", "compare": "COMPARE", "topk": "TOPK", "bottomk": "BOTTOMK",
    "with": "WITH",
}
#: Token type -> how error messages show it.
TOKEN_TEXT = {v: k for k, v in TOKENS.items()} | {"$END": "$end", "END_ATTRIBUTE": "END_ATTRIBUTE"}

_SCOPES = {"PARENT_DOT", "SPAN_DOT", "RESOURCE_DOT", "SPAN_COLON", "TRACE_COLON", "EVENT_COLON", "LINK_COLON",
           "INSTRUMENTATION_COLON", "EVENT_DOT", "LINK_DOT", "INSTRUMENTATION_DOT"}
_STARTS_ATTRIBUTE = {"DOT", "RESOURCE_DOT", "SPAN_DOT", "PARENT_DOT", "EVENT_DOT", "LINK_DOT", "INSTRUMENTATION_DOT"}
_NOT_ATTRIBUTE = set("{}()=~!<>&|^,")
_GO_WHITESPACE = " \t\n\r"
_DURATION_RUNES = set("nsumhµdwy")
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"'}
_EOF = ""


def is_attribute_rune(ch: str) -> bool:
    return ch != _EOF and not ch.isspace() and ch not in _NOT_ATTRIBUTE


class _Scanner:
    """Go-scanner-like reading of one query; yields lark Tokens lazily (errors surface in order)."""

    def __init__(self, text: str):
        self.s = text
        self.pos = 0
        self._lines = [i for i, ch in enumerate(text) if ch == "\n"]
        self.parsing_attribute = False
        self.scope = ""

    # -- positions and errors
    def linecol(self, pos: int) -> tuple[int, int]:
        line = bisect.bisect_left(self._lines, pos)
        start = self._lines[line - 1] + 1 if line else 0
        return line + 1, pos - start + 1

    def error(self, msg: str, pos: int) -> TraceQLParseError:
        line, col = self.linecol(pos)
        return TraceQLParseError(msg, line, col)

    def peek(self, k: int = 0) -> str:
        i = self.pos + k
        return self.s[i] if i < len(self.s) else _EOF

    def token(self, typ: str, value: object, start: int) -> Token:
        line, col = self.linecol(start)
        return Token(typ, value, start_pos=start, line=line, column=col, end_pos=self.pos)

    # -- the token stream
    def tokens(self) -> Iterator[Token]:
        while True:
            tok = self.next_token()
            if tok is None:
                return
            yield tok

    def next_token(self) -> Token | None:
        if self.parsing_attribute:
            if not is_attribute_rune(self.peek()):
                self.parsing_attribute = False
                return self.token("END_ATTRIBUTE", "", self.pos)
            start = self.pos
            scope = self._try_scope()
            if scope:
                self.scope = scope
                return self.token(scope, TOKEN_TEXT[scope], start)
            return self.token("IDENTIFIER", self._attribute_name(), start)

        self._skip_space()
        start = self.pos
        ch = self.peek()
        if ch == _EOF:
            return None
        if ch == "_" or ch.isalpha():
            while self.peek() == "_" or self.peek().isalpha() or self.peek().isdecimal():
                self.pos += 1
        elif ch.isdecimal() or (ch == "." and self.peek(1).isdecimal()):
            return self._number(start)
        elif ch == '"':
            return self.token("STRING", self._string(start), start)
        elif ch == "`":
            end = self.s.find("`", start + 1)
            if end < 0:
                raise self.error("literal not terminated", start)
            self.pos = end + 1
            return self.token("STRING", self.s[start + 1:end].replace("\r", ""), start)
        else:
            self.pos += 1
        text = self.s[start:self.pos]

        # grow the token while a longer text is still a known token (">" ">>", "span" "span.")
        multi = None
        while True:
            nxt = self.peek()
            if nxt and (text + nxt) in TOKENS:
                text += nxt
                multi = TOKENS[text]
                self.pos += 1
                continue
            break
        if multi in _SCOPES:
            self.scope = multi
        typ = multi or TOKENS.get(text)
        if typ is not None:
            self.parsing_attribute = typ in _STARTS_ATTRIBUTE
            return self.token(typ, text, start)
        return self.token("IDENTIFIER", text, start)

    def _skip_space(self) -> None:
        s = self.s
        while self.pos < len(s):
            ch = s[self.pos]
            if ch in _GO_WHITESPACE:
                self.pos += 1
            elif ch == "/" and self.peek(1) == "/":
                end = s.find("\n", self.pos)
                self.pos = len(s) if end < 0 else end
            elif ch == "/" and self.peek(1) == "*":
                end = s.find("*/", self.pos + 2)
                if end < 0:
                    raise self.error("comment not terminated", self.pos)
                self.pos = end + 2
            else:
                return

    # -- attributes
    def _try_scope(self) -> str | None:
        """``parent.span.x`` / ``parent.resource.x``: the scope after ``parent.`` is its own token."""
        if self.scope != "PARENT_DOT":
            return None
        i, text = self.pos, ""
        while i < len(self.s) and len(text) <= 9:
            ch = self.s[i]
            if ch == ".":
                text += ch
                break
            if not is_attribute_rune(ch):
                break
            text += ch
            i += 1
        typ = TOKENS.get(text)
        if typ in ("SPAN_DOT", "RESOURCE_DOT"):
            self.pos += len(text)
            return typ
        return None

    def _attribute_name(self) -> str:
        out = []
        while True:
            ch = self.peek()
            if ch == '"':
                start = self.pos
                self.pos += 1
                while True:
                    ch = self.peek()
                    if ch == _EOF:
                        raise self.error('unexpected EOF, expecting "', start)
                    self.pos += 1
                    if ch == '"':
                        break
                    if ch == "\\":
                        esc = self.peek()
                        if esc not in ('"', "\\") or esc == _EOF:
                            raise self.error("invalid escape sequence", self.pos)
                        self.pos += 1
                        out.append(esc)
                    else:
                        out.append(ch)
            elif is_attribute_rune(ch):
                out.append(ch)
                self.pos += 1
            else:
                return "".join(out)

    # -- literals
    def _string(self, start: int) -> str:
        out, i, s = [], start + 1, self.s
        while True:
            if i >= len(s) or s[i] == "\n":
                raise self.error("literal not terminated", start)
            ch = s[i]
            if ch == '"':
                self.pos = i + 1
                return "".join(out)
            if ch != "\\":
                out.append(ch)
                i += 1
                continue
            esc = s[i + 1] if i + 1 < len(s) else _EOF
            if esc in _ESCAPES:
                out.append(_ESCAPES[esc])
                i += 2
                continue
            digits = {"x": 2, "u": 4, "U": 8}.get(esc)
            if digits is not None:
                hexs = s[i + 2:i + 2 + digits]
                if len(hexs) != digits or any(c not in "0123456789abcdefABCDEF" for c in hexs):
                    raise self.error("invalid char escape", i)
                code = int(hexs, 16)
                if esc != "x" and (code > 0x10FFFF or 0xD800 <= code < 0xE000):
                    raise self.error("invalid syntax", start)
                out.append(chr(code))
                i += 2 + digits
                continue
            octs = s[i + 1:i + 4]
            if len(octs) == 3 and all(c in "01234567" for c in octs) and int(octs, 8) < 256:
                out.append(chr(int(octs, 8)))
                i += 4
                continue
            raise self.error("invalid char escape", i)

    def _number(self, start: int) -> Token:
        s, i = self.s, start
        is_float = False
        if s[i] == "0" and i + 1 < len(s) and s[i + 1] in "xXoObB":
            i += 2
            while i < len(s) and (s[i] in "0123456789abcdefABCDEF_" or s[i] == "."):
                if s[i] == ".":
                    is_float = True
                i += 1
            if i < len(s) and s[i] in "pP":
                is_float = True
                i += 1
                if i < len(s) and s[i] in "+-":
                    i += 1
                while i < len(s) and (s[i].isdecimal() or s[i] == "_"):
                    i += 1
        else:
            while i < len(s) and (s[i].isdecimal() or s[i] == "_"):
                i += 1
            if i < len(s) and s[i] == ".":
                is_float = True
                i += 1
                while i < len(s) and (s[i].isdecimal() or s[i] == "_"):
                    i += 1
            if i < len(s) and s[i] in "eE":
                is_float = True
                i += 1
                if i < len(s) and s[i] in "+-":
                    i += 1
                if not (i < len(s) and s[i].isdecimal()):
                    self.pos = i
                    raise self.error("exponent has no digits", start)
                while i < len(s) and (s[i].isdecimal() or s[i] == "_"):
                    i += 1
        text = s[start:i]
        self.pos = i

        # a number directly followed by duration runes is a duration when it parses as one
        j = i
        while j < len(s) and not s[j].isspace() and (s[j].isnumeric() or s[j] in _DURATION_RUNES or s[j] == "."):
            j += 1
        if j > i:
            ns = parse_go_duration(text + s[i:j])
            if ns is not None:
                self.pos = j
                return self.token("DURATION", ns, start)

        if is_float:
            try:
                if text[:2].lower() == "0x":
                    val = float.fromhex(text.replace("_", ""))
                elif "_" in text:
                    raise ValueError
                else:
                    val = float(text)
            except ValueError as e:
                raise self.error(f'strconv.ParseFloat: parsing "{text}": invalid syntax', start) from e
            if val in (float("inf"), float("-inf")):
                raise self.error(f'strconv.ParseFloat: parsing "{text}": value out of range', start)
            return self.token("FLOAT", val, start)
        if not text.isdecimal() or not text.isascii():
            raise self.error(f'strconv.Atoi: parsing "{text}": invalid syntax', start)
        if len(text) > 1 and text[0] == "0" and any(c in "89" for c in text):
            raise self.error(f"invalid digit {text.strip('01234567')[0]!r} in octal literal", start)
        val = int(text)
        if val > INT_MAX:
            raise self.error(f'strconv.Atoi: parsing "{text}": value out of range', start)
        return self.token("INTEGER", val, start)


def tokenize(text: str) -> Iterator[Token]:
    """The tokens of a query (a generator: a lexer error is raised where it occurs)."""
    return _Scanner(text).tokens()


class TraceQLLexer(Lexer):
    """Adapter so lark's LALR parser pulls tokens from ``tokenize``."""

    def __init__(self, lexer_conf: object):
        pass

    def lex(self, lexer_state: LexerState, parser_state: object = None) -> Iterator[Token]:
        text: object = lexer_state
        while not isinstance(text, str):  # a str, or a LexerState holding a TextSlice
            text = text.text  # type: ignore[attr-defined]
        yield from tokenize(text)
