"""The ``transform`` processor: OTTL statements that edit spans, log records, data points and
their resources.

    processors:
      transform:
        error_mode: ignore            # propagate (default) | ignore | silent
        trace_statements:
          - context: span             # span | resource
            statements:
              - set(attributes["env"], "prod") where resource.attributes["k8s.namespace.name"] == "shop"
              - delete_key(attributes, "http.request.header.authorization")
        log_statements:   ["set(log.severity_text, \\"WARN\\") where log.severity_number == 13"]
        metric_statements: [...]      # datapoint | metric | resource

Statements may also be given as a flat list with context-prefixed paths (``span.name``,
``log.body``, ``datapoint.attributes["k"]``, ``resource.attributes["k"]``), as newer collectors
accept. Functions: ``set``, ``delete_key``, ``delete_matching_keys``, ``keep_keys``,
``keep_matching_keys``, ``replace_pattern``, ``replace_all_patterns``, ``truncate_all``,
``limit``; values: literals, paths, ``Concat``, ``ToLowerCase``, ``ToUpperCase``. Conditions are
the filter processor's OTTL (``kms.pipeline.ottl``). Anything else is refused at load, naming the
statement. Scraped samples are data points (labels are their attributes); tailed lines are log
records (body and attributes).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from kms.errors import BadInput
from kms.metrics.translate import label_name
from kms.pipeline.items import OTLP_REQUESTS, Item, data_points
from kms.pipeline.ottl import _TOKEN, _unquote, compile_condition

__all__ = ["TransformProcessor"]

_PREFIX = re.compile(
    r"\b(?:span|log|datapoint|metric)\.(?=name\b|attributes\b|body\b|kind\b|severity_|status\.)"
)
_FIELDS = {"name", "body", "kind", "severity_number", "severity_text", "status.code", "status.message",
           "description", "unit"}  # fmt: skip
_MAPS = ("attributes", "resource.attributes")
State = dict  # {"fields": {...}, "attributes": {...}, "resource.attributes": {...}}


class _StatementError(Exception):
    pass


def _split_where(text: str) -> tuple[str, str | None]:
    quote = False
    for m in re.finditer(r'\\.|"|\swhere\s', text):
        tok = m.group(0)
        if tok == '"':
            quote = not quote
        elif not quote and tok.strip() == "where":
            return text[: m.start()], text[m.end() :]
    return text, None


class _Parser:
    """``fn(arg, ...)`` with args: literals, paths, lists, nested value functions."""

    def __init__(self, text: str):
        self.text = text
        self.toks, pos = [], 0
        while pos < len(text.rstrip()):
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise self.error(f"unexpected {text[pos : pos + 10]!r}")
            self.toks.append((m.lastgroup, m.group(m.lastgroup)))
            pos = m.end()
        self.i = 0

    def error(self, what: str) -> BadInput:
        return BadInput(f"statement {self.text.strip()!r}: {what}")

    def take(self, value: str | None = None):
        tok = self.toks[self.i] if self.i < len(self.toks) else None
        if tok is None or (value is not None and tok[1] != value):
            raise self.error(f"expected {value or 'more'}")
        self.i += 1
        return tok

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else None

    def call(self) -> tuple[str, list]:
        kind, name = self.take()
        if kind != "word":
            raise self.error("expected a function name")
        self.take("(")
        args = []
        while self.peek() != ("punct", ")"):
            args.append(self.arg())
            if self.peek() == ("punct", ","):
                self.take()
        self.take(")")
        return name, args

    def arg(self):
        kind, raw = self.peek() or ("", "")
        if kind == "str":
            self.take()
            return ("lit", _unquote(raw))
        if kind == "num":
            self.take()
            return ("lit", float(raw) if "." in raw else int(raw))
        if (kind, raw) == ("punct", "["):
            self.take()
            items = []
            while self.peek() != ("punct", "]"):
                items.append(self.arg())
                if self.peek() == ("punct", ","):
                    self.take()
            self.take("]")
            return ("list", items)
        if kind == "word" and raw in ("true", "false", "nil"):
            self.take()
            return ("lit", None if raw == "nil" else raw == "true")
        if kind == "word" and self.i + 1 < len(self.toks) and self.toks[self.i + 1] == ("punct", "("):
            name, args = self.call()
            if name not in _VALUE_FNS:
                raise self.error(f"unsupported function {name!r}")
            return ("fn", name, args)
        if kind == "word":
            self.take()
            if raw in _MAPS and self.peek() == ("punct", "["):
                self.take("[")
                k, key = self.take()
                if k != "str":
                    raise self.error("attributes need a quoted key")
                self.take("]")
                return ("path", f"{raw}[{_unquote(key)}]")
            if raw in _MAPS or raw in _FIELDS:
                return ("path", raw)
            raise self.error(f"unsupported path {raw!r}")
        raise self.error(f"unexpected {raw!r}")


_VALUE_FNS: dict[str, Callable] = {
    "Concat": lambda vals, sep: sep.join("" if v is None else _text(v) for v in vals),
    "ToLowerCase": lambda v: None if v is None else str(v).lower(),
    "ToUpperCase": lambda v: None if v is None else str(v).upper(),
}


def _text(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _get(state: State, path: str):
    if path in _MAPS:
        return state[path]
    for m in _MAPS:
        if path.startswith(m + "["):
            return state[m].get(path[len(m) + 1 : -1])
    return state["fields"].get(path)


def _eval(state: State, arg):
    kind = arg[0]
    if kind == "lit":
        return arg[1]
    if kind == "path":
        return _get(state, arg[1])
    if kind == "list":
        return [_eval(state, a) for a in arg[1]]
    return _VALUE_FNS[arg[1]](*[_eval(state, a) for a in arg[2]])


def _int_arg(p: _Parser, arg, what: str) -> int:
    if arg[0] != "lit" or not isinstance(arg[1], int) or isinstance(arg[1], bool) or arg[1] < 0:
        raise p.error(f"{what} must be a non-negative integer")
    return arg[1]


def _regex_arg(p: _Parser, arg) -> re.Pattern:
    if arg[0] != "lit" or not isinstance(arg[1], str):
        raise p.error("expected a regular expression string")
    try:
        return re.compile(arg[1])
    except re.error as e:
        raise p.error(f"bad regular expression {arg[1]!r}: {e}") from None


def _map_arg(p: _Parser, arg) -> str:
    if arg[0] != "path" or arg[1] not in _MAPS:
        raise p.error("the first argument must be attributes or resource.attributes")
    return arg[1]


def _compile(text: str) -> Callable[[State], None]:
    body, where = _split_where(_PREFIX.sub("", text))
    p = _Parser(body)
    name, args = p.call()
    if p.peek() is not None:
        raise p.error(f"unexpected {p.peek()[1]!r}")
    cond = compile_condition(where) if where else None

    def need(n: int) -> None:
        if len(args) != n:
            raise p.error(f"{name} takes {n} arguments")

    if name == "set":
        need(2)
        if args[0][0] != "path" or args[0][1] in _MAPS:
            raise p.error('set needs a field or attributes["key"] to write')
        target, value = args[0][1], args[1]

        def run(s: State) -> None:
            v = _eval(s, value)
            for m in _MAPS:
                if target.startswith(m + "["):
                    if v is None:
                        s[m].pop(target[len(m) + 1 : -1], None)
                    else:
                        s[m][target[len(m) + 1 : -1]] = v
                    return
            if v is not None:
                s["fields"][target] = v
    elif name in ("delete_key", "delete_matching_keys", "keep_keys", "keep_matching_keys"):
        need(2)
        m = _map_arg(p, args[0])
        what = args[1]
        if name.endswith("matching_keys"):
            test = _regex_arg(p, what).fullmatch
        elif name == "keep_keys":
            if what[0] != "list":
                raise p.error("keep_keys needs a list of keys")
            keys = {k[1] for k in what[1]}
            test = keys.__contains__
        else:
            test = what[1].__eq__
        keep = name.startswith("keep")

        def run(s: State) -> None:
            s[m] = {k: v for k, v in s[m].items() if bool(test(k)) == keep}
    elif name == "replace_pattern":
        need(3)
        if args[0][0] != "path":
            raise p.error("replace_pattern needs a path")
        target, rx, repl = args[0][1], _regex_arg(p, args[1]), _go_repl(str(args[2][1]))

        def run(s: State) -> None:
            v = _get(s, target)
            if isinstance(v, str):
                new = rx.sub(repl, v)
                for m in _MAPS:
                    if target.startswith(m + "["):
                        s[m][target[len(m) + 1 : -1]] = new
                        return
                s["fields"][target] = new
    elif name == "replace_all_patterns":
        need(4)
        m = _map_arg(p, args[0])
        mode, rx, repl = args[1][1], _regex_arg(p, args[2]), _go_repl(str(args[3][1]))
        if mode not in ("key", "value"):
            raise p.error('replace_all_patterns mode must be "key" or "value"')

        def run(s: State) -> None:
            if mode == "value":
                s[m] = {k: rx.sub(repl, v) if isinstance(v, str) else v for k, v in s[m].items()}
            else:
                s[m] = {rx.sub(repl, k): v for k, v in s[m].items()}
    elif name == "truncate_all":
        need(2)
        m, limit = _map_arg(p, args[0]), _int_arg(p, args[1], "the length limit")

        def run(s: State) -> None:
            s[m] = {k: v[:limit] if isinstance(v, str) else v for k, v in s[m].items()}
    elif name == "limit":
        if len(args) not in (2, 3):
            raise p.error("limit takes 2 or 3 arguments")
        m, n = _map_arg(p, args[0]), _int_arg(p, args[1], "the key limit")
        first = [k[1] for k in args[2][1]] if len(args) == 3 else []

        def run(s: State) -> None:
            if len(s[m]) > n:
                order = [k for k in first if k in s[m]] + [k for k in s[m] if k not in first]
                s[m] = {k: s[m][k] for k in order[:n]}
    else:
        raise p.error(f"unsupported function {name!r}")

    def statement(s: State) -> None:
        if cond is None or cond(lambda path: _get(s, path)):
            run(s)

    return statement


def _go_repl(r: str) -> str:
    """Go's ``$1``/``${name}`` in replacements as Python's ``\\g<1>``."""
    return re.sub(
        r"\$\{(\w+)\}|\$(\d+)", lambda m: "\\g<" + (m.group(1) or m.group(2)) + ">", r.replace("\\", "\\\\")
    )


# ---- OTLP records <-> state ----


def _py(v: AnyValue):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind in ("string_value", "int_value", "double_value", "bool_value") else v


def _any(v) -> AnyValue:
    if isinstance(v, AnyValue):
        return v
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    return AnyValue(string_value=_text(v))


def _read_kv(kvs) -> dict:
    return {kv.key: _py(kv.value) for kv in kvs}


def _write_kv(kvs, values: dict, before: dict) -> None:
    if values == before:
        return
    del kvs[:]
    kvs.extend(KeyValue(key=k, value=_any(v)) for k, v in values.items())


_RECORD_FIELDS = {
    "span": {
        "name": "name",
        "kind": "kind",
        "status.code": "status.code",
        "status.message": "status.message",
    },
    "log": {"body": "body", "severity_text": "severity_text", "severity_number": "severity_number"},
    "datapoint": {},
}


def _fields(kind: str, rec, metric=None) -> dict:
    out = {}
    if kind == "span":
        out = {
            "name": rec.name,
            "kind": rec.kind,
            "status.code": rec.status.code,
            "status.message": rec.status.message,
        }
    elif kind == "log":
        out = {
            "body": _py(rec.body),
            "severity_text": rec.severity_text,
            "severity_number": rec.severity_number,
        }
    if metric is not None:
        out.update({"name": metric.name, "description": metric.description, "unit": metric.unit})
    return out


def _store_fields(kind: str, rec, fields: dict, before: dict, metric=None) -> None:
    for k, v in fields.items():
        if before.get(k) == v:
            continue
        if k == "name" and metric is not None:
            metric.name = str(v)
        elif k in ("description", "unit") and metric is not None:
            setattr(metric, k, str(v))
        elif k == "status.code":
            rec.status.code = int(v)
        elif k == "status.message":
            rec.status.message = str(v)
        elif k == "body":
            rec.body.CopyFrom(_any(v))
        elif k in ("kind", "severity_number"):
            setattr(rec, k, int(v))
        elif hasattr(rec, k):
            setattr(rec, k, str(v))


class TransformProcessor:
    def __init__(self, cid: str, settings: dict):
        self.cid = cid
        self.error_mode = str(settings.get("error_mode", "propagate"))
        if self.error_mode not in ("propagate", "ignore", "silent"):
            raise BadInput(f"processor {cid!r}: error_mode must be propagate, ignore or silent")
        self.groups: dict[str, dict[str, list]] = {}
        defaults = {"traces": "span", "logs": "log", "metrics": "datapoint"}
        allowed = {"traces": ("span", "resource"), "logs": ("log", "resource"),
                   "metrics": ("datapoint", "metric", "resource")}  # fmt: skip
        for signal, key in (
            ("traces", "trace_statements"),
            ("logs", "log_statements"),
            ("metrics", "metric_statements"),
        ):
            by_ctx: dict[str, list] = {}
            for entry in settings.get(key) or []:
                if isinstance(entry, str):
                    ctx = "resource" if re.match(r"\s*\w+\(\s*resource\.", entry) else defaults[signal]
                    texts, conds = [entry], []
                else:
                    ctx = str(entry.get("context") or defaults[signal])
                    texts, conds = list(entry.get("statements") or []), list(entry.get("conditions") or [])
                if ctx not in allowed[signal]:
                    raise BadInput(f"processor {cid!r}: {key}: context {ctx!r} is not supported here "
                                   f"(use one of {', '.join(allowed[signal])})")  # fmt: skip
                try:
                    group_cond = [compile_condition(_PREFIX.sub("", str(c))) for c in conds]
                    stmts = [_compile(str(t)) for t in texts]
                except BadInput as e:
                    raise BadInput(f"processor {cid!r}: {key}: {e.message}") from None
                if group_cond:
                    stmts = [_guarded(st, group_cond) for st in stmts]
                by_ctx.setdefault(ctx, []).extend(stmts)
            if by_ctx:
                self.groups[signal] = by_ctx

    def _run(self, stmts: list, state: State) -> None:
        for st in stmts:
            try:
                st(state)
            except (TypeError, ValueError, re.error) as e:
                if self.error_mode == "propagate":
                    raise BadInput(f"processor {self.cid!r}: {e}") from None

    def __call__(self, item: Item) -> Item:
        groups = self.groups.get(item.signal)
        if not groups:
            return item
        if item.samples is not None:
            return self._samples(item, groups)
        if item.lines is not None:
            return self._lines(item, groups)
        if item.otlp is None:
            return item
        req = OTLP_REQUESTS[item.signal].FromString(item.otlp)
        plural = "spans" if item.signal == "traces" else item.signal
        for top in getattr(req, "resource_" + plural):
            res_before = _read_kv(top.resource.attributes)
            res = dict(res_before)
            if "resource" in groups:
                state = {"fields": {}, "attributes": res, "resource.attributes": res}
                self._run(groups["resource"], state)
                res = state["attributes"]
            for scoped in getattr(top, "scope_" + plural):
                if item.signal == "traces":
                    records = [("span", r, None) for r in scoped.spans]
                elif item.signal == "logs":
                    records = [("log", r, None) for r in scoped.log_records]
                else:
                    records = [("datapoint", dp, m) for m in scoped.metrics for dp in data_points(m)]
                    if "metric" in groups:
                        for m in scoped.metrics:
                            self._record("metric", m, m, groups["metric"], res, with_attributes=False)
                ctx = {"traces": "span", "logs": "log", "metrics": "datapoint"}[item.signal]
                if ctx in groups:
                    for kind, rec, metric in records:
                        self._record(kind, rec, metric, groups[ctx], res)
            _write_kv(top.resource.attributes, res, res_before)
        item.otlp = req.SerializeToString()
        return item

    def _record(self, kind, rec, metric, stmts, res: dict, with_attributes: bool = True) -> None:
        fields = _fields(kind if kind != "metric" else "datapoint", rec, metric)
        attrs_before = _read_kv(rec.attributes) if with_attributes else {}
        state = {"fields": dict(fields), "attributes": dict(attrs_before), "resource.attributes": res}
        self._run(stmts, state)
        _store_fields(kind, rec, state["fields"], fields, metric)
        if with_attributes:
            _write_kv(rec.attributes, state["attributes"], attrs_before)

    def _samples(self, item: Item, groups) -> Item:
        stmts = groups.get("datapoint", []) + groups.get("metric", [])
        if not stmts:
            return item
        b = item.samples
        series = []
        for ls in b.series:
            labels = dict(ls)
            name = labels.pop("__name__")
            state = {"fields": {"name": name}, "attributes": dict(labels), "resource.attributes": {}}
            self._run(stmts, state)
            out = {
                label_name(k) or k: _text(v) for k, v in state["attributes"].items() if v not in (None, "")
            }
            out["__name__"] = str(state["fields"].get("name", name))
            series.append(tuple(sorted(out.items())))
        item.samples = replace(b, series=series)
        return item

    def _lines(self, item: Item, groups) -> Item:
        if "resource" in groups:
            state = {
                "fields": {},
                "attributes": dict(item.resource),
                "resource.attributes": dict(item.resource),
            }
            self._run(groups["resource"], state)
            item.resource = {k: _text(v) for k, v in state["attributes"].items()}
        stmts = groups.get("log")
        if stmts:
            out = []
            for ln in item.lines:
                state = {"fields": {"body": ln.line}, "attributes": dict(ln.attributes),
                         "resource.attributes": dict(item.resource)}  # fmt: skip
                self._run(stmts, state)
                attrs = tuple((k, _text(v)) for k, v in state["attributes"].items())
                out.append(replace(ln, line=_text(state["fields"].get("body", ln.line)), attributes=attrs))
            item.lines = out
        return item


def _guarded(statement, conds):
    def run(s: State) -> None:
        if any(c(lambda path: _get(s, path)) for c in conds):
            statement(s)

    return run
