"""Reads ``kms.yaml`` into :class:`~kms.deploy.model.Stack`: unknown keys, wrong types and bad
choices fail with the file, line and dotted key, and ``--set key=value`` overrides apply like Helm's."""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from pathlib import Path
from typing import Any

import yaml

from kms.deploy.model import PROFILES, PROPAGATORS, SAMPLERS, STORE_TYPES, Stack, Storage
from kms.deploy.yamlpos import positions
from kms.errors import BadInput

__all__ = ["StackFileError", "load_stack", "stack_from_dict", "apply_set", "parse_set"]

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_INDEX = re.compile(r"^(\w+)\[(\d+)\]$")


class StackFileError(BadInput):
    """A stack file or ``--set`` override that does not describe a valid stack."""


def _lines(text: str) -> dict[str, int]:
    docs = positions(text)
    return docs[0] if docs else {}


def parse_set(expr: str) -> tuple[list[str | int], Any]:
    """``a.b[0].c=value`` -> (["a", "b", 0, "c"], value); the value is typed as YAML types it
    (``true``, ``3``), ``{x,y}`` is a list, as in ``helm --set``."""
    if "=" not in expr:
        raise StackFileError(f"--set {expr!r}: expected KEY=VALUE, e.g. --set loki.write_replicas=3")
    key, raw = expr.split("=", 1)
    path: list[str | int] = []
    for part in key.split("."):
        m = _INDEX.match(part)
        if m:
            path += [m.group(1), int(m.group(2))]
        elif part:
            path.append(part)
        else:
            raise StackFileError(f"--set {expr!r}: empty key part")
    if raw.startswith("{") and raw.endswith("}"):
        value: Any = [yaml.safe_load(v) for v in raw[1:-1].split(",") if v]
    else:
        value = yaml.safe_load(raw) if raw else ""
    return path, value


