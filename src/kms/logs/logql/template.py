"""A subset of Go's ``text/template`` with Loki's template functions, for ``line_format`` and
``label_format``.

Supported: text and ``{{ }}`` actions with ``{{-``/``-}}`` trimming, pipelines
(``{{ .a | ToUpper | printf "%q" }}``), ``.field`` (labels; a missing one is ""), ``.``,
string/number/bool literals, parenthesised pipelines, ``if``/``else if``/``else``/``end``,
comments, and the functions in ``FUNCS`` (``__line__`` and ``__timestamp__`` among them).
"""

from __future__ import annotations

import base64
import datetime as _dt
import math
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from .errors import LogQLError
from .lexer import parse_bytes, parse_duration, unquote

__all__ = ["Template", "compile_template"]


@dataclass
class _Ctx:
    labels: dict[str, str]
    line: str
    ts_ns: int


def _num(x: object) -> float:
    if isinstance(x, bool):
        return float(x)
    if isinstance(x, int | float):
        return float(x)
    try:
        return float(str(x))
    except ValueError:
        return 0.0


def _int(x: object) -> int:
    f = _num(x)
    return int(f) if math.isfinite(f) else 0


def _s(x: object) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, float):
        return repr(x) if x != int(x) or abs(x) >= 1e21 else str(int(x))
    return "" if x is None else str(x)


def _truth(x: object) -> bool:
    return bool(x) and x != 0


def _printf(fmt: str, *args: object) -> str:
    """Go's fmt verbs mapped to Python's %: %v/%s/%d/%f/%q/%x/%t/%%."""
    out, i, ai = [], 0, 0
    spec = re.compile(r"%([-+ #0]*\d*(?:\.\d+)?)([vsdfgeqxXtT%])")
    for m in spec.finditer(fmt):
        out.append(fmt[i : m.start()])
        i = m.end()
        flags, verb = m.group(1), m.group(2)
        if verb == "%":
            out.append("%")
            continue
        a = args[ai] if ai < len(args) else None
        ai += 1
        if verb in "vsT":
            out.append(("%" + flags + "s") % _s(a))
        elif verb == "t":
            out.append(_s(bool(_truth(a))))
        elif verb == "q":
            out.append('"' + _s(a).replace("\\", "\\\\").replace('"', '\\"') + '"')
        elif verb in "dxX":
            out.append(("%" + flags + verb) % _int(a))
        else:
            out.append(("%" + flags + verb) % _num(a))
    out.append(fmt[i:])
    return "".join(out)


_GO_LAYOUT = {"2006": "%Y", "01": "%m", "02": "%d", "15": "%H", "04": "%M", "05": "%S", "Jan": "%b", "Mon": "%a",
              "MST": "%Z", "-0700": "%z", "06": "%y"}
_GO_LAYOUT_RE = re.compile("|".join(sorted(map(re.escape, _GO_LAYOUT), key=len, reverse=True)))


def _go_layout(layout: str) -> str:
    """A Go time layout (``2006-01-02 15:04:05``) as a strftime format."""
    return _GO_LAYOUT_RE.sub(lambda m: _GO_LAYOUT[m.group(0)], layout)


def _date(fmt: str, t: object) -> str:
    when = t if isinstance(t, _dt.datetime) else _dt.datetime.fromtimestamp(_num(t), _dt.UTC)
    return when.strftime(_go_layout(fmt))


def _unix_to_time(x: object) -> _dt.datetime:
    v = _int(x)
    digits = len(str(abs(v)))
    scale = 1 if digits <= 10 else 1e3 if digits <= 13 else 1e6 if digits <= 16 else 1e9
    return _dt.datetime.fromtimestamp(v / scale, _dt.UTC)


def _regex_replace(pattern: str, repl: str, s: str, literal: bool = False) -> str:
    from kms.metrics.promql.model import compile_go_regex

    rx = compile_go_regex(pattern)
    if literal:
        return rx.sub(lambda m: repl, s)
    return rx.sub(re.sub(r"\$\{?(\w+)\}?", r"\\g<\1>", repl.replace("\\", "\\\\")), s)


