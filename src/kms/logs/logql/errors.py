"""LogQL errors: every refusal of a query is a ``LogQLError`` (a ``BadInput``, HTTP 400).

Parse errors read like Loki's: ``parse error at line 1, col 5: syntax error: unexpected ...``.
"""

from __future__ import annotations

from kms.errors import BadInput

__all__ = ["LogQLError", "LogQLParseError", "PipelineError"]


class LogQLError(BadInput):
    """A query that does not parse, does not validate, or cannot be run."""

    reason = "logql"


class LogQLParseError(LogQLError):
    """A syntax error or a refusal of Loki's post-parse checks; ``line``/``col`` are 1-based,
    0 when the error has no position."""

    reason = "logql_parse"

    def __init__(self, msg: str, line: int = 0, col: int = 0):
        text = f"parse error at line {line}, col {col}: {msg}" if line or col else f"parse error : {msg}"
        super().__init__(text)
        self.line, self.col, self.detail = line, col, msg


class PipelineError(LogQLError):
    """A metric query met a sample whose pipeline set ``__error__`` and nothing filtered it out."""

    reason = "logql_pipeline"
