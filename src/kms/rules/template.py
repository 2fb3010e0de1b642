"""A subset of Go's text/template, enough for Prometheus rule labels and annotations.

Supported: text and ``{{ }}`` actions with ``{{-``/``-}}`` trimming, comments, pipelines
(``$value | humanize``), function calls with arguments (``printf "%.2f" $value``), variables
``$labels``, ``$value``, ``$externalLabels``, ``$externalURL`` and ``$`` / ``.`` with field access
(``$labels.job``, ``.Labels.job``), parenthesised pipelines, string/number/bool literals and
``if``/``else if``/``else``/``end``. A missing label prints ``<no value>`` as in Go.
``Template(text)`` parses once (syntax errors raise ``TemplateError`` at rule load);
``render(data)`` expands.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from kms.rules import humanize as hz

__all__ = ["Template", "TemplateError", "template_data"]

NO_VALUE = "<no value>"


class TemplateError(ValueError):
    pass


_VERB = re.compile(r"%([-+# 0]*[0-9]*(?:\.[0-9]+)?)([a-zA-Z%])")


def _printf(fmt: str, *args) -> str:
    """Go's ``Sprintf`` for the usual verbs: ``%v``/``%s`` (Go's text of the value), ``%d``, ``%x``,
    ``%f``/``%g``/``%e``, ``%q``, ``%%``."""
    it = iter(args)

    def one(m: re.Match) -> str:
        flags, verb = m.group(1), m.group(2)
        if verb == "%":
            return "%"
        try:
            a = next(it)
        except StopIteration:
            return f"%!{verb}(MISSING)"
        if verb in "vs":
            return f"%{flags}s" % _text(a)
        if verb == "q":
            return '"' + str(a).replace("\\", "\\\\").replace('"', '\\"') + '"'
        if verb in "dxXob":
            return f"%{flags}{verb}" % int(a) if verb != "b" else format(int(a), "b")
        if verb in "fFeEgG":
            return f"%{flags}{verb}" % float(a)
        return f"%!{verb}({_text(a)})"

    return _VERB.sub(one, fmt)


def _re_replace_all(pattern: str, repl: str, text: str) -> str:
    return re.sub(pattern, re.sub(r"\$(\d+)|\$\{(\d+)\}", lambda m: "\\" + (m.group(1) or m.group(2)), repl), text)


def _strip_port(host: str) -> str:
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _truth(v: Any) -> bool:
    return bool(v) and v != NO_VALUE


FUNCS: dict[str, Callable[..., Any]] = {
    "humanize": hz.humanize, "humanize1024": hz.humanize1024, "humanizeDuration": hz.humanize_duration,
    "humanizePercentage": hz.humanize_percentage, "humanizeTimestamp": hz.humanize_timestamp,
    "printf": _printf, "toUpper": lambda s: str(s).upper(), "toLower": lambda s: str(s).lower(),
    "title": lambda s: str(s).title(), "reReplaceAll": _re_replace_all, "stripPort": _strip_port,
    "match": lambda p, s: re.search(p, str(s)) is not None, "len": len,
    "index": lambda m, k: m.get(k, NO_VALUE) if isinstance(m, dict) else m[int(k)],
    "eq": lambda a, *b: any(a == x for x in b), "ne": lambda a, b: a != b, "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b, "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
    "not": lambda a: not _truth(a), "and": lambda *a: next((x for x in a if not _truth(x)), a[-1]),
    "or": lambda *a: next((x for x in a if _truth(x)), a[-1]),
    "safeHtml": str, "html": lambda s: str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"),
}

_TOKEN = re.compile(
    r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|`[^`]*`)|(?P<num>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)"""
    r"""|(?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)|(?P<field>(?:\.[A-Za-z0-9_]+)+|\.)"""
    r"""|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[|()]))"""
)


def _lex(src: str) -> list[tuple[str, str]]:
    out, i = [], 0
    while i < len(src):
        if src[i:].strip() == "":
            break
        m = _TOKEN.match(src, i)
        if not m or m.end() == i:
            raise TemplateError(f"unexpected {src[i:].strip()[:20]!r} in action {{{{{src}}}}}")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        i = m.end()
    return out


