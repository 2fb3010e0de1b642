"""A Kubernetes API server double for tests (no cluster runs here): HTTPS with its own CA, bearer
token required, list and watch (JSON lines, resourceVersion, 410 Gone) of any resource from
objects the test puts and deletes, shaped like the API server's responses.

Label selectors take the API's whole syntax (``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``,
``a notin (x,y)``, ``a``, ``!a``); field selectors take ``=``, ``==`` and ``!=`` on any field path
(``metadata.name``, ``metadata.namespace``, ``spec.nodeName``, ``status.phase``...). A selector
that does not parse is a 400, as the API server answers. A watch reports an object that stops
matching as DELETED and one that starts matching as ADDED, as the API server's watch cache does."""

from __future__ import annotations

import base64
import datetime
import json
import re
import shutil
import ssl
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

__all__ = ["FakeKubeApi", "SelectorError", "field_matcher", "label_matcher"]


def _self_signed() -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) for 127.0.0.1, its own CA (``cryptography`` from the test extra)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def _collection(path: str) -> tuple[str, str | None]:
    """/apis/g/v/namespaces/ns/plural → (/apis/g/v/plural, ns); cluster-wide paths → (path, None)."""
    parts = path.strip("/").split("/")
    if "namespaces" in parts and len(parts) - parts.index("namespaces") == 3:
        i = parts.index("namespaces")
        return "/" + "/".join(parts[:i] + parts[i + 2:]), parts[i + 1]
    return path.rstrip("/"), None


class SelectorError(ValueError):
    pass


def _terms(text: str) -> list[str]:
    """Split at commas outside ``in (a,b)`` parentheses."""
    terms, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    return [t.strip() for t in [*terms, cur] if t.strip()]


_SET_TERM = re.compile(r"^([A-Za-z0-9_./-]+)\s+(in|notin)\s*\(([^()]*)\)$")
_KEY = re.compile(r"^[A-Za-z0-9_./-]+$")

Check = Callable[[dict[str, str]], bool]


def _label_term(term: str) -> Check:
    if m := _SET_TERM.match(term):
        key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}
        if op == "in":
            return lambda lb: lb.get(key) in values
        return lambda lb: lb.get(key) not in values
    if term.startswith("!") and _KEY.match(term[1:].strip()):
        key = term[1:].strip()
        return lambda lb: key not in lb
    if _KEY.match(term):
        return lambda lb: term in lb
    return _equality(term)


def _equality(term: str) -> Check:
    for op in ("!=", "==", "="):
        if op in term:
            k, v = (x.strip() for x in term.split(op, 1))
            if not _KEY.match(k) or any(c in v for c in "=!() "):
                break
            return (lambda lb, k=k, v=v: lb.get(k) != v) if op == "!=" else (lambda lb, k=k, v=v: lb.get(k) == v)
    raise SelectorError(f"unable to parse requirement: {term!r}")


def label_matcher(selector: str) -> Check:
    """A label selector in the API's syntax as a predicate over a label mapping."""
    checks = [_label_term(t) for t in _terms(selector)]
    return lambda labels: all(c(labels) for c in checks)


def _field(obj: dict, path: str) -> str:
    cur: object = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return "" if cur is None else str(cur)


def field_matcher(selector: str) -> Callable[[dict], bool]:
    """A field selector (``=``, ``==``, ``!=`` on dotted field paths) as a predicate over objects."""
    checks = []
    for term in _terms(selector):
        check = _equality(term)
        path = re.split(r"!=|==|=", term, maxsplit=1)[0].strip()
        checks.append((path, check))
    return lambda obj: all(check({path: _field(obj, path)}) for path, check in checks)


