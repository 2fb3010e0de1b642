"""Which tenant a request belongs to (the ``X-Scope-OrgID`` header)."""

from __future__ import annotations

import re

from kms.errors import BadInput, KmsError

__all__ = ["Unauthorized", "TenantResolver", "validate_tenant", "validate_tenant_id", "UPSTREAM_DEFAULT_TENANTS",
           "TENANT_RE"]

# Mimir's tenant id rules; they also keep ids safe as storage key components.
TENANT_RE = re.compile(r"^[A-Za-z0-9!\-_.*'()]{1,150}$")

#: Mimir, Loki and Tempo's own single-tenant names; all map to our default tenant so data
#: written by tools configured for any of them lands in one place.
UPSTREAM_DEFAULT_TENANTS = frozenset({"anonymous", "fake", "single-tenant"})


def validate_tenant(tenant: str) -> str:
    """Return ``tenant`` if it is a valid tenant id (Mimir's rules), else raise BadInput."""
    if not isinstance(tenant, str) or not TENANT_RE.match(tenant) or tenant in (".", ".."):
        raise BadInput(
            f"invalid tenant id {tenant!r}: use 1-150 characters of A-Z a-z 0-9 ! - _ . * ' ( ), not '.' or '..'",
            reason="invalid_tenant",
        )
    return tenant


class Unauthorized(KmsError):
    reason = "no_org_id"


def validate_tenant_id(t: str) -> str:
    """Mimir's rules (the store's, which also keep ids safe as key components), and Mimir's
    reserved ``__mimir_cluster``."""
    if t == "__mimir_cluster":
        raise BadInput("invalid tenant id '__mimir_cluster': it is reserved", reason="invalid_tenant")
    return validate_tenant(t)


class TenantResolver:
    def __init__(self, default_tenant: str = "anonymous", required: bool = False):
        self.default = validate_tenant_id(default_tenant)
        self.required = required

    def __call__(self, header: str | None) -> str:
        """The tenant for a request; raises Unauthorized (401) when a required header is missing."""
        if not header:
            if self.required:
                raise Unauthorized("no org id: set the X-Scope-OrgID header")
            return self.default
        t = header.strip()
        if t in UPSTREAM_DEFAULT_TENANTS:
            return self.default
        return validate_tenant_id(t)

    def for_read(self, header: str | None) -> list[str]:
        """Reads accept ``a|b`` and see the union of those tenants."""
        if header and "|" in header:
            return sorted({self(p) for p in header.split("|") if p.strip()})
        return [self(header)]