class _Pipe:
    """A parsed pipeline: a list of commands, each a list of operand nodes."""

    def __init__(self, tokens: list[tuple[str, str]], src: str):
        self.src = src
        self.cmds: list[list[tuple[str, Any]]] = [[]]
        pos = self._parse(tokens, 0, self.cmds)
        if pos != len(tokens):
            raise TemplateError(f"unexpected ')' in {{{{{src}}}}}")
        if any(not c for c in self.cmds):
            raise TemplateError(f"missing command in {{{{{src}}}}}")
        for cmd in self.cmds:
            kind, val = cmd[0]
            if kind == "ident" and val not in FUNCS and val not in ("true", "false", "nil"):
                raise TemplateError(f'function "{val}" not defined')

    def _parse(self, tokens, pos, cmds) -> int:
        while pos < len(tokens):
            kind, val = tokens[pos]
            if val == "|" and kind == "op":
                cmds.append([])
            elif val == "(" and kind == "op":
                inner: list[list] = [[]]
                pos = self._parse(tokens, pos + 1, inner)
                if pos >= len(tokens) or tokens[pos][1] != ")":
                    raise TemplateError(f"unclosed '(' in {{{{{self.src}}}}}")
                if any(not c for c in inner):
                    raise TemplateError(f"missing command in {{{{{self.src}}}}}")
                cmds[-1].append(("pipe", inner))
            elif val == ")" and kind == "op":
                return pos
            else:
                cmds[-1].append((kind, val))
            pos += 1
        return pos

    def eval(self, data: dict, cmds=None) -> Any:
        result: Any = None
        for i, cmd in enumerate(cmds if cmds is not None else self.cmds):
            head_kind, head = cmd[0]
            args = [self._operand(o, data) for o in cmd[1:]]
            if i:
                args.append(result)
            if head_kind == "ident" and head in FUNCS:
                try:
                    result = FUNCS[head](*args)
                except Exception as e:  # a template function failing is the rule author's problem
                    raise TemplateError(f"error calling {head}: {e}") from None
            elif args:
                raise TemplateError(f"can't give argument to non-function {head}")
            else:
                result = self._operand(cmd[0], data)
        return result

    def _operand(self, node, data: dict) -> Any:
        kind, val = node
        if kind == "str":
            return val[1:-1] if val[0] == "`" else bytes(val[1:-1], "utf-8").decode("unicode_escape")
        if kind == "num":
            return float(val) if any(c in val for c in ".eE") else int(val)
        if kind == "pipe":
            return self.eval(data, val)
        if kind == "ident":
            if val in ("true", "false"):
                return val == "true"
            if val == "nil":
                return None
            if val not in FUNCS:
                raise TemplateError(f'function "{val}" not defined')
            try:
                return FUNCS[val]()
            except TypeError as e:
                raise TemplateError(f"error calling {val}: {e}") from None
        if kind == "var":
            name, *path = val.split(".")
            if name == "$":
                obj = data
            elif name[1:] in data["$vars"]:
                obj = data["$vars"][name[1:]]
            else:
                raise TemplateError(f"undefined variable {name!r}")
            return _walk(obj, path)
        if kind == "field":
            return data if val == "." else _walk(data, val.strip(".").split("."))
        raise TemplateError(f"unexpected {val!r}")


def _walk(obj: Any, path: list[str]) -> Any:
    for p in path:
        if isinstance(obj, dict):
            obj = obj.get(p, NO_VALUE)
        else:
            return NO_VALUE
    return obj


def _text(v: Any) -> str:
    if v is None:
        return NO_VALUE
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return hz.go_float(v)
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{v[k]}" for k in sorted(v)) + "]"
    return str(v)


_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)


class Template:
    def __init__(self, text: str):
        self.text = text
        self.nodes = self._parse(text)

    @staticmethod
    def _parse(text: str) -> list:
        # nodes: ("text", s) | ("out", pipe) | ("if", [(pipe|None, nodes), ...])
        root: list = []
        stack: list[tuple[list, list]] = []  # (branches, parent node list) of open ifs
        cur, pos, pending_trim = root, 0, False
        for m in _ACTION.finditer(text):
            chunk = text[pos : m.start()]
            if pending_trim:
                chunk = chunk.lstrip()
            if m.group(1):
                chunk = chunk.rstrip()
            if chunk:
                cur.append(("text", chunk))
            pos, pending_trim = m.end(), bool(m.group(3))
            body = m.group(2).strip()
            if body.startswith("/*"):
                continue
            word, _, rest = body.partition(" ")
            if word == "if":
                branches = [(_Pipe(_lex(rest), rest), [])]
                cur.append(("if", branches))
                stack.append((branches, cur))
                cur = branches[-1][1]
            elif word == "else":
                if not stack:
                    raise TemplateError("unexpected {{else}}")
                branches = stack[-1][0]
                cond = rest.strip()
                if cond.startswith("if "):
                    branches.append((_Pipe(_lex(cond[3:]), cond[3:]), []))
                else:
                    branches.append((None, []))
                cur = branches[-1][1]
            elif word == "end":
                if not stack:
                    raise TemplateError("unexpected {{end}}")
                _, cur = stack.pop()
            elif word in ("range", "with", "define", "template", "block"):
                raise TemplateError(f"{{{{{word}}}}} is not supported in rule templates")
            else:
                cur.append(("out", _Pipe(_lex(body), body)))
        if stack:
            raise TemplateError("unexpected EOF: {{if}} without {{end}}")
        tail = text[pos:]
        if "{{" in tail:
            raise TemplateError("unclosed action")
        if pending_trim:
            tail = tail.lstrip()
        if tail:
            cur.append(("text", tail))
        return root

    def render(self, data: dict) -> str:
        out: list[str] = []
        self._run(self.nodes, data, out)
        return "".join(out)

    def _run(self, nodes: list, data: dict, out: list[str]) -> None:
        for kind, val in nodes:
            if kind == "text":
                out.append(val)
            elif kind == "out":
                out.append(_text(val.eval(data)))
            else:
                for cond, body in val:
                    if cond is None or _truth(cond.eval(data)):
                        self._run(body, data, out)
                        break


def template_data(labels: dict[str, str], value: float, external_labels: dict[str, str], external_url: str) -> dict:
    """The data Prometheus gives rule templates: ``.Labels``, ``.Value``, ... and the ``$`` variables."""
    data: dict[str, Any] = {"Labels": labels, "Value": value, "ExternalLabels": external_labels,
                            "ExternalURL": external_url}
    data["$vars"] = {"labels": labels, "value": value, "externalLabels": external_labels,
                     "externalURL": external_url}
    return data


def expand(text: str, data: dict) -> str:
    """Expand, returning Prometheus's ``<error expanding template: ...>`` text on failure."""
    if "{{" not in text:
        return text
    try:
        return Template(text).render(data)
    except TemplateError as e:
        return f"<error expanding template: {e}>"
