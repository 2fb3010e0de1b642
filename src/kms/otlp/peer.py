"""The address an OTLP request came from, for processors that find its sender by it (the
``k8sattributes`` processor's ``connection`` association). Set by the OTLP listeners for the
duration of one export; read where the request becomes a pipeline item."""

from __future__ import annotations

from contextvars import ContextVar

__all__ = ["PEER", "grpc_peer_ip"]

#: the sending client's IP address, "" when unknown
PEER: ContextVar[str] = ContextVar("kms_otlp_peer", default="")


def grpc_peer_ip(peer: str | None) -> str:
    """The IP of gRPC's ``context.peer()`` (``ipv4:10.0.0.5:4711``, ``ipv6:[::1]:4711``)."""
    if not peer:
        return ""
    kind, _, rest = peer.partition(":")
    if kind == "ipv6" and rest.startswith("["):
        return rest[1 : rest.find("]")]
    if kind == "ipv4":
        return rest.rpartition(":")[0]
    return ""
