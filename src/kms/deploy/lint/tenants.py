"""The tenant check across files: every backend must be written and read with the same
X-Scope-OrgID, or dashboards stay empty (or requests fail with 401 "no org id")."""

from __future__ import annotations

from kms.deploy.lint.findings import Doc

__all__ = ["Tenants"]


class Tenants:
    """Collects (backend, tenant, where) of writers and readers, then compares them."""

    def __init__(self) -> None:
        self.writers: list[tuple[str, str | None, Doc, str]] = []
        self.readers: list[tuple[str, str | None, Doc, str]] = []

    def write(self, backend: str, tenant: str | None, doc: Doc, path: str) -> None:
        self.writers.append((backend, tenant or None, doc, path))

    def read(self, backend: str, tenant: str | None, doc: Doc, path: str) -> None:
        self.readers.append((backend, tenant or None, doc, path))

    def check(self) -> None:
        # Mimir and Loki require the header by default; a writer without it gets 401.
        for backend, tenant, doc, path in self.writers:
            if tenant is None and backend in ("mimir", "loki"):
                doc.error("tenant-missing", path, f"writes to {backend} without X-Scope-OrgID; {backend} is multi-tenant "
                          "by default and answers 401 \"no org id\"", "add headers: {X-Scope-OrgID: <tenant>}")
        written: dict[str, set[str | None]] = {}
        for backend, tenant, _, _ in self.writers:
            written.setdefault(backend, set()).add(tenant)
        # The metrics generator writes into Mimir as well: Tempo's readers follow Mimir's writers.
        for backend, tenant, doc, path in self.readers:
            if tenant is None and backend in ("mimir", "loki"):
                doc.warn("tenant-reader-missing", path, f"reads {backend} without X-Scope-OrgID; multi-tenant {backend} "
                         "(the default) answers 401 \"no org id\"", "add jsonData.httpHeaderName1: X-Scope-OrgID and "
                         "secureJsonData.httpHeaderValue1: <tenant>, unless multitenancy is off")
                continue
            if backend not in written:
                continue
            if tenant not in written[backend]:
                want = sorted(t or "<none>" for t in written[backend])
                doc.error("tenant-mismatch", path, f"reads {backend} as tenant {tenant or '<none>'!r} but the writers "
                          f"use {want}: the data source shows nothing", f"send X-Scope-OrgID: {want[0]}")
