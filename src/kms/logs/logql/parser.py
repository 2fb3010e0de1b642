"""Text -> ``Expr``: the lark LALR parser over ``logql.lark`` and the tree builder.

Like Loki's grammar actions, building compiles selector and label-filter regexes, folds
binary operations between two literals into one literal, and checks ``label_replace``'s
regex; the remaining checks Loki runs after parsing live in ``validate``.
"""

from __future__ import annotations

import functools
import math
import re
from importlib import resources

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from kms.metrics.promql.model import Matcher, compile_go_regex

from .ast import (
    AndFilter,
    BinOp,
    Decolorize,
    DropKeep,
    Expr,
    FilterValue,
    Grouping,
    IPFilter,
    LabelFilter,
    LabelFilterStage,
    LabelFmt,
    LabelFormat,
    LabelReplace,
    LineFilter,
    LineFormat,
    Literal,
    LogRange,
    LogSelector,
    NumberFilter,
    OrFilter,
    Parser,
    RangeAggregation,
    StringFilter,
    Unwrap,
    Variants,
    VectorAggregation,
    VectorLiteral,
    VectorMatching,
)
from .errors import LogQLError, LogQLParseError
from .lexer import TOKEN_TEXT, LogQLLexer, parse_bytes, parse_duration

__all__ = ["parse_expr"]

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _error_at(tok: object, msg: str) -> LogQLParseError:
    return LogQLParseError(msg, getattr(tok, "line", 0) or 0, getattr(tok, "column", 0) or 0)


def _matcher(name: Token, op: Token, value: Token) -> Matcher:
    try:
        return Matcher(str(name.value), str(op.value), str(value.value))
    except re.error as e:
        raise _error_at(value, f"error parsing regexp: {e}") from None


