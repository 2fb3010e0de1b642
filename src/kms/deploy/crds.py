"""Validation of custom resources (ServiceMonitor, PodMonitor, PrometheusRule, Instrumentation)
against the minimal schemas in ``crd_schemas.minimal.yaml``, with jsonschema; no cluster needed.
kubernetes-validate has no CRD schemas (unknown kinds pass with a warning), hence this."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    import jsonschema

__all__ = ["SCHEMA_FILE", "custom_kinds", "schema_errors", "validate_custom"]

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


@cache
def _validator(kind: str) -> jsonschema.Draft7Validator:
    import jsonschema  # imported on first use: most kms commands never validate a resource

    return jsonschema.Draft7Validator(_schemas()[kind])


def schema_errors(obj: dict) -> list[jsonschema.ValidationError]:
    """The ``jsonschema.ValidationError`` of a custom resource, in document order; KeyError for a
    kind without schema."""
    errors = _validator(f"{obj.get('apiVersion')}/{obj.get('kind')}").iter_errors(obj)
    return sorted(errors, key=lambda e: [str(p) for p in e.absolute_path])


def validate_custom(obj: dict) -> list[str]:
    """Schema errors of a custom resource ('path: message'); KeyError for a kind without schema."""
    return sorted(f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}" for e in schema_errors(obj))
