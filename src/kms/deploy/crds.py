"""Validation of custom resources (ServiceMonitor, PodMonitor, PrometheusRule, Instrumentation)
against the minimal schemas in ``crd_schemas.minimal.yaml``, with jsonschema; no cluster needed.
kubernetes-validate has no CRD schemas (unknown kinds pass with a warning), hence this."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path

import yaml

__all__ = ["SCHEMA_FILE", "custom_kinds", "validate_custom"]

SCHEMA_FILE = Path(__file__).with_name("crd_schemas.minimal.yaml")


def _expand(node: object, defs: dict) -> object:
    """Resolve ``$merge: [name, ...]`` (property groups shared between kinds) recursively."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "$merge":
                for name in v:
                    out.update(_expand(copy.deepcopy(defs[name]), defs))
            else:
                out[k] = _expand(v, defs)
        return out
    if isinstance(node, list):
        return [_expand(v, defs) for v in node]
    return node


@cache
def _schemas() -> dict[str, dict]:
    raw = yaml.safe_load(SCHEMA_FILE.read_text())
    defs = raw["definitions"]
    out = {}
    for kind, props in raw["kinds"].items():
        out[kind] = {
            "type": "object",
            "required": ["apiVersion", "kind", "metadata", "spec"],
            "additionalProperties": False,
            "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                           "metadata": {"type": "object", "required": ["name"]}, **_expand(props, defs)},
            "definitions": _expand({k: v for k, v in defs.items() if not k.startswith("scrape")}, defs),
        }  # fmt: skip
    return out


def custom_kinds() -> set[str]:
    """``group/version/Kind`` of every resource with a schema."""
    return set(_schemas())


def validate_custom(obj: dict) -> list[str]:
    """Schema errors of a custom resource ('path: message'); KeyError for a kind without schema."""
    import jsonschema

    schema = _schemas()[f"{obj.get('apiVersion')}/{obj.get('kind')}"]
    validator = jsonschema.Draft7Validator(schema)
    return sorted(f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}" for e in validator.iter_errors(obj))
