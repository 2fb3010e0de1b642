"""Log storage over the shared store: ``StoreLogSource`` (the LogQL engine's ``LogSource``)."""

from kms.logs.storage.source import StoreLogSource

__all__ = ["StoreLogSource"]
