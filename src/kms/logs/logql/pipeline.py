"""The log pipeline after the leading line filters: per-row stages over ``Row`` objects.

Rows reach this module only after the vectorised line filters (``linefilter``) dropped what
they could. A row's labels stay split in three categories (stream, structured metadata,
parsed) as Loki's ``categorize-labels`` reports them. Where names clash, the name goes to the
stream label, else to the metadata one, and ``<name>_extracted`` to the parsed one, else to the
metadata one (Loki's precedence: a parsed label is renamed when it arrives, a metadata label
that shares a stream label's name only when the labels are merged). A parser that fails sets
``__error__``/``__error_details__`` and keeps the line. Number, duration, bytes and ip label
filters drop a line without their label, keep a line whose value does not convert (setting
``LabelFilterErr`` with Go's message, unless an error is already set) and otherwise compare,
whatever error the line carries.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

from kms.metrics.promql.model import Matcher

from .ast import (
    AndFilter,
    Decolorize,
    DropKeep,
    IPFilter,
    LabelFilter,
    LabelFilterStage,
    LabelFormat,
    LineFilter,
    LineFormat,
    NumberFilter,
    OrFilter,
    Parser,
    Stage,
    StringFilter,
)
from .errors import LogQLError
from .linefilter import IPMatcher, filter_mask
from .parsers import ParseFailure, make_parser
from .template import compile_template
from .values import go_duration_seconds, go_float, humanize_bytes

__all__ = ["Row", "compile_stages", "compile_label_filter", "merged", "ERROR", "ERROR_DETAILS"]

ERROR, ERROR_DETAILS = "__error__", "__error_details__"
_ANSI = re.compile(
    "[\u001b\u009b][\\[\\]()#;?]*(?:(?:(?:[a-zA-Z\\d]*(?:;[a-zA-Z\\d]*)*)?\u0007)"
    "|(?:(?:\\d{1,4}(?:;\\d{0,4})*)?[\\dA-PRZcf-ntqry=><~]))"
)


@dataclass(slots=True)
class Row:
    """One entry going through the pipeline. ``stream`` and ``metadata`` may be shared with
    other rows: stages copy them before changing them."""

    time_ns: int
    line: str
    stream: dict[str, str]
    metadata: dict[str, str]
    parsed: dict[str, str]

    def get(self, name: str) -> str | None:
        v = self.parsed.get(name)  # (never a stream or metadata name: renamed when added)
        if v is None:
            v = self.stream.get(name)
            if v is None:
                v = self.metadata.get(name)
                if v is None and name.endswith("_extracted") and self.metadata:
                    base = name[:-10]
                    if base in self.stream:
                        v = self.metadata.get(base)
        return v

    def has_error(self) -> bool:
        return ERROR in self.parsed

    def set_error(self, error: str, details: str) -> None:
        if ERROR not in self.parsed:
            self.parsed[ERROR] = error
            self.parsed[ERROR_DETAILS] = details

    def add_parsed(self, labels: dict[str, str]) -> None:
        if not (labels.keys() & self.stream.keys()) and not (labels.keys() & self.metadata.keys()):
            self.parsed.update(labels)  # the common case, without a Python loop
            return
        for k, v in labels.items():
            if k in self.stream or k in self.metadata:
                k += "_extracted"
            self.parsed[k] = v

    def set(self, name: str, value: str) -> None:
        if name in self.stream:
            self.stream = {**self.stream, name: value}
        elif name in self.metadata:
            self.metadata = {**self.metadata, name: value}
        else:
            self.parsed[name] = value

    def delete(self, name: str) -> None:
        self.parsed.pop(name, None)
        if name == ERROR:  # the details exist only alongside an error (as in Loki)
            self.parsed.pop(ERROR_DETAILS, None)
        if name in self.metadata:
            self.metadata = {k: v for k, v in self.metadata.items() if k != name}
        if name in self.stream:
            self.stream = {k: v for k, v in self.stream.items() if k != name}

    def all_labels(self) -> dict[str, str]:
        out = merged(self.stream, self.metadata)
        out.update(self.parsed)  # a parsed <name>_extracted wins over the metadata one
        return out


def merged(stream: dict[str, str], metadata: dict[str, str]) -> dict[str, str]:
    """Stream and structured metadata labels as one set: a metadata label sharing a stream
    label's name becomes ``<name>_extracted``."""
    if not (metadata.keys() & stream.keys()):
        return {**stream, **metadata}
    out = dict(stream)
    for k, v in metadata.items():
        out[k + "_extracted" if k in stream else k] = v
    return out


RowsFn = Callable[[list[Row]], list[Row]]


# ------------------------------------------------------------------------------ label filters


_CMP = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
}


