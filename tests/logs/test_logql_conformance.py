"""LogQL parser/validator conformance against the shared Loki-derived query lists.

One runner per file computes the pass rate, prints it and requires 100% (failures listed).
See /work/shared/conformance/logql/README.md: ``parse-ok.txt`` lines are accepted by Loki's
``ParseExpr``; ``parse-fail.txt`` lines are refused by its grammar or its post-parse checks.
Every accepted query must also print (``str``) to text that parses back to the same tree.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kms.logs.logql import LogQLParseError, parse

CONFORMANCE = Path("/work/shared/conformance/logql")
WANT_OK = {"parse-ok.txt": True, "parse-fail.txt": False}


def _queries(name: str) -> list[str]:
    text = (CONFORMANCE / name).read_text(encoding="utf-8")
    return [line.replace("\\n", "\n") for line in text.split("\n") if line.strip()]


def _accepted(q: str) -> bool | str:
    try:
        parse(q)
    except LogQLParseError:
        return False
    except Exception as e:  # noqa: BLE001 - a crash is a failure to report, not to raise
        return f"crash: {e!r}"
    return True


@pytest.mark.skipif(not CONFORMANCE.exists(), reason="shared conformance lists not available")
@pytest.mark.parametrize("name", sorted(WANT_OK))
def test_conformance_file(name: str) -> None:
    queries = _queries(name)
    failures = [f"{q!r}: {got}" for q in queries if (got := _accepted(q)) is not WANT_OK[name]]
    passed = len(queries) - len(failures)
    print(f"\nLogQL {name}: {passed}/{len(queries)} ({100.0 * passed / len(queries):.1f}%)")
    assert not failures, "\n".join(failures)


@pytest.mark.skipif(not CONFORMANCE.exists(), reason="shared conformance lists not available")
def test_accepted_queries_round_trip() -> None:
    bad = []
    for q in _queries("parse-ok.txt"):
        expr = parse(q)
        try:
            again = parse(str(expr))
        except LogQLParseError as e:
            bad.append(f"{q!r} -> {str(expr)!r}: {e}")
            continue
        if again != expr:
            bad.append(f"{q!r} -> {str(expr)!r}: different tree")
    assert not bad, "\n".join(bad)