class FakeKubeApi:
    def __init__(self, token: str = "test-token"):
        self.token = token
        self.rv = 100
        self.objects: dict[str, dict[tuple[str, str], dict]] = {}  # collection -> (ns, name) -> object
        # (rv, collection, type, object, the object before a MODIFIED)
        self.events: list[tuple[int, str, str, dict, dict | None]] = []
        self.oldest_watchable = 0  # watches from before this get 410 Gone
        self.epoch = 0  # bumped by compact(): open watches end, as the API server ends them
        self.requests: list[str] = []
        self.cond = threading.Condition()
        self.cert, self.key = _self_signed()
        self._dir = Path(tempfile.mkdtemp(prefix="kms-kube-api-"))
        (self._dir / "tls.crt").write_bytes(self.cert)
        (self._dir / "tls.key").write_bytes(self.key)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self._dir / "tls.crt", self._dir / "tls.key")
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._closed = False

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeKubeApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        with self.cond:
            self._closed = True
            self.cond.notify_all()
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        doc = {
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": self.url, "certificate-authority-data":
                                                      base64.b64encode(self.cert).decode()}}],
            "users": [{"name": "test", "user": {"token": self.token}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test", "namespace": namespace}}],
        }
        path.write_text(yaml.safe_dump(doc))
        return path

    # -- changing the world --
    def put(self, collection: str, obj: dict) -> dict:
        """Create or replace ``obj`` (needs metadata.name/namespace) in e.g.
        ``/apis/monitoring.coreos.com/v1/prometheusrules``; stamps uid, resourceVersion, times."""
        with self.cond:
            self.rv += 1
            meta = obj.setdefault("metadata", {})
            key = (meta.get("namespace", ""), meta["name"])
            old = self.objects.setdefault(collection, {}).get(key)
            meta.setdefault("uid", old["metadata"]["uid"] if old else str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            meta["generation"] = (old["metadata"].get("generation", 0) + 1) if old else 1
            meta["resourceVersion"] = str(self.rv)
            self.objects[collection][key] = obj
            self.events.append((self.rv, collection, "MODIFIED" if old else "ADDED", obj, old))
            self.cond.notify_all()
        return obj

    def delete(self, collection: str, namespace: str, name: str) -> None:
        with self.cond:
            obj = self.objects[collection].pop((namespace, name))
            self.rv += 1
            obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self.rv)}}
            self.events.append((self.rv, collection, "DELETED", obj, None))
            self.cond.notify_all()

    def compact(self) -> None:
        """Forget the event history and end open watches: resuming from any version up to now gets 410 Gone."""
        with self.cond:
            self.rv += 1  # a list after this returns a version that can be watched from
            self.oldest_watchable = self.rv
            self.epoch += 1
            self.events.clear()
            self.cond.notify_all()

    # -- serving --
    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _json(self, status: int, doc: dict) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):  # noqa: N802 - http.server's naming
                u = urllib.parse.urlsplit(self.path)
                q = dict(urllib.parse.parse_qsl(u.query))
                api.requests.append(self.path)
                if self.headers.get("Authorization") != f"Bearer {api.token}":
                    self._json(401, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                     "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
                    return
                collection, ns = _collection(u.path)
                try:
                    labels_ok = label_matcher(q.get("labelSelector", ""))
                    fields_ok = field_matcher(q.get("fieldSelector", ""))
                except SelectorError as e:
                    self._json(400, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": str(e),
                                     "reason": "BadRequest", "code": 400})
                    return

                def visible(obj: dict) -> bool:
                    return ((ns is None or obj["metadata"].get("namespace") == ns)
                            and labels_ok(obj["metadata"].get("labels") or {}) and fields_ok(obj))

                if q.get("watch") in ("1", "true"):
                    self._watch(collection, visible, int(q.get("resourceVersion") or 0),
                                float(q.get("timeoutSeconds", 300)))
                    return
                with api.cond:
                    items = [o for o in api.objects.get(collection, {}).values() if visible(o)]
                    rv = api.rv
                kind = collection.rsplit("/", 1)[-1]
                self._json(200, {"apiVersion": collection.split("/", 2)[-1].rsplit("/", 1)[0], "kind": f"{kind}List",
                                 "metadata": {"resourceVersion": str(rv)}, "items": items})

            def _watch(self, collection: str, visible, since: int, timeout_s: float) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Connection", "close")
                self.end_headers()
                deadline = time.monotonic() + timeout_s
                with api.cond:
                    epoch = api.epoch
                    while not api._closed and time.monotonic() < deadline and api.epoch == epoch:
                        if since < api.oldest_watchable:
                            self._line({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
                                        "status": "Failure", "reason": "Expired", "code": 410,
                                        "message": f"too old resource version: {since}"}})
                            return
                        for rv, coll, kind, obj, old in [e for e in api.events if e[0] > since]:
                            since = rv
                            if coll != collection:
                                continue
                            now, before = visible(obj), old is not None and visible(old)
                            if kind == "MODIFIED" and now != before:  # moved into or out of the selection
                                kind = "ADDED" if now else "DELETED"
                            if (now or before) and not self._line({"type": kind, "object": obj}):
                                return  # the client went away
                        api.cond.wait(min(0.5, max(0.0, deadline - time.monotonic())))

            def _line(self, doc: dict) -> bool:
                try:
                    self.wfile.write(json.dumps(doc).encode() + b"\n")
                    self.wfile.flush()
                    return True
                except OSError:
                    return False

        return Handler