def apply_set(data: dict, exprs: list[str]) -> dict:
    """Apply ``--set`` expressions to a raw stack dict (in place; returned for chaining)."""
    for expr in exprs:
        path, value = parse_set(expr)
        node: Any = data
        for i, part in enumerate(path[:-1]):
            nxt: Any = {} if isinstance(path[i + 1], str) else []
            if isinstance(part, int):
                while len(node) <= part:
                    node.append({} if isinstance(nxt, dict) else [])
                node = node[part]
            else:
                node = node.setdefault(part, nxt)
        last = path[-1]
        if isinstance(last, int):
            while len(node) <= last:
                node.append(None)
        node[last] = value
    return data


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise StackFileError(f"{where}: expected a mapping, got {type(value).__name__}")
        return _build(tp, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise StackFileError(f"{where}: expected a list, got {type(value).__name__}")
        (item,) = typing.get_args(tp)
        return [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise StackFileError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise StackFileError(f"{where}: expected a whole number, got {value!r}")
        return value
    if tp is str:
        if value is None:
            return ""
        if isinstance(value, (dict, list)):
            raise StackFileError(f"{where}: expected a string, got a {type(value).__name__}")
        return str(value)  # `1` for a string field (sampler_argument) is meant as "1"
    raise RuntimeError(f"BUG: unsupported field type {tp!r} at {where}")


def _build(cls: type, data: dict, where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in hints:
            near = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else f" (known keys: {', '.join(names)})"
            raise StackFileError(f"{path}: unknown key{hint}")
        kwargs[key] = _convert(hints[key], value, path)
    return cls(**kwargs)


def _choice(value: str, allowed: tuple[str, ...], where: str) -> None:
    if value not in allowed:
        near = difflib.get_close_matches(value, allowed, n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise StackFileError(f"{where}: {value!r} is not one of {', '.join(allowed)} ({hint}choose one)")


def _check(s: Stack) -> None:
    if not _DNS_LABEL.match(s.name):
        raise StackFileError(f"name: {s.name!r} must be a DNS label of at most 40 characters "
                             "(lower-case letters, digits, '-'), it prefixes every service")  # fmt: skip
    if not _DNS_LABEL.match(s.namespace):
        raise StackFileError(f"namespace: {s.namespace!r} is not a valid namespace name")
    _choice(s.profile, PROFILES, "profile")
    _choice(s.storage.type, STORE_TYPES, "storage.type")
    if s.storage.type == "external" and not s.storage.endpoint:
        raise StackFileError("storage.endpoint: required with storage.type external (host:port, e.g. s3.example.com:443)")
    if "://" in s.storage.endpoint or "/" in s.storage.endpoint:
        raise StackFileError(f"storage.endpoint: {s.storage.endpoint!r} must be host:port without scheme or path "
                             "(Tempo and Mimir refuse a URL); use storage.insecure for plain http")  # fmt: skip
    if s.storage.credentials_secret:
        if not _DNS_SUBDOMAIN.match(s.storage.credentials_secret):
            raise StackFileError(f"storage.credentials_secret: {s.storage.credentials_secret!r} is not a Secret name")
        if (s.storage.access_key, s.storage.secret_key) != (Storage.access_key, Storage.secret_key):
            raise StackFileError("storage.credentials_secret: set either an existing Secret or access_key/secret_key "
                                 "(which kms puts into a Secret it renders), not both")  # fmt: skip
    if s.loki.write_replicas < 1 or s.loki.replication_factor < 1:
        raise StackFileError("loki: write_replicas and replication_factor must be at least 1")
    for i, p in enumerate(s.instrumentation.propagators):
        _choice(p, PROPAGATORS, f"instrumentation.propagators[{i}]")
    _choice(s.instrumentation.sampler, SAMPLERS, "instrumentation.sampler")
    _choice(s.multi_cluster.agent, ("prometheus", "kms"), "multi_cluster.agent")
    _choice(s.multi_cluster.central, ("mimir", "thanos"), "multi_cluster.central")
    seen: set[str] = set()
    for i, c in enumerate(s.multi_cluster.clusters):
        if c in seen:
            raise StackFileError(f"multi_cluster.clusters[{i}]: {c!r} appears twice; series of both would collide")
        seen.add(c)
    for kind in ("postgres", "redis", "node"):
        for i, e in enumerate(getattr(s.exporters, kind)):
            if not _DNS_LABEL.match(e.name):
                raise StackFileError(f"exporters.{kind}[{i}].name: {e.name!r} must be a DNS label (it names the exporter)")
    for i, n in enumerate(s.exporters.node):
        if not n.addresses:
            raise StackFileError(f"exporters.node[{i}].addresses: list at least one IP address of the node")
        for a in n.addresses:
            if not re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", a):
                raise StackFileError(f"exporters.node[{i}].addresses: {a!r} is not an IPv4 address "
                                     "(EndpointSlices hold addresses, not host names)")  # fmt: skip


def stack_from_dict(data: dict | None, source: str = "kms.yaml", lines: dict[str, int] | None = None) -> Stack:
    """Build and check a :class:`Stack`; errors name ``source``, the line when known, and the key."""
    try:
        stack = _build(Stack, data or {}, "")
        _check(stack)
    except StackFileError as e:
        key = e.message.split(":", 1)[0]
        line = (lines or {}).get(key) or (lines or {}).get(re.sub(r"\[\d+\]$", "", key))
        raise StackFileError(f"{source}{f':{line}' if line else ''}: {e.message}") from None
    return stack


def load_stack(path: str | Path | None, sets: list[str] | None = None) -> Stack:
    """The stack of ``path`` (defaults when None) with ``--set`` overrides applied."""
    text, source = "", "defaults"
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise StackFileError(f"{p}: no such stack file (write one with `kms init -o {p}`)")
        text, source = p.read_text(), str(p)
    try:
        data = yaml.safe_load(text) if text else {}
    except yaml.YAMLError as e:
        raise StackFileError(f"{source}: not valid YAML: {e}") from None
    if data is not None and not isinstance(data, dict):
        raise StackFileError(f"{source}: the stack file must be a mapping of keys")
    data = apply_set(data or {}, sets or [])
    return stack_from_dict(data, source, _lines(text))
