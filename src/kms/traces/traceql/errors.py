"""TraceQL errors: every refusal of a query is a ``TraceQLError`` (a ``BadInput``, HTTP 400).

Messages follow Tempo's wording without its HTTP prefix (``HTTP_PREFIX``), for example
``parse error at line 1, col 14: syntax error: unexpected $end`` or
``parent not yet supported``; the HTTP layer prepends the prefix once.
"""

from __future__ import annotations

from kms.errors import BadInput

__all__ = ["HTTP_PREFIX", "TraceQLError", "TraceQLParseError", "TraceQLUnsupported"]

#: What Tempo's query-frontend puts before the message of a refused query.
HTTP_PREFIX = "invalid TraceQL query: "


class TraceQLError(BadInput):
    """A query that does not parse, does not validate, or cannot be run."""

    reason = "traceql"


class TraceQLParseError(TraceQLError):
    """A syntax (grammar or lexer) error; ``line``/``col`` are 1-based, 0 when unknown."""

    reason = "traceql_parse"

    def __init__(self, msg: str, line: int = 0, col: int = 0):
        text = f"parse error at line {line}, col {col}: {msg}" if line or col else f"parse error : {msg}"
        super().__init__(text)
        self.line, self.col, self.detail = line, col, msg


class TraceQLUnsupported(TraceQLError):
    """Valid TraceQL that this engine (like Tempo) does not run yet."""

    reason = "traceql_unsupported"

    def __init__(self, feature: str):
        super().__init__(f"{feature} not yet supported")
        self.feature = feature
