"""Rule groups set through the ruler API, per tenant and namespace, kept on disk.

Layout: ``<dir>/<api>/<tenant>/<namespace, percent-encoded>.yaml`` holding ``groups: [...]`` in
rule-file format, where ``api`` is ``prometheus`` (Mimir's API) or ``loki``. Writes go to a
temporary file that is renamed into place, so a crash leaves the old or the new file.
Locking: one lock for all writes; reads parse the files each time (they are small).
"""

from __future__ import annotations

import os
import threading
import urllib.parse
from pathlib import Path

import yaml

__all__ = ["RuleStore"]


class RuleStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self._lock = threading.Lock()

    def _dir(self, api: str, tenant: str) -> Path:
        return self.root / api / urllib.parse.quote(tenant, safe="")

    def namespaces(self, api: str, tenant: str) -> dict[str, list[dict]]:
        """``{namespace: [group dict, ...]}`` of one tenant."""
        d = self._dir(api, tenant)
        out: dict[str, list[dict]] = {}
        if not d.is_dir():
            return out
        for f in sorted(d.glob("*.yaml")):
            doc = yaml.safe_load(f.read_text()) or {}
            if doc.get("groups"):
                out[urllib.parse.unquote(f.stem)] = doc["groups"]
        return out

    def tenants(self, api: str) -> list[str]:
        d = self.root / api
        return sorted(urllib.parse.unquote(p.name) for p in d.iterdir() if p.is_dir()) if d.is_dir() else []

    def set_group(self, api: str, tenant: str, namespace: str, group: dict) -> None:
        with self._lock:
            old = self.namespaces(api, tenant).get(namespace, [])
            if any(g.get("name") == group["name"] for g in old):  # replace in place, keeping the order
                groups = [group if g.get("name") == group["name"] else g for g in old]
            else:
                groups = [*old, group]
            self._write(api, tenant, namespace, groups)

    def delete_group(self, api: str, tenant: str, namespace: str, name: str) -> bool:
        with self._lock:
            groups = self.namespaces(api, tenant).get(namespace, [])
            kept = [g for g in groups if g.get("name") != name]
            if len(kept) == len(groups):
                return False
            self._write(api, tenant, namespace, kept)
            return True

    def delete_namespace(self, api: str, tenant: str, namespace: str) -> bool:
        with self._lock:
            f = self._dir(api, tenant) / (urllib.parse.quote(namespace, safe="") + ".yaml")
            if not f.exists():
                return False
            f.unlink()
            return True

    def _write(self, api: str, tenant: str, namespace: str, groups: list[dict]) -> None:
        d = self._dir(api, tenant)
        d.mkdir(parents=True, exist_ok=True)
        f = d / (urllib.parse.quote(namespace, safe="") + ".yaml")
        if not groups:
            f.unlink(missing_ok=True)
            return
        tmp = f.with_suffix(".tmp")
        with open(tmp, "w") as fh:  # a fresh temporary file, renamed over the old one below
            yaml.safe_dump({"groups": groups}, fh, sort_keys=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, f)
