"""List and watch Kubernetes resources over the API's JSON HTTP interface."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
from collections.abc import Iterator

import httpx

from kms.kube.credentials import KubeCredentials

__all__ = ["KubeClient", "KubeError", "resource_path"]


class KubeError(Exception):
    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


def resource_path(group_version: str, plural: str, namespace: str | None = None) -> str:
    """``v1`` → /api/v1/…, ``monitoring.coreos.com/v1`` → /apis/monitoring.coreos.com/v1/…"""
    root = "/api/" + group_version if "/" not in group_version else "/apis/" + group_version
    return f"{root}/namespaces/{namespace}/{plural}" if namespace else f"{root}/{plural}"


class KubeClient:
    def __init__(self, creds: KubeCredentials, timeout_s: float = 30.0):
        self.creds = creds
        verify: ssl.SSLContext | bool
        if creds.insecure:
            verify = False
        else:
            verify = ssl.create_default_context(cafile=creds.ca_file or None)
            if creds.client_cert_file:
                verify.load_cert_chain(creds.client_cert_file, creds.client_key_file or None)
        self.http = httpx.Client(base_url=creds.server, verify=verify, timeout=timeout_s)
        self._watches: set[httpx.Response] = set()
        self._closed = False

    def _headers(self) -> dict[str, str]:
        token = self.creds.bearer()
        return {"Accept": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}

    def list(self, path: str, params: dict[str, str] | None = None) -> dict:
        try:
            r = self.http.get(path, params=params, headers=self._headers())
        except httpx.HTTPError as e:
            raise KubeError(f"GET {path}: {e}") from e
        if r.status_code != 200:
            raise KubeError(f"GET {path}: {r.status_code} {r.text[:300]}", r.status_code)
        return r.json()

    def watch(self, path: str, resource_version: str, params: dict[str, str] | None = None,
              timeout_s: int = 300) -> Iterator[dict]:
        """Watch events (``{"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": …}``) from
        ``resource_version`` until the server ends the watch after ``timeout_s``."""
        q = {**(params or {}), "watch": "1", "resourceVersion": resource_version,
             "allowWatchBookmarks": "true", "timeoutSeconds": str(timeout_s)}
        try:
            with self.http.stream("GET", path, params=q, headers=self._headers(),
                                  timeout=httpx.Timeout(10.0, read=timeout_s + 30)) as r:
                self._watches.add(r)
                try:
                    if r.status_code != 200:
                        r.read()
                        raise KubeError(f"watch {path}: {r.status_code} {r.text[:300]}", r.status_code)
                    for line in r.iter_lines():
                        if line.strip():
                            yield json.loads(line)
                finally:
                    self._watches.discard(r)
        except (httpx.HTTPError, OSError, ValueError) as e:
            if self._closed:
                return  # close() ended the watch
            raise KubeError(f"watch {path}: {e}") from e

    def close(self) -> None:
        """Close the client; a watch waiting for events ends now, not at its read timeout."""
        self._closed = True
        for r in list(self._watches):
            stream = r.extensions.get("network_stream")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if sock is not None:  # a shutdown (not a close) wakes the read blocked in another thread
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self.http.close()
