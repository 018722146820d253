"""Broker state on disk: the SQLite :class:`~mqtthub.broker.persistence.StateStore` behind the embedded broker."""

from mqtthub.brokerstate.sqlite import SQLiteStateStore

__all__ = ["SQLiteStateStore"]
