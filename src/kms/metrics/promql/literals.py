"""String literals as Go's PromQL parser keeps them: escapes may make bytes that are not UTF-8."""

from __future__ import annotations

import re

__all__ = ["invalid_utf8_literals"]

_LITERAL = re.compile(r""""((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'""")
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|[0-7]{3}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", re.DOTALL)
_SIMPLE_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}


def invalid_utf8_literals(query: str) -> dict[str, str]:
    """String literals whose escapes (``"\\xff"``) make bytes that are not UTF-8, keyed by the
    text the parser hands back for them (it maps such a byte to the code point of that value),
    with their Go-quoted form for error messages. Go keeps the bytes and refuses them as names."""
    out: dict[str, str] = {}
    for m in _LITERAL.finditer(query):
        body = m.group(1) if m.group(1) is not None else m.group(2)
        if "\\" not in body:
            continue
        raw, seen = bytearray(), []
        pos = 0
        for e in _ESCAPE.finditer(body):
            raw += body[pos : e.start()].encode()
            seen.append(body[pos : e.start()])
            code = e.group(1)
            if code[0] == "x" or (code[0] in "01234567" and len(code) == 3):
                byte = int(code[1:], 16) if code[0] == "x" else int(code, 8)
                raw.append(byte)
                seen.append(chr(byte))
            elif code[0] in "uU":
                raw += chr(int(code[1:], 16)).encode()
                seen.append(chr(int(code[1:], 16)))
            else:
                ch = chr(_SIMPLE_ESCAPES[code]) if code in _SIMPLE_ESCAPES else code
                raw += ch.encode()
                seen.append(ch)
            pos = e.end()
        raw += body[pos:].encode()
        seen.append(body[pos:])
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            out["".join(seen)] = '"' + body + '"'
    return out
