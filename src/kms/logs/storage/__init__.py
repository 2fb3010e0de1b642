"""Log storage over the shared store: ``StoreLogSource`` (the LogQL engine's ``LogSource``) and
the block layout of format 2 (``chunks``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kms.logs.storage.source import StoreLogSource

__all__ = ["StoreLogSource"]


def __getattr__(name: str):
    # lazy: kms.logs.schema imports kms.logs.storage.chunks, and source imports schema
    if name == "StoreLogSource":
        from kms.logs.storage.source import StoreLogSource

        return StoreLogSource
    raise AttributeError(name)
