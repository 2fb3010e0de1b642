"""The part of OTTL (the collector's transformation language) that filter conditions use:

    <path> <op> <value>     paths: name, body, kind, severity_number, severity_text, status.code,
                            attributes["k"], resource.attributes["k"]; ops == != < <= > >=;
                            values: "strings", numbers, true/false, nil, SPAN_KIND_* and
                            SEVERITY_NUMBER_* / STATUS_CODE_* enum names
    IsMatch(<path>, "regex")
    not <cond>, <cond> and <cond>, <cond> or <cond>, ( <cond> )

A condition is compiled once into a function of a context (a mapping from path to value).
Anything else is refused at load, naming the condition.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from kms.errors import BadInput

__all__ = ["compile_condition", "ENUMS"]

_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>==|!=|<=|>=|<|>)|'
                    r'(?P<punct>[(),\[\]])|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))')
ENUMS = {
    **{f"SPAN_KIND_{k}": i for i, k in enumerate(["UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER",
                                                  "CONSUMER"])},
    **{f"STATUS_CODE_{k}": i for i, k in enumerate(["UNSET", "OK", "ERROR"])},
    **{f"SEVERITY_NUMBER_{k}": v for k, v in {"UNSPECIFIED": 0, "TRACE": 1, "DEBUG": 5, "INFO": 9, "WARN": 13,
                                               "ERROR": 17, "FATAL": 21}.items()},
}
_OPS: dict[str, Callable] = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
                             "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
Context = Callable[[str], object]  # path -> value (None when absent)


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text.rstrip()):
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise self.error(f"unexpected {text[pos:pos + 10]!r}")
            kind = m.lastgroup
            self.toks.append((kind, m.group(kind)))
            pos = m.end()
        self.i = 0

    def error(self, what: str) -> BadInput:
        return BadInput(f"condition {self.text!r}: {what}")

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise self.error(f"expected {value or 'more'}")
        self.i += 1
        return tok

    def parse(self):
        cond = self.or_()
        if self.peek() is not None:
            raise self.error(f"unexpected {self.peek()[1]!r}")
        return cond

    def or_(self):
        left = self.and_()
        while self.peek() == ("word", "or"):
            self.take()
            right = self.and_()
            left = (lambda a, b: lambda c: a(c) or b(c))(left, right)
        return left

    def and_(self):
        left = self.not_()
        while self.peek() == ("word", "and"):
            self.take()
            right = self.not_()
            left = (lambda a, b: lambda c: a(c) and b(c))(left, right)
        return left

    def not_(self):
        if self.peek() == ("word", "not"):
            self.take()
            inner = self.not_()
            return lambda c: not inner(c)
        return self.atom()

    def atom(self):
        tok = self.peek()
        if tok == ("punct", "("):
            self.take()
            inner = self.or_()
            self.take(")")
            return inner
        if tok == ("word", "IsMatch"):
            self.take()
            self.take("(")
            path = self.path()
            self.take(",")
            kind, raw = self.take()
            if kind != "str":
                raise self.error("IsMatch needs a regular expression string")
            rx = re.compile(_unquote(raw))
            self.take(")")
            return lambda c: (v := c(path)) is not None and rx.search(str(v)) is not None
        path = self.path()
        kind, op = self.take()
        if kind != "op":
            raise self.error(f"expected a comparison after {path}")
        value = self.value()
        fn = _OPS[op]

        def compare(c, path=path, value=value, fn=fn):
            v = c(path)
            if v is None or value is None:
                return fn(v, value) if op in ("==", "!=") else False
            try:
                return fn(v, value)
            except TypeError:
                return False

        return compare

    def path(self) -> str:
        kind, word = self.take()
        if kind != "word" or word not in ("name", "body", "kind", "severity_number", "severity_text",
                                          "status.code", "attributes", "resource.attributes"):
            raise self.error(f"unsupported path {word!r}")
        if word.endswith("attributes"):
            self.take("[")
            k, key = self.take()
            if k != "str":
                raise self.error("attributes need a quoted key")
            self.take("]")
            return f"{word}[{_unquote(key)}]"
        return word

    def value(self):
        kind, raw = self.take()
        if kind == "str":
            return _unquote(raw)
        if kind == "num":
            return float(raw) if "." in raw else int(raw)
        if raw in ("true", "false"):
            return raw == "true"
        if raw == "nil":
            return None
        if raw in ENUMS:
            return ENUMS[raw]
        raise self.error(f"unsupported value {raw!r}")


def _unquote(raw: str) -> str:
    return bytes(raw[1:-1], "utf-8").decode("unicode_escape")


def compile_condition(text: str) -> Callable[[Context], bool]:
    return _Parser(text).parse()