FUNCS: dict[str, Callable[..., object]] = {
    "ToLower": lambda s: _s(s).lower(), "ToUpper": lambda s: _s(s).upper(),
    "lower": lambda s: _s(s).lower(), "upper": lambda s: _s(s).upper(),
    "title": lambda s: _s(s).title(), "Title": lambda s: _s(s).title(),
    "Replace": lambda s, old, new, n: _s(s).replace(_s(old), _s(new), _int(n) if _int(n) >= 0 else -1),
    "replace": lambda old, new, s: _s(s).replace(_s(old), _s(new)),
    "Trim": lambda s, cut: _s(s).strip(_s(cut)), "TrimLeft": lambda s, cut: _s(s).lstrip(_s(cut)),
    "TrimRight": lambda s, cut: _s(s).rstrip(_s(cut)), "TrimSpace": lambda s: _s(s).strip(),
    "TrimPrefix": lambda s, p: _s(s).removeprefix(_s(p)), "TrimSuffix": lambda s, p: _s(s).removesuffix(_s(p)),
    "trim": lambda s: _s(s).strip(), "trimAll": lambda cut, s: _s(s).strip(_s(cut)),
    "trimPrefix": lambda p, s: _s(s).removeprefix(_s(p)), "trimSuffix": lambda p, s: _s(s).removesuffix(_s(p)),
    "contains": lambda sub, s: _s(sub) in _s(s), "hasPrefix": lambda p, s: _s(s).startswith(_s(p)),
    "hasSuffix": lambda p, s: _s(s).endswith(_s(p)), "repeat": lambda n, s: _s(s) * max(0, _int(n)),
    "substr": lambda a, b, s: _s(s)[_int(a) : _int(b) if _int(b) >= 0 else None],
    "trunc": lambda n, s: _s(s)[: _int(n)] if _int(n) >= 0 else _s(s)[_int(n) :],
    "indent": lambda n, s: "\n".join(" " * _int(n) + x for x in _s(s).split("\n")),
    "nindent": lambda n, s: "\n" + "\n".join(" " * _int(n) + x for x in _s(s).split("\n")),
    "default": lambda d, *v: v[0] if v and _truth(v[0]) else d, "printf": _printf,
    "len": lambda s: len(_s(s)), "count": lambda sub, s: len(re.findall(sub, _s(s))),
    "int": _int, "float64": _num, "add": lambda *a: sum(_int(x) for x in a), "sub": lambda a, b: _int(a) - _int(b),
    "mul": lambda *a: math.prod(_int(x) for x in a), "div": lambda a, b: _int(a) // _int(b) if _int(b) else 0,
    "mod": lambda a, b: _int(a) % _int(b) if _int(b) else 0, "addf": lambda *a: sum(_num(x) for x in a),
    "subf": lambda a, *b: _num(a) - sum(_num(x) for x in b), "mulf": lambda *a: math.prod(_num(x) for x in a),
    "divf": lambda a, *b: _num(a) / math.prod(_num(x) for x in b) if math.prod(_num(x) for x in b) else math.inf,
    "max": lambda *a: max(_int(x) for x in a), "min": lambda *a: min(_int(x) for x in a),
    "maxf": lambda *a: max(_num(x) for x in a), "minf": lambda *a: min(_num(x) for x in a),
    "ceil": lambda x: float(math.ceil(_num(x))), "floor": lambda x: float(math.floor(_num(x))),
    "round": lambda x, p=0, *_: round(_num(x), _int(p)),
    "eq": lambda a, *b: any(_s(a) == _s(x) for x in b), "ne": lambda a, b: _s(a) != _s(b),
    "lt": lambda a, b: _num(a) < _num(b), "le": lambda a, b: _num(a) <= _num(b),
    "gt": lambda a, b: _num(a) > _num(b), "ge": lambda a, b: _num(a) >= _num(b),
    "and": lambda *a: next((x for x in a if not _truth(x)), a[-1]),
    "or": lambda *a: next((x for x in a if _truth(x)), a[-1]), "not": lambda a: not _truth(a),
    "urlencode": lambda s: urllib.parse.quote_plus(_s(s)), "urldecode": lambda s: urllib.parse.unquote_plus(_s(s)),
    "b64enc": lambda s: base64.b64encode(_s(s).encode()).decode(),
    "b64dec": lambda s: base64.b64decode(_s(s).encode()).decode(errors="replace"),
    "bytes": lambda s: parse_bytes(_s(s)) or 0.0,
    "duration": lambda s: (parse_duration(_s(s)) or 0) / 1e9, "duration_seconds": lambda s: (parse_duration(_s(s)) or 0) / 1e9,
    "regexReplaceAll": lambda p, s, r: _regex_replace(p, _s(r), _s(s)),
    "regexReplaceAllLiteral": lambda p, s, r: _regex_replace(p, _s(r), _s(s), literal=True),
    "alignLeft": lambda n, s: _s(s)[: _int(n)].ljust(_int(n)), "alignRight": lambda n, s: _s(s)[-_int(n) :].rjust(_int(n)),
    "unixEpoch": lambda t: int(t.timestamp()) if isinstance(t, _dt.datetime) else 0,
    "unixEpochMillis": lambda t: int(t.timestamp() * 1e3) if isinstance(t, _dt.datetime) else 0,
    "unixEpochNanos": lambda t: int(t.timestamp() * 1e9) if isinstance(t, _dt.datetime) else 0,
    "unixToTime": _unix_to_time, "date": _date,
    "toDate": lambda layout, s: _dt.datetime.strptime(_s(s), _go_layout(_s(layout))).replace(tzinfo=_dt.UTC),
    "now": lambda: _dt.datetime.now(_dt.UTC),
}
_CONTEXT_FUNCS = {"__line__", "__timestamp__"}