def compile_label_filter(f: LabelFilter) -> Callable[[Row], bool]:
    """A predicate over rows; it may set ``__error__`` on rows it cannot judge (and keep them)."""
    if isinstance(f, StringFilter):
        m: Matcher = f.matcher
        name = m.name
        return lambda r: m.matches(r.get(name) or "")
    if isinstance(f, NumberFilter):
        cmp, name, want = _CMP[f.op], f.name, f.value
        convert = {"duration": go_duration_seconds, "bytes": humanize_bytes}.get(f.kind, go_float)

        def number(r: Row) -> bool:
            text = None if name in (ERROR, ERROR_DETAILS) else r.get(name)  # errors are not numbers
            if text is None:
                return False
            try:
                return cmp(convert(text), want)
            except ValueError as e:
                r.set_error("LabelFilterErr", str(e))  # (the first error stays)
                return True

        return number
    if isinstance(f, IPFilter):
        ipm, name, negate = IPMatcher(f.pattern), f.name, f.op == "!="

        def ip(r: Row) -> bool:
            if r.has_error():
                return True
            text = r.get(name)
            if text is None:
                return False
            return ipm.in_line(text) != negate  # an address anywhere in the value

        return ip
    if isinstance(f, AndFilter):
        left, right = compile_label_filter(f.left), compile_label_filter(f.right)
        return lambda r: left(r) and right(r)
    if isinstance(f, OrFilter):
        left, right = compile_label_filter(f.left), compile_label_filter(f.right)
        return lambda r: left(r) or right(r)
    raise RuntimeError(f"BUG: unknown label filter {f!r}")


# ------------------------------------------------------------------------------ stages


def _per_row(fn: Callable[[Row], bool]) -> RowsFn:
    return lambda rows: [r for r in rows if fn(r)]


def _line_filter(f: LineFilter) -> RowsFn:
    def run(rows: list[Row]) -> list[Row]:
        if not rows:
            return rows
        mask = filter_mask(f, pa.array([r.line for r in rows], type=pa.string())).to_pylist()
        return [r for r, keep in zip(rows, mask, strict=True) if keep]

    return run


def _parser(p: Parser) -> RowsFn:
    parse = make_parser(p)

    def one(r: Row) -> bool:
        try:
            labels = parse(r.line)
        except ParseFailure as e:
            r.set_error(e.error, e.details)
            return True
        line = labels.pop("__line__", None)
        if line is not None:
            r.line = line
        r.add_parsed(labels)
        return True

    return _per_row(one)


def _line_format(s: LineFormat) -> RowsFn:
    t = compile_template(s.template)

    def one(r: Row) -> bool:
        try:
            r.line = t.render(r.all_labels(), r.line, r.time_ns)
        except LogQLError as e:  # a failing template flags the line, as Loki does
            r.set_error("TemplateFormatErr", e.message)
        return True

    return _per_row(one)


def _label_format(s: LabelFormat) -> RowsFn:
    items = [(i.dst, i.value if i.rename else compile_template(i.value), i.rename) for i in s.items]

    def one(r: Row) -> bool:
        before = r.all_labels()
        for dst, src, rename in items:
            if rename:
                value = before.get(src)  # type: ignore[arg-type]
                r.delete(src)  # type: ignore[arg-type]
                if value is None:
                    continue
            else:
                try:
                    value = src.render(before, r.line, r.time_ns)  # type: ignore[union-attr]
                except LogQLError as e:
                    r.set_error("TemplateFormatErr", e.message)
                    continue
            r.set(dst, value)
        return True

    return _per_row(one)


def _drop_keep(s: DropKeep) -> RowsFn:
    names = {i for i in s.items if isinstance(i, str)}
    matchers = [i for i in s.items if isinstance(i, Matcher)]

    def selected(name: str, value: str) -> bool:
        return name in names or any(m.name == name and m.matches(value) for m in matchers)

    def one(r: Row) -> bool:
        for name, value in r.all_labels().items():
            if selected(name, value) != s.keep:
                r.delete(name)
        return True

    return _per_row(one)


def _decolorize(r: Row) -> bool:
    r.line = _ANSI.sub("", r.line)
    return True


def compile_stage(stage: Stage) -> RowsFn:
    if isinstance(stage, LineFilter):
        return _line_filter(stage)
    if isinstance(stage, Parser):
        return _parser(stage)
    if isinstance(stage, LabelFilterStage):
        return _per_row(compile_label_filter(stage.filter))
    if isinstance(stage, LineFormat):
        return _line_format(stage)
    if isinstance(stage, LabelFormat):
        return _label_format(stage)
    if isinstance(stage, DropKeep):
        return _drop_keep(stage)
    if isinstance(stage, Decolorize):
        return _per_row(_decolorize)
    raise RuntimeError(f"BUG: unknown stage {stage!r}")


def compile_stages(stages: tuple[Stage, ...]) -> RowsFn:
    """One function running ``stages`` in order over a list of rows."""
    fns = [compile_stage(s) for s in stages]

    def run(rows: list[Row]) -> list[Row]:
        for fn in fns:
            if not rows:
                break
            rows = fn(rows)
        return rows

    return run
