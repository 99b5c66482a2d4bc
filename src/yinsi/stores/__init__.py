"""Store connectors (存储连接器): read, erase, verify and correct a subject's PI in the app's own stores.

One connector per store of a data map: SQL (SQLite, PostgreSQL, MariaDB through SQLAlchemy Core), Redis,
and manual (a person performs the step and confirms it). ``plan`` orders the locations of an erasure so
children are deleted before parents. See docs/stores.md.
"""

from yinsi.stores.base import (
    AttributesUnavailable,
    Connector,
    EraseResult,
    ManualStepPending,
    Row,
    StoreUnavailable,
    connector_for,
    resolve_attributes,
)
from yinsi.stores.plan import access_order, erasure_order

__all__ = [
    "AttributesUnavailable",
    "Connector",
    "EraseResult",
    "ManualStepPending",
    "Row",
    "StoreUnavailable",
    "access_order",
    "connector_for",
    "erasure_order",
    "resolve_attributes",
]
