"""The connector interface: what the rights engine asks of every store, and how a connector is chosen.

A connector works on one store of a data map and on ``Location``s of that store (``DataMap.locations``):

- ``read(loc, subject_value, whole=False)``: the values of the location's PI item for one subject (access,
  copy); with ``whole=True`` the whole rows (captured before a legal-hold isolation);
- ``erase(loc, subject_value)``: apply the location's erase action; idempotent (``affected == 0`` when
  nothing is left to do); raises on failure, never reports a partial success as done;
- ``remaining(loc, subject_value)``: the read-back after erasure: what is still there that should not be;
- ``correct(loc, subject_value, new_value)``: set the location's column (or Redis string value).

``subject_value`` is the value of the subject's key as text (an agent's id ``"42"``, a visitor's IP).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from yinsi.domain.datamap import DataMap, EraseAction, Location, ManualStore, RedisStore, RowAction, SqlStore

if TYPE_CHECKING:
    from yinsi.stores.sql import SqlConnector

#: Every pseudonym starts with this prefix (``yinsi.protect.pseudonyms.PREFIX``): a value that has it is
#: already pseudonymised, so pseudonymising again is skipped and the read-back accepts it.
PSEUDONYM_PREFIX = "p_"


@dataclass(frozen=True)
class Row:
    """One value (or one row) found for a subject at a location.

    ``key`` is the stable identity of the source row or key: ``chat_messages:id=42`` (SQL, by primary key),
    ``redis:sms:code:13800138000`` (Redis). ``values`` is column → value for SQL (the location's column; all
    columns of the row with ``whole=True``) and ``{"value": ...}`` for Redis.
    """

    key: str
    values: dict[str, Any]


@dataclass(frozen=True)
class EraseResult:
    """What one ``erase`` did: rows or keys changed now (0 when already erased), and a Chinese summary."""

    affected: int
    detail: str  # e.g. "删除 3 行" / "置空 1 行" / "已无数据"


@runtime_checkable
class Connector(Protocol):
    """What every store connector offers (see the module docstring)."""

    def read(self, loc: Location, subject_value: str, *, whole: bool = False) -> list[Row]: ...

    def erase(self, loc: Location, subject_value: str) -> EraseResult: ...

    def remaining(self, loc: Location, subject_value: str) -> list[Row]: ...

    def correct(self, loc: Location, subject_value: str, new_value: Any) -> int: ...


class ManualStepPending(Exception):
    """A person must perform and confirm this step (a system Yinsi cannot reach)."""

    def __init__(self, description: str | None, who: str | None, location_id: str | None = None) -> None:
        self.description = description or ""
        self.who = who or ""
        self.location_id = location_id
        super().__init__(description, who)

    def __str__(self) -> str:
        who = f"（由{self.who}完成）" if self.who else ""
        return f"需要人工完成：{self.description}{who}"


class StoreUnavailable(RuntimeError):
    """A store of the data map has no usable address, or is not of the kind asked for (message in Chinese)."""


class AttributesUnavailable(LookupError):
    """A Redis key pattern needs a subject attribute (e.g. ``{phone}``) that can no longer be read: the SQL
    side already erased it and no snapshot was bound. Bind the attributes read at plan time
    (``resolve_attributes`` → ``RedisConnector.bind``)."""


# ------------------------------------------------------------------------------------------ addresses
def store_url(datamap: DataMap, store_id: str, urls: Mapping[str, str]) -> str:
    """The address of a store: ``urls[store_id]`` first, then the environment variable named in the map's
    ``connection.env``, then ``connection.url``. Raises ``StoreUnavailable`` when there is none."""
    if store_id in urls:
        return urls[store_id]
    store = datamap.store(store_id)
    if store is None:
        raise StoreUnavailable(f"数据地图中没有存储 {store_id!r}")
    connection = getattr(store, "connection", None)
    if connection is not None and connection.env:
        value = os.environ.get(connection.env)
        if value:
            return value
    if connection is not None and connection.url:
        return str(connection.url)
    env = f"（环境变量 {connection.env} 未设置）" if connection is not None and connection.env else ""
    raise StoreUnavailable(f"存储 {store_id} 没有地址{env}：无法读取或删除其中的个人信息")


# ------------------------------------------------------------------------------------------ factories
def connector_for(datamap: DataMap, store_id: str, *, urls: Mapping[str, str],
                  pseudonymise: Callable[[str], str]) -> Connector:
    """The connector for one store of ``datamap``.

    ``urls`` maps store ids to addresses (all stores: a Redis connector reads subject attributes such as
    the phone from the subject's SQL store). ``pseudonymise`` turns a value into its pseudonym (must start
    with ``p_`` and be deterministic).
    """
    store = datamap.store(store_id)
    if store is None:
        raise StoreUnavailable(f"数据地图中没有存储 {store_id!r}")
    if isinstance(store, SqlStore):
        from yinsi.stores.sql import SqlConnector

        def attributes_of(subject_id: str, subject_value: str) -> dict[str, str]:
            return resolve_attributes(datamap, subject_value, urls, kind=subject_id)

        return SqlConnector(datamap, store, store_url(datamap, store_id, urls), pseudonymise=pseudonymise,
                            resolver=attributes_of)
    if isinstance(store, RedisStore):
        from yinsi.stores.redis_store import RedisConnector

        def resolver(subject_id: str, subject_value: str) -> dict[str, str]:
            return resolve_attributes(datamap, subject_value, urls, kind=subject_id)

        return RedisConnector(datamap, store, store_url(datamap, store_id, urls), resolver=resolver)
    assert isinstance(store, ManualStore)
    from yinsi.stores.manual import ManualConnector

    return ManualConnector(store)


def resolve_attributes(datamap: DataMap, subject: str, urls: Mapping[str, str], *,
                       kind: str | None = None) -> dict[str, str]:
    """The subject's attributes (placeholder → value as text, e.g. ``{"phone": "13800138000"}``), read from
    the subject's row in its SQL store. ``subject`` is the subject's key value; ``kind`` the subject id in
    the map (default: the map's first subject).

    Call this at plan time, **before** any erasure: after the SQL side nulls the phone, ``sms:code:{phone}``
    can no longer be found. Attributes whose column is NULL (or a subject without a row) are left out; a
    ``RedisConnector`` bound to the result treats a missing attribute as "no such key".
    """
    subj = datamap.subject(kind) if kind is not None else (datamap.subjects[0] if datamap.subjects else None)
    if subj is None:
        raise StoreUnavailable(f"数据地图中没有主体 {kind!r}")
    if not subj.attributes:
        return {}
    sql = _sql_connector(datamap, subj.store, urls)
    return sql.subject_attributes(subj, subject)


def find_subjects(datamap: DataMap, kind: str, attribute: str, values: Sequence[str], urls: Mapping[str, str], *,
                  limit: int = 2) -> list[str]:
    """The keys of at most ``limit`` subjects of ``kind`` whose attribute (e.g. ``phone``) equals one of
    ``values`` (the forms an address may be stored in), read from the subject's table in its SQL store."""
    subj = datamap.subject(kind)
    if subj is None:
        raise StoreUnavailable(f"数据地图中没有主体 {kind!r}")
    if attribute not in subj.attributes:
        return []
    return _sql_connector(datamap, subj.store, urls).subjects_with(subj, attribute, values, limit=limit)


def _sql_connector(datamap: DataMap, store_id: str, urls: Mapping[str, str]) -> SqlConnector:
    from yinsi.stores.sql import SqlConnector

    store = datamap.store(store_id)
    if not isinstance(store, SqlStore):
        raise StoreUnavailable(f"存储 {store_id} 不是 SQL 存储")

    def refuse(value: str) -> str:  # attribute reads never pseudonymise
        raise AssertionError("pseudonymise is not used when reading attributes")

    return SqlConnector(datamap, store, store_url(datamap, store_id, urls), pseudonymise=refuse)


def is_pseudonym_shaped(value: Any) -> bool:
    """Whether a stored value is already a pseudonym (starts with ``p_``)."""
    return isinstance(value, str) and value.startswith(PSEUDONYM_PREFIX)


def sql_erase_mode(loc: Location) -> Literal["delete", "null", "pseudonymise"]:
    """What ``erase`` does to an SQL location.

    - ``delete_row`` (column or table): delete the rows reaching the subject;
    - ``null``: set the column to NULL; ``pseudonymise``: replace the value by its pseudonym;
    - ``keep_legal_hold``: the rows leave the live table (the caller first captures them with
      ``read(..., whole=True)`` into Yinsi's encrypted legal-hold vault: isolation, T3); in a ``keep_row``
      table (a tombstone that must stay) only the column leaves: it is set to NULL after the capture.
    """
    action = loc.erase
    if action is EraseAction.DELETE_ROW or (loc.row_erase is RowAction.DELETE_ROW and action in (
            EraseAction.DELETE_ROW, EraseAction.KEEP_LEGAL_HOLD)):
        return "delete"
    if action is EraseAction.NULL:
        return "null"
    if action is EraseAction.PSEUDONYMISE:
        return "pseudonymise"
    if action is EraseAction.KEEP_LEGAL_HOLD:
        return "null" if loc.row_erase is RowAction.KEEP_ROW else "delete"
    raise ValueError(f"SQL 位置 {loc.id} 不能使用删除动作 {action.value}")


__all__ = [
    "PSEUDONYM_PREFIX",
    "AttributesUnavailable",
    "Connector",
    "EraseResult",
    "ManualStepPending",
    "Row",
    "StoreUnavailable",
    "connector_for",
    "find_subjects",
    "is_pseudonym_shaped",
    "resolve_attributes",
    "sql_erase_mode",
    "store_url",
]
