"""The filelog receiver's ``container`` operator: lines of /var/log/pods/* files written by CRI
runtimes (``<RFC3339Nano> <stream> <P|F> <message>``, partial lines joined) or Docker
(``{"log": …, "stream": …, "time": …}``) become their message, with ``log.iostream`` and the time
the runtime wrote; the pod path gives ``k8s.namespace.name``, ``k8s.pod.name``,
``k8s.pod.uid`` and ``k8s.container.name`` as the operator adds them."""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import replace

from kms.agent.tail import LogLine

__all__ = ["ContainerParser"]

# /var/log/pods/<namespace>_<pod>_<uid>/<container>/<restart>.log
_POD_PATH = re.compile(r"/pods/(?P<ns>[^_/]+)_(?P<pod>[^_/]+)_(?P<uid>[^/]+)/(?P<container>[^/]+)/[^/]+$")


def _time_ns(text: str) -> int:
    base, _, frac = text.rstrip("Z").partition(".")
    try:
        dt = datetime.datetime.fromisoformat(base).replace(tzinfo=datetime.UTC)
    except ValueError:
        return 0
    return int(dt.timestamp()) * 1_000_000_000 + int((frac or "0")[:9].ljust(9, "0"))


class ContainerParser:
    def __init__(self) -> None:
        self._partial: dict[tuple[str, str], list[str]] = {}  # (path, stream) -> CRI P fragments

    def parse(self, lines: list[LogLine]) -> list[LogLine]:
        out = []
        for ln in lines:
            parsed = self._one(ln)
            if parsed is not None:
                out.append(parsed)
        return out

    def _one(self, ln: LogLine) -> LogLine | None:
        attrs = dict(ln.attributes)
        m = _POD_PATH.search(ln.path)
        if m:
            attrs.update({"k8s.namespace.name": m["ns"], "k8s.pod.name": m["pod"], "k8s.pod.uid": m["uid"],
                          "k8s.container.name": m["container"]})
        text = ln.line
        if text.startswith("{"):
            try:
                doc = json.loads(text)
                attrs["log.iostream"] = doc.get("stream", "")
                return replace(ln, line=str(doc.get("log", "")).rstrip("\n"), time_ns=_time_ns(doc.get("time", "")),
                               attributes=tuple(attrs.items()))
            except (ValueError, AttributeError):
                pass
        parts = text.split(" ", 3)
        if len(parts) >= 3 and parts[2] in ("P", "F") and parts[1] in ("stdout", "stderr"):
            msg = parts[3] if len(parts) == 4 else ""
            key = (ln.path, parts[1])
            if parts[2] == "P":  # a fragment of a long line: wait for its end
                self._partial.setdefault(key, []).append(msg)
                return None
            msg = "".join(self._partial.pop(key, [])) + msg
            attrs["log.iostream"] = parts[1]
            return replace(ln, line=msg, time_ns=_time_ns(parts[0]), attributes=tuple(attrs.items()))
        return replace(ln, attributes=tuple(attrs.items()))  # not a runtime's format: as it is
