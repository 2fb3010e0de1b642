"""TraceQL parser/validator conformance against the shared Tempo-derived query lists.

One runner per file computes the pass rate, prints it and requires 100% (failures listed).
See /work/shared/conformance/traceql/README.md for what each file means.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kms.traces import traceql
from kms.traces.traceql import TraceQLError, TraceQLParseError, TraceQLUnsupported
from kms.traces.traceql.parser import parse_query

CONFORMANCE = Path("/work/shared/conformance/traceql")


def _queries(name: str) -> list[str]:
    text = (CONFORMANCE / name).read_text(encoding="utf-8")
    return [line for line in text.split("\n") if line != ""]


def _outcome(q: str) -> str:
    """parse | validate | unsupported | ok (anything else escapes as a crash)."""
    try:
        parse_query(q)
    except TraceQLParseError:
        return "parse"
    try:
        traceql.parse(q)
    except TraceQLUnsupported:
        return "unsupported"
    except TraceQLError:
        return "validate"
    return "ok"


WANT = {
    "parse-ok.txt": {"ok"},
    "parse-fail.txt": {"parse"},
    "validate-fail.txt": {"validate"},
    "unsupported.txt": {"unsupported"},
    "parse-only-ok.txt": {"ok", "validate", "unsupported"},  # the grammar accepts; validation may refuse
}


@pytest.mark.skipif(not CONFORMANCE.exists(), reason="shared conformance lists not available")
@pytest.mark.parametrize("name", sorted(WANT))
def test_conformance_file(name: str) -> None:
    queries = _queries(name)
    failures = []
    for q in queries:
        try:
            got = _outcome(q)
        except Exception as e:  # noqa: BLE001 - a crash is a failure to report, not to raise
            got = f"crash: {e!r}"
        if got not in WANT[name]:
            failures.append(f"{q!r}: {got}")
    rate = (len(queries) - len(failures)) / len(queries)
    print(f"{name}: {len(queries) - len(failures)}/{len(queries)} ({rate:.0%})")
    assert not failures, f"{name}: {rate:.1%} pass; failures:\n" + "\n".join(failures)


@pytest.mark.parametrize("name", ["parse-fail.txt", "validate-fail.txt", "unsupported.txt"])
def test_refusals_are_bad_input(name: str) -> None:
    """Every refusal is a TraceQLError (BadInput, HTTP 400) with a message."""
    if not CONFORMANCE.exists():
        pytest.skip("shared conformance lists not available")
    from kms.errors import BadInput, http_status

    for q in _queries(name):
        with pytest.raises(TraceQLError) as info:
            traceql.parse(q)
        assert isinstance(info.value, BadInput) and http_status(info.value) == 400
        assert str(info.value)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("{ .a } | { .b", "parse error at line 1, col 14: syntax error: unexpected $end"),
        ("{ .a | .b }", "parse error at line 1, col 6: syntax error: unexpected |"),
        ("{ .a = 1 }\n| { .b = }", "parse error at line 2, col 10: syntax error: unexpected }"),
        ("{ .a = x }", "parse error at line 1, col 8: unknown identifier: x"),
        ('{ ."foo }', 'parse error at line 1, col 4: unexpected EOF, expecting "'),
        ("", "parse error : syntax error: unexpected $end"),
        ("{ status }", "span filter field expressions must resolve to a boolean: { status }"),
        ('{ span.foo =~ "[" }', "invalid regex: `[`"),
        ("{ span:status = nil }", "span:status=nil is not valid because intrinsics cannot be nil"),
        ("{ parent.a = 1 }", "parent not yet supported"),
        ("{} | rate() | topk(0)", "limit must be greater than 0"),
    ],
)
def test_error_messages(query: str, message: str) -> None:
    with pytest.raises(TraceQLError) as info:
        traceql.parse(query)
    assert str(info.value).replace("span:status", "status") == message.replace("span:status", "status")
