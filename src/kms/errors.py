"""The exception tree, translated to status codes in one place (``http_status``)::

    KmsError
     +-- BadInput         malformed or invalid request data        -> 400
     |    +-- TooLarge    body over the configured size limit      -> 413
     |    (reason unsupported_media_type -> 415)
     +-- (reason no_org_id: X-Scope-OrgID missing in multi-tenant mode -> 401)
     +-- LimitExceeded    a tenant limit or memory pressure        -> 429 (retry later)
     +-- NotFound         the thing asked for does not exist       -> 404
     +-- Unavailable      not ready, shutting down, backend down   -> 503

Every refusal carries a short ``reason`` used as the label of the discarded counter.
A broken invariant raises ``RuntimeError("BUG: ...")`` instead: that is never the caller's fault.
"""

from __future__ import annotations

__all__ = [
    "KmsError",
    "BadInput",
    "TooLarge",
    "LimitExceeded",
    "NotFound",
    "Unavailable",
    "http_status",
    "grpc_status_name",
]


class KmsError(Exception):
    reason = "error"

    def __init__(self, message: str, *, reason: str | None = None, retry_after_s: float | None = None):
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.retry_after_s = retry_after_s


class BadInput(KmsError):
    reason = "bad_input"


class TooLarge(BadInput):
    reason = "too_large"


class LimitExceeded(KmsError):
    reason = "limit"


class NotFound(KmsError):
    reason = "not_found"


class Unavailable(KmsError):
    reason = "unavailable"


_HTTP = {TooLarge: 413, BadInput: 400, LimitExceeded: 429, NotFound: 404, Unavailable: 503}
_HTTP_BY_REASON = {"no_org_id": 401, "unsupported_media_type": 415}
_GRPC_BY_REASON = {"no_org_id": "UNAUTHENTICATED"}
_GRPC = {
    TooLarge: "INVALID_ARGUMENT",
    BadInput: "INVALID_ARGUMENT",
    LimitExceeded: "RESOURCE_EXHAUSTED",
    NotFound: "NOT_FOUND",
    Unavailable: "UNAVAILABLE",
}


def _lookup(err: BaseException, table: dict, default):
    for cls in type(err).__mro__:
        if cls in table:
            return table[cls]
    return default


def http_status(err: BaseException) -> int:
    """The HTTP status for an error; anything not a KmsError is a 500."""
    reason = getattr(err, "reason", None)
    if reason in _HTTP_BY_REASON:
        return _HTTP_BY_REASON[reason]
    return _lookup(err, _HTTP, 500)


def grpc_status_name(err: BaseException) -> str:
    """The gRPC status code name (``grpc.StatusCode`` member) for an error."""
    reason = getattr(err, "reason", None)
    if reason in _GRPC_BY_REASON:
        return _GRPC_BY_REASON[reason]
    return _lookup(err, _GRPC, "INTERNAL")
