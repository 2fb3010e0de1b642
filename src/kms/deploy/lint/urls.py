"""Which backend a URL points at, and S3 endpoint form checks, shared by the chart checks."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["backend_of", "path_of", "s3_endpoint_problem", "in_cluster"]


def backend_of(url: str) -> str:
    """mimir | loki | tempo | kms | prometheus | '' from the host name."""
    host = urlsplit(url if "://" in url else f"//{url}").hostname or ""
    for name in ("mimir", "loki", "tempo"):
        if name in host:
            return name
    if "prometheus" in host:
        return "prometheus"
    return "kms" if re.match(r"^kms[-.]|^kms$", host) else ""


def path_of(url: str) -> str:
    return urlsplit(url if "://" in url else f"//{url}").path.rstrip("/")


def in_cluster(endpoint: str) -> bool:
    host = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}").hostname or ""
    return host.endswith((".svc", ".svc.cluster.local")) or "." not in host


def s3_endpoint_problem(endpoint: str) -> str:
    """Why an S3 ``endpoint`` (host:port form) is wrong, or ''."""
    if "://" in endpoint:
        return f"{endpoint!r} has a scheme; the engine wants host:port and fails with \"Endpoint url cannot have fully qualified paths\""
    if "/" in endpoint:
        return f"{endpoint!r} has a path or trailing slash; the engine wants host:port"
    return ""