# ------------------------------------------------------------------------------ compile

_TOK = re.compile(
    r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|`[^`]*`)|(?P<num>-?\d+(?:\.\d+)?)|(?P<field>(?:\$)?\.[A-Za-z0-9_.]*)"""
    r"""|(?P<var>\$[A-Za-z0-9_]*)|(?P<id>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[|()]))"""
)


@dataclass
class _Action:
    pipeline: list  # commands; each command a list of operands


@dataclass
class _If:
    branches: list[tuple[list | None, list]]  # (condition pipeline or None for else, body nodes)


def _tokens(src: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    src = src.strip()
    while pos < len(src):
        m = _TOK.match(src, pos)
        if not m or m.end() == pos:
            raise LogQLError(f"template: unexpected {src[pos:]!r} in command")
        kind = m.lastgroup or "op"
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _parse_pipeline(toks: list[tuple[str, str]], i: int = 0) -> tuple[list, int]:
    cmds: list[list] = [[]]
    while i < len(toks):
        kind, val = toks[i]
        if kind == "op" and val == "|":
            cmds.append([])
        elif kind == "op" and val == "(":
            sub, i = _parse_pipeline(toks, i + 1)
            cmds[-1].append(("pipe", sub))
        elif kind == "op" and val == ")":
            return cmds, i
        elif kind == "str":
            cmds[-1].append(("lit", unquote(val)))
        elif kind == "num":
            cmds[-1].append(("lit", float(val) if "." in val else int(val)))
        elif kind == "field":
            cmds[-1].append(("field", val.lstrip("$")))
        elif kind == "var":
            cmds[-1].append(("field", "."))
        elif val in ("true", "false"):
            cmds[-1].append(("lit", val == "true"))
        elif val == "nil":
            cmds[-1].append(("lit", None))
        elif val in FUNCS or val in _CONTEXT_FUNCS:
            cmds[-1].append(("func", val))
        else:
            raise LogQLError(f'template: function "{val}" not defined')
        i += 1
    if any(not c for c in cmds):
        raise LogQLError("template: missing value for command")
    return cmds, i


def _compile(src: str) -> list:
    parts = re.split(r"(\{\{.*?\}\})", src, flags=re.DOTALL)
    if any("{{" in part for part in parts[::2]):
        raise LogQLError(f"template: {src!r}: unclosed action")
    # trim markers: "{{- " eats preceding space, " -}}" eats following space
    for k in range(1, len(parts), 2):
        a = parts[k]
        if a.startswith("{{- ") or a.startswith("{{-\t") or a.startswith("{{-\n"):
            parts[k - 1] = parts[k - 1].rstrip()
        if a.endswith(" -}}") or a.endswith("\t-}}") or a.endswith("\n-}}"):
            parts[k + 1] = parts[k + 1].lstrip()
    root: list = []
    stack: list[tuple[_If, list]] = []
    body = root
    for k, part in enumerate(parts):
        if k % 2 == 0:
            if part:
                body.append(part)
            continue
        inner = part[2:-2]
        inner = inner[1:] if inner.startswith("-") else inner
        inner = inner[:-1] if inner.endswith("-") else inner
        inner = inner.strip()
        if inner.startswith("/*"):
            continue
        word = inner.split(None, 1)[0] if inner else ""
        if word == "if":
            node = _If([(_parse_pipeline(_tokens(inner[2:]))[0], [])])
            body.append(node)
            stack.append((node, body))
            body = node.branches[-1][1]
        elif word == "else":
            if not stack:
                raise LogQLError("template: unexpected {{else}}")
            node = stack[-1][0]
            rest = inner[4:].strip()
            cond = _parse_pipeline(_tokens(rest[2:]))[0] if rest.startswith("if") else None
            node.branches.append((cond, []))
            body = node.branches[-1][1]
        elif word == "end":
            if not stack:
                raise LogQLError("template: unexpected {{end}}")
            body = stack.pop()[1]
        elif inner == "":
            raise LogQLError("template: missing value for command")
        else:
            body.append(_Action(_parse_pipeline(_tokens(inner))[0]))
    if stack:
        raise LogQLError("template: unexpected EOF")
    return root


# ------------------------------------------------------------------------------ execute


def _operand(op: tuple, ctx: _Ctx) -> object:
    kind, val = op
    if kind == "lit":
        return val
    if kind == "field":
        if val == ".":
            return ctx.labels
        return ctx.labels.get(val[1:].split(".")[0], "")
    if kind == "pipe":
        return _run(val, ctx)
    return _call(val, [], ctx)


def _call(name: str, args: list, ctx: _Ctx) -> object:
    if name == "__line__":
        return ctx.line
    if name == "__timestamp__":
        return _dt.datetime.fromtimestamp(ctx.ts_ns / 1e9, _dt.UTC)
    try:
        return FUNCS[name](*args)
    except LogQLError:
        raise
    except Exception as e:  # a template function failing is the query's fault
        raise LogQLError(f"template: error calling {name}: {e}") from None


def _run(pipeline: list, ctx: _Ctx) -> object:
    value: object = None
    for n, cmd in enumerate(pipeline):
        head = cmd[0]
        if head[0] == "func":
            args = [_operand(x, ctx) for x in cmd[1:]]
            if n > 0:
                args.append(value)
            value = _call(head[1], args, ctx)
        else:
            if len(cmd) > 1 or n > 0:
                raise LogQLError("template: can't give argument to non-function")
            value = _operand(head, ctx)
    return value


def _render(nodes: list, ctx: _Ctx, out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, _Action):
            v = _run(node.pipeline, ctx)
            out.append(_s(v) if not isinstance(v, _dt.datetime) else v.strftime("%Y-%m-%d %H:%M:%S.%f +0000 UTC"))
        else:
            for cond, body in node.branches:
                if cond is None or _truth(_run(cond, ctx)):
                    _render(body, ctx, out)
                    break


class Template:
    def __init__(self, src: str):
        self.src = src
        self._nodes = _compile(src)
        self.constant = all(isinstance(n, str) for n in self._nodes)

    def render(self, labels: dict[str, str], line: str, ts_ns: int) -> str:
        if self.constant:
            return "".join(self._nodes)
        out: list[str] = []
        _render(self._nodes, _Ctx(labels, line, ts_ns), out)
        return "".join(out)


def compile_template(src: str) -> Template:
    return Template(src)
