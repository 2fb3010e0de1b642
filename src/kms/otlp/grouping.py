"""The dictionary-encoded resource / scope / service columns every signal table shares.

Every record of one ResourceX shares its resource, every record of one ScopeX its scope: the
columns are built as dictionary arrays (one dictionary entry per message, indices per row),
so no per-row copy of a resource is ever made.
"""

from __future__ import annotations

import pyarrow as pa

from kms.otlp.resource import service_name_of

__all__ = ["Grouping"]


class Grouping:
    def __init__(self) -> None:
        self.resources: list[bytes] = []
        self.services: list[str] = []
        self.scopes: list[bytes] = []
        self.resource_idx: list[int] = []  # per row
        self.scope_idx: list[int] = []  # per row

    def resource(self, resource: bytes) -> int:
        self.resources.append(resource)
        self.services.append(service_name_of(resource))
        return len(self.resources) - 1

    def scope(self, scope: bytes) -> int:
        self.scopes.append(scope)
        return len(self.scopes) - 1

    def row(self, resource: int, scope: int) -> None:
        self.resource_idx.append(resource)
        self.scope_idx.append(scope)

    def columns(self) -> tuple[pa.DictionaryArray, pa.DictionaryArray, pa.DictionaryArray]:
        """(service_name, resource, scope) columns."""
        r = pa.array(self.resource_idx, pa.int32())
        return (
            pa.DictionaryArray.from_arrays(r, pa.array(self.services, pa.string())),
            pa.DictionaryArray.from_arrays(r, pa.array(self.resources, pa.binary())),
            pa.DictionaryArray.from_arrays(pa.array(self.scope_idx, pa.int32()), pa.array(self.scopes, pa.binary())),
        )
