"""Postgres and Redis exporters (one chart release each), scraped through their ServiceMonitors."""

from __future__ import annotations

from kms.deploy.model import PostgresExporter, RedisExporter, Stack

__all__ = ["exporter_values"]


def _postgres(e: PostgresExporter) -> dict:
    ds: dict = {"host": e.host, "port": str(e.port), "user": e.user, "database": e.database, "sslmode": e.sslmode}
    if e.password_secret:
        ds["passwordSecret"] = {"name": e.password_secret, "key": "password"}
    return {"config": {"datasource": ds}, "serviceMonitor": {"enabled": True}}


def _redis(e: RedisExporter) -> dict:
    values: dict = {"redisAddress": e.address, "serviceMonitor": {"enabled": True}}
    if e.password_secret:
        values["auth"] = {"enabled": True, "secret": {"name": e.password_secret, "key": "password"}}
    return values


def exporter_values(stack: Stack) -> dict[str, tuple[str, dict]]:
    """Dependency alias -> (chart alias in CHARTS, values) for every configured exporter."""
    out: dict[str, tuple[str, dict]] = {}
    for p in stack.exporters.postgres:
        out[f"postgres-{p.name}"] = ("postgres-exporter", _postgres(p))
    for r in stack.exporters.redis:
        out[f"redis-{r.name}"] = ("redis-exporter", _redis(r))
    return out