def _fold(op: str, a: float, b: float, return_bool: bool) -> float:
    """A binary operation between two literals, as Loki folds it at parse time."""
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / b if b != 0 else math.nan  # (Loki: NaN for a zero divisor)
    if op == "%":
        return math.fmod(a, b) if b != 0 else math.nan
    if op == "^":
        try:
            return a**b
        except (OverflowError, ZeroDivisionError):
            return math.inf
    res = {"==": a == b, "!=": a != b, ">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op]
    return 1.0 if res else 0.0


_INT = re.compile(r"^[+-]?\d+$")


class _Num(float):
    """A number literal that remembers its text (k of topk must be an integer as written)."""

    text: str = ""


_LF_PREC = {"OR": 1, "AND": 2}  # "," and juxtaposition have none: yacc then always shifts


def _group_filters(seq: list) -> LabelFilter:
    """``a op b op c ...`` grouped as Loki's yacc parser does: a reduction happens only when
    both operators have a precedence and the stacked one binds at least as tightly."""
    vals: list = [seq[0]]
    ops: list[str] = []

    def reduce() -> None:
        op, right, left = ops.pop(), vals.pop(), vals.pop()
        vals.append(OrFilter(left, right) if op == "OR" else AndFilter(left, right))

    for k in range(1, len(seq), 2):
        op = seq[k]
        while ops and op in _LF_PREC and ops[-1] in _LF_PREC and _LF_PREC[ops[-1]] >= _LF_PREC[op]:
            reduce()
        ops.append(op)
        vals.append(seq[k + 1])
    while ops:
        reduce()
    return vals[0]


class _Builder(Transformer):
    """Builds AST nodes bottom-up while the LALR parser reduces (errors surface in order)."""

    def start(self, c):
        return c[0]

    def parens(self, c):
        return c[1]

    # -- selectors and pipelines
    def selector(self, c):
        return tuple(c[1])

    def matchers(self, c):
        return [x for x in c if isinstance(x, Matcher)]

    def matcher(self, c):
        return _matcher(c[0], c[1], c[2])

    def log_plain(self, c):
        return LogSelector(c[0])

    def log_piped(self, c):
        return LogSelector(c[0], tuple(c[1]))

    def pipeline(self, c):
        return list(c)

    def pipe(self, c):
        return c[1]

    def line_filter(self, c):
        return LineFilter(str(c[0].value), tuple(x for x in c[1:] if isinstance(x, FilterValue)))

    def filter_value(self, c):
        return FilterValue(c[0].value)

    def filter_ip(self, c):
        return FilterValue(c[2].value, is_ip=True)

    def json_parser(self, c):
        return Parser("json", params=tuple(c[1]) if len(c) > 1 else ())

    def logfmt_parser(self, c):
        flags = {t.value for t in c if isinstance(t, Token) and t.type == "PARSER_FLAG"}
        params = c[-1] if isinstance(c[-1], list) else []
        return Parser("logfmt", params=tuple(params), strict="--strict" in flags,
                      keep_empty="--keep-empty" in flags)

    def regexp_parser(self, c):
        return Parser("regexp", arg=c[1].value)

    def pattern_parser(self, c):
        return Parser("pattern", arg=c[1].value)

    def unpack_parser(self, c):
        return Parser("unpack")

    def extractions(self, c):
        return [x for x in c if isinstance(x, tuple)]

    def extraction(self, c):
        name = c[0].value
        return (name, c[2].value if len(c) == 3 else name)

    def label_filter_stage(self, c):
        return LabelFilterStage(c[1])

    def line_format(self, c):
        return LineFormat(c[2].value)

    def label_format(self, c):
        return LabelFormat(tuple(x for x in c if isinstance(x, LabelFmt)))

    def label_fmt(self, c):
        return LabelFmt(c[0].value, c[2].value, rename=c[2].type == "IDENTIFIER")

    def decolorize(self, c):
        return Decolorize()

    def drop(self, c):
        return DropKeep(False, tuple(x for x in c[2:] if not isinstance(x, Token) or x.type != "COMMA"))

    def keep(self, c):
        return DropKeep(True, tuple(x for x in c[2:] if not isinstance(x, Token) or x.type != "COMMA"))

    def drop_item(self, c):
        x = c[0]
        return x.value if isinstance(x, Token) else x

    # -- label filters
    def lf_string(self, c):
        return StringFilter(c[0])

    def lf_ip(self, c):
        return IPFilter(c[0].value, c[1].value, c[4].value)

    def lf_number(self, c):
        name, op, v = c[0].value, ("==" if c[1] == "=" else c[1]), c[2]
        if isinstance(v, Token) and v.type == "DURATION":
            return NumberFilter(name, op, parse_duration(v.value) / 1e9, "duration", v.value)  # type: ignore[operator]
        if isinstance(v, Token) and v.type == "BYTES":
            return NumberFilter(name, op, parse_bytes(v.value), "bytes", v.value)  # type: ignore[arg-type]
        return NumberFilter(name, op, v, "number")

    def cmp_op(self, c):
        return c[0].value

    def lf_join(self, c):
        return c[0].type if c else "COMMA"

    def label_filter(self, c):
        return _group_filters(c)

    def param_number(self, c):
        v = _Num(self.signed_number(c))
        v.text = c[0].value
        return v

    def signed_number(self, c):
        tok = c[-1]
        try:
            v = float.fromhex(tok.value) if tok.value[:2] in ("0x", "0X") else float(tok.value)
        except ValueError:
            raise _error_at(tok, f"syntax error: invalid number {tok.value}") from None
        return -v if c[0].type == "SUB" else v

    # -- ranges
    def unwrap_plain(self, c):
        return Unwrap(c[2].value)

    def unwrap_conv(self, c):
        return Unwrap(c[4].value, conv=c[2].value)

    def range_stages(self, c):
        return list(c)

    def unwrap_tail(self, c):
        if len(c) == 1:
            return [c[0]]
        return c[0] + [LabelFilterStage(c[2])]

    def offset(self, c):
        return parse_duration(c[1].value)

    def range_pre(self, c):
        return self._log_range(c)

    range_post = range_pre

    def _log_range(self, c) -> LogRange:
        sel = next(x for x in c if isinstance(x, tuple))
        rng = next(x for x in c if isinstance(x, Token) and x.type == "RANGE")
        offset = next((x for x in c if isinstance(x, int) and not isinstance(x, Token)), 0)
        stages: list = []
        unwrap: Unwrap | None = None
        for item in next((x for x in c if isinstance(x, list)), []):
            if isinstance(item, Unwrap):
                if unwrap is not None:
                    raise _error_at(rng, "syntax error: unexpected unwrap")
                unwrap = item
            elif unwrap is None:
                stages.append(item)
            elif isinstance(item, LabelFilterStage):
                unwrap = Unwrap(unwrap.name, unwrap.conv, unwrap.post_filters + (item.filter,))
            else:
                raise _error_at(rng, "syntax error: only label filters may follow unwrap")
        return LogRange(LogSelector(sel, tuple(stages)), rng.value, offset, unwrap)

    def variants(self, c):
        exprs = tuple(x for x in c if isinstance(x, Expr))
        rng = next(x for x in c if isinstance(x, LogRange))
        return Variants(exprs, rng)

    # -- metrics
    def grouping(self, c):
        labels = next((x for x in c if isinstance(x, list)), [])
        return Grouping(c[0].type == "WITHOUT", tuple(labels))

    def labels(self, c):
        return [t.value for t in c if t.type == "IDENTIFIER"]

    def range_agg(self, c):
        op = c[0].value
        param = float(c[2]) if isinstance(c[2], float) else None
        rng = next(x for x in c if isinstance(x, LogRange))
        grouping = c[-1] if isinstance(c[-1], Grouping) else None
        return RangeAggregation(op, rng, param, grouping)

    def vector_agg(self, c):
        op = c[0].value
        groupings = [x for x in c if isinstance(x, Grouping)]
        if len(groupings) > 1:
            raise _error_at(c[0], "syntax error: unexpected grouping")
        inner = [x for x in c[1:] if not isinstance(x, Token | Grouping)]
        param = inner[0] if len(inner) == 2 else None
        if param is not None and op in ("topk", "bottomk", "approx_topk") and not _INT.match(param.text):
            raise _error_at(c[0], f"invalid parameter {op}({param.text},")  # Loki reads k with Atoi
        param = float(param) if param is not None else None
        return VectorAggregation(op, inner[-1], groupings[0] if groupings else None, param)

    def literal(self, c):
        return Literal(c[0])

    def vector_literal(self, c):
        return VectorLiteral(float(c[2]))

    def label_replace(self, c):
        expr = c[2]
        dst, repl, src, rx = (c[i].value for i in (4, 6, 8, 10))
        try:
            compile_go_regex("^(?:" + rx + ")$")
        except re.error as e:
            raise _error_at(c[10], f"invalid regex in label_replace: {e}") from None
        if not _LABEL_NAME.match(dst):
            raise _error_at(c[4], f"invalid destination label name in label_replace: {dst}")
        return LabelReplace(expr, dst, repl, src, rx)

    def bin_mod(self, c):
        return_bool = any(isinstance(x, Token) and x.type == "BOOL" for x in c)
        matching = next((x for x in c if isinstance(x, VectorMatching)), VectorMatching())
        return return_bool, matching

    def matching(self, c):
        labels = next((x for x in c if isinstance(x, list)), [])
        card, include = "one-to-one", ()
        if isinstance(c[-1], tuple):
            card, include = c[-1]
        return VectorMatching(c[0].type == "ON", tuple(labels), card, tuple(include), explicit=True)

    def group_mod(self, c):
        labels = next((x for x in c if isinstance(x, list)), [])
        return ("many-to-one" if c[0].type == "GROUP_LEFT" else "one-to-many", tuple(labels))

    def binop(self, c):
        lhs, tok, (return_bool, matching), rhs = c
        op = tok.value
        if return_bool and op not in ("==", "!=", ">", ">=", "<", "<="):
            raise _error_at(tok, "bool modifier can only be used on comparison operators")
        if op in ("or", "and", "unless"):
            if isinstance(lhs, Literal) or isinstance(rhs, Literal):
                leg = "left" if isinstance(lhs, Literal) else "right"
                raise _error_at(tok, f"unexpected literal for {leg} leg of logical/set binary operation ({op})")
        if isinstance(lhs, Literal) and isinstance(rhs, Literal):
            return Literal(_fold(op, lhs.value, rhs.value, return_bool))
        return BinOp(op, lhs, rhs, return_bool, matching)


@functools.cache
def _parser() -> Lark:
    grammar = resources.files(__package__).joinpath("logql.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", lexer=LogQLLexer, transformer=_Builder(), start="start")


_EXPECT = {"IDENTIFIER": "IDENTIFIER", "STRING": "STRING", "NUMBER": "NUMBER", "DURATION": "DURATION",
           "BYTES": "BYTES", "RANGE": "RANGE"}


def _describe(tok: Token) -> str:
    if tok.type in ("IDENTIFIER", "STRING", "NUMBER", "DURATION", "BYTES", "RANGE"):
        return tok.type
    return TOKEN_TEXT.get(tok.type, tok.type)


def parse_expr(text: str):
    """Parse (grammar and parse-time checks only); raises LogQLParseError."""
    try:
        return _parser().parse(text)
    except UnexpectedToken as e:
        tok = e.token
        msg = f"syntax error: unexpected {_describe(tok)}"
        expected = sorted({_EXPECT.get(x, TOKEN_TEXT.get(x, x)) for x in (e.accepts or e.expected or ())})
        if 0 < len(expected) <= 3:  # like yacc, name the alternatives only when there are few
            msg += ", expecting " + " or ".join(expected)
        if tok.type == "$END":
            lines = text.split("\n")
            raise LogQLParseError(msg, len(lines), len(lines[-1]) + 1) from None
        raise _error_at(tok, msg) from None
    except VisitError as e:
        if isinstance(e.orig_exc, LogQLError):
            raise e.orig_exc from None
        raise
    except (UnexpectedCharacters, UnexpectedEOF, UnexpectedInput) as e:  # not raised with our lexer
        raise LogQLParseError(f"syntax error: {e}") from None
