"""The data map (数据地图): where each PI item of a data subject lives in a tenant's own stores.

A data map is declared once per tenant, next to its policy declaration. It names:

- the **subjects** (个人信息主体) the app holds data about (a registered user, a user's client, an anonymous
  visitor), each anchored at a table and key column;
- the **stores**: SQL databases (table → column → PI item, or ``not_pi`` with a reason), Redis (key patterns
  with ``{subject}``/``{phone}`` placeholders) and manual stores (a step a person performs);
- **how rows reach the subject**: a ``key`` column holding the subject's id, or a ``join`` path;
- **what erasure does**: per table the row action (delete the row, keep it and erase columns, or keep it
  under a legal hold (法定保存)), per column the column action.

This module is pure: checks against a policy declaration and against a live schema take plain data, and
``DataMap.locations()`` lists every place a subject's PI lives, which the rights engine plans over.
Every check returns problems with a location (``loc``) in the map; nothing is skipped silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from yinsi.domain.policy import Declaration
from yinsi.domain.taxonomy import taxonomy

Loc = tuple[int | str, ...]
Err = Callable[[Loc, str], None]


class _Model(BaseModel):
    """Base: unknown keys are errors, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreKind(StrEnum):
    """Kinds of store a data map can describe."""

    SQL = "sql"
    REDIS = "redis"
    MANUAL = "manual"  # a system Yinsi cannot reach: a person performs and confirms the step


class EraseAction(StrEnum):
    """What erasure does to one location (删除/匿名化/法定保存)."""

    DELETE_ROW = "delete_row"  # SQL: the row is deleted
    NULL = "null"  # SQL: the row stays, the column is set to NULL
    PSEUDONYMISE = "pseudonymise"  # SQL: the row stays, the value is replaced by a pseudonym (去标识化)
    KEEP_LEGAL_HOLD = "keep_legal_hold"  # kept for a statutory minimum, isolated (T3), then swept
    DELETE_KEY = "delete_key"  # Redis: the key is deleted
    DELETE = "delete"  # manual: a person deletes the record and confirms
    REDACT = "redact"  # SQL free text: the person's identifiers are replaced inside the text, the rest stays


class RowAction(StrEnum):
    """What erasure does to a table's rows that reach the subject."""

    DELETE_ROW = "delete_row"
    KEEP_ROW = "keep_row"  # the row stays (e.g. an account tombstone); each PI column says what happens
    KEEP_LEGAL_HOLD = "keep_legal_hold"


ERASE_ZH: dict[str, str] = {
    "delete_row": "删除整行", "null": "置空", "pseudonymise": "假名化", "keep_legal_hold": "法定保存（隔离）",
    "delete_key": "删除键", "delete": "人工删除", "keep_row": "保留行、按列处理",
    "redact": "文本内遮盖",
}

COLUMN_ACTIONS = frozenset({EraseAction.DELETE_ROW, EraseAction.NULL, EraseAction.PSEUDONYMISE,
                            EraseAction.KEEP_LEGAL_HOLD})
REDIS_ACTIONS = frozenset({EraseAction.DELETE_KEY, EraseAction.KEEP_LEGAL_HOLD})
MANUAL_ACTIONS = frozenset({EraseAction.DELETE, EraseAction.KEEP_LEGAL_HOLD})

RedisType = Literal["string", "list", "set", "hash", "zset", "stream"]

_JOIN_HOP = re.compile(r"^\s*(\w+)\.(\w+)\s*(?:->|→)\s*(\w+)\.(\w+)\s*$")
_PLACEHOLDER = re.compile(r"\{(\w*)\}")
_RULE_ID = re.compile(r"^[A-Z]\d+$")


# --------------------------------------------------------------------------------------------- model
class LegalHold(_Model):
    """A statutory minimum retention (法定保存期限): why the data must be kept, and for how long."""

    basis: str | None = Field(default=None, description="the law and article, e.g. 电子商务法第三十一条")
    rule: str | None = Field(default=None, description="the RULES.md rule id, e.g. T2")
    min_days: int | None = Field(default=None, ge=1)
    date_column: str | None = Field(
        default=None, description="SQL: the row's own date the period counts from (paid_at, a log's time); "
                                  "default: the day of the erasure")


class Retention(_Model):
    """A promised maximum storage period for a table's rows (存储期限), counted from ``time_column``."""

    max_days: int = Field(ge=1)
    time_column: str
    why: str | None = None


class Column(_Model):
    """One column: either a PI item with its erase action, or ``not_pi`` with a reason."""

    item: str | None = None
    erase: EraseAction | None = Field(default=None, description="defaults to the table's row action")
    legal_hold: LegalHold | None = None
    not_pi: bool = False
    why: str | None = None
    free_text: bool = Field(
        default=False, description="free text that may mention any person (ticket descriptions, remarks): erasure "
                                   "redacts the person's identifiers inside the text in every row of the column")
    historical: bool = Field(
        default=False, description="a record of the past (the number a call came from): correction leaves it "
                                   "unless the person asks for it explicitly")


class Reach(_Model):
    """How a table's rows reach a subject: a ``key`` column holding the subject id, a ``join`` path, or a
    ``match`` (rows whose column equals one of the subject's attributes, e.g. a visitor pass whose
    ``visitor_phone`` is the person's phone). A table may list several reaches per subject kind (the
    person's own rows, and rows of others that point at the person); each then has a ``name``, may have
    its own row action (``erase``) and may claim only some of the table's columns (``columns``)."""

    name: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")
    key: str | None = None
    join: list[str] = Field(default_factory=list, description='hops like "invoices.order_id -> orders.id"')
    match: dict[str, str] = Field(default_factory=dict, description="column → the subject's attribute it equals")
    erase: RowAction | None = Field(default=None, description="the row action for these rows (default: the table's)")
    columns: list[str] = Field(default_factory=list, description="only these columns are the subject's PI here "
                                                                 "(default: every PI column of the table)")


class Table(_Model):
    """A mapped SQL table."""

    not_pi: bool = False
    why: str | None = None
    reach: dict[str, Reach | list[Reach]] = Field(default_factory=dict,
                                                   description="subject id → how rows reach it (one or several)")
    erase: RowAction | None = None
    legal_hold: LegalHold | None = None
    retention: Retention | None = None
    columns: dict[str, Column] = Field(default_factory=dict)
    shared_via: str | None = Field(
        default=None, description="the link table through which several subjects share these rows (a house "
                                  "and its residents): never erased while another subject links to a row")
    updated_at: str | None = Field(
        default=None, description="a column the app sets on every change of a row: the free-text index re-reads "
                                  "the rows changed since its last run (else only new rows, by primary key)")

    def reaches(self, subject_id: str) -> list[Reach]:
        """The reaches of one subject kind (a single reach as a list of one)."""
        found = self.reach.get(subject_id)
        if found is None:
            return []
        return list(found) if isinstance(found, list) else [found]

    def reach_items(self) -> Iterator[tuple[str, list[Reach]]]:
        """(subject id, its reaches) for every subject kind the table reaches."""
        for subject_id in self.reach:
            yield subject_id, self.reaches(subject_id)


class Connection(_Model):
    """Where to reach a store: an environment variable holding the URL (preferred), or the URL."""

    env: str | None = None
    url: str | None = None


class RedisKey(_Model):
    """A Redis key pattern, e.g. ``sms:code:{phone}``; placeholders are the subject's id, its attributes,
    or one placeholder filled from the members of ``members_of`` (e.g. a per-user set of session tokens)."""

    pattern: str
    subject: str
    type: RedisType
    item: str
    erase: EraseAction = EraseAction.DELETE_KEY
    members_of: str | None = None
    ttl_seconds: int | None = Field(default=None, ge=1)
    legal_hold: LegalHold | None = None
    why: str | None = None


class Capture(_Model):
    """A value a manual step needs (e.g. a call recording's file path), read from the rows of ``table`` that
    reach the subject and kept in the encrypted plan before erasure."""

    store: str
    table: str
    column: str


class ManualStep(_Model):
    """A step a person performs in a system Yinsi cannot reach (e.g. a vendor console)."""

    id: str
    subject: str
    items: list[str]
    description: str = Field(description="what the person does to erase the data there")
    who: str
    access: str | None = Field(default=None, description="what the person does to obtain a copy of the data "
                                                         "(access, copy); without it a copy request names the "
                                                         "system and the items only")
    erase: EraseAction = EraseAction.DELETE
    legal_hold: LegalHold | None = None
    capture: list[Capture] = Field(default_factory=list)


class SqlStore(_Model):
    """A relational database."""

    id: str
    kind: Literal["sql"]
    name: str
    connection: Connection | None = None
    tables: dict[str, Table] = Field(default_factory=dict)


class RedisStore(_Model):
    """A Redis database; ``key_prefix`` is prepended to every pattern."""

    id: str
    kind: Literal["redis"]
    name: str
    connection: Connection | None = None
    key_prefix: str = ""
    keys: list[RedisKey] = Field(default_factory=list)


class ManualStore(_Model):
    """A system reached only by people."""

    id: str
    kind: Literal["manual"]
    name: str
    steps: list[ManualStep] = Field(default_factory=list)


Store = Annotated[SqlStore | RedisStore | ManualStore, Field(discriminator="kind")]


class Subject(_Model):
    """A kind of data subject (个人信息主体), anchored at a table and its key column.

    ``attributes`` name further columns of that table usable as Redis placeholders (``phone: phone``).
    ``verify_by`` names, per channel (``sms``, ``email``), the attribute holding the address already on
    record to which an identity-verification code is sent (R8: only PI already held).
    ``cancelled_marker`` is what account cancellation writes into the subject's own row first (columns
    marked ``not_pi``, e.g. ``{status: cancelled}``), so the app stops serving the account while the rest
    is erased; ``None`` for subjects without an account.
    """

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    store: str
    table: str
    key: str
    attributes: dict[str, str] = Field(default_factory=dict)
    identifiers: list[str] = Field(
        default_factory=list, description="attributes whose values identify the person (phone, name, ID number): "
                                          "redacted in free text, matched by `match` reaches, and used to find "
                                          "the person under other subject kinds")
    verify_by: dict[Literal["sms", "email"], str] = Field(default_factory=dict)
    cancelled_marker: dict[str, str] | None = None


class PrerequisiteCheck(_Model):
    """How the app's data shows whether a declared cancellation prerequisite (注销前提条件) holds.

    ``match`` is a part of the prerequisite's text in the policy declaration; the check applies only while
    the declaration lists such a prerequisite (Yinsi never imposes a condition the policy does not state,
    R9). The prerequisite holds when no row of ``table`` reaches the subject. ``message`` tells the
    person, in Chinese, what to do (e.g. 请先解除楼盘绑定，再注销账号).
    """

    match: str = Field(min_length=1)
    subject: str
    store: str
    table: str
    message: str = Field(min_length=1)


class RecipientContact(_Model):
    """Where a recipient of the subject's PI is told to delete it too (R13): an e-mail address, or nobody
    (``email: null``) when a person must notify it some other way (the step then waits for that person)."""

    email: str | None = None
    who: str | None = Field(default=None, description="who notifies the recipient when there is no e-mail")


class NotStored(_Model):
    """A PI item the declaration collects that the app does not store in any mapped store, and why."""

    item: str
    why: str


class DataMap(_Model):
    """One tenant's data map."""

    schema_version: Literal[1] = 1
    tenant: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    declaration_version: str | None = Field(default=None, description="the declaration's version.label")
    subjects: list[Subject]
    stores: list[Store]
    not_stored: list[NotStored] = Field(default_factory=list)
    prerequisites: list[PrerequisiteCheck] = Field(default_factory=list)
    recipients: dict[str, RecipientContact] = Field(default_factory=dict)

    # --- lookups --------------------------------------------------------------------------------
    def store(self, store_id: str) -> SqlStore | RedisStore | ManualStore | None:
        return next((s for s in self.stores if s.id == store_id), None)

    def subject(self, subject_id: str) -> Subject | None:
        return next((s for s in self.subjects if s.id == subject_id), None)

    def sql_stores(self) -> list[SqlStore]:
        return [s for s in self.stores if isinstance(s, SqlStore)]

    def redis_stores(self) -> list[RedisStore]:
        return [s for s in self.stores if isinstance(s, RedisStore)]

    def iter_item_refs(self) -> Iterator[tuple[Loc, str]]:
        """Every PI item id the map names, with its location."""
        for sk, store in enumerate(self.stores):
            if isinstance(store, SqlStore):
                for tname, table in store.tables.items():
                    for cname, col in table.columns.items():
                        if col.item is not None:
                            yield ("stores", sk, "tables", tname, "columns", cname, "item"), col.item
            elif isinstance(store, RedisStore):
                for kk, key in enumerate(store.keys):
                    yield ("stores", sk, "keys", kk, "item"), key.item
            else:
                for pk, step in enumerate(store.steps):
                    for ik, item in enumerate(step.items):
                        yield ("stores", sk, "steps", pk, "items", ik), item
        for nk, ns in enumerate(self.not_stored):
            yield ("not_stored", nk, "item"), ns.item

    def mapped_items(self) -> list[str]:
        """Every PI item mapped to a location (not counting ``not_stored``), first-seen order."""
        seen: dict[str, None] = {}
        for loc, item in self.iter_item_refs():
            if loc[0] == "stores":
                seen.setdefault(item, None)
        return list(seen)

    # --- checks ---------------------------------------------------------------------------------
    def problems(self) -> list[DataMapProblem]:
        """Internal consistency: references, join paths, placeholders, erase actions, legal holds."""
        return _check_structure(self)

    def check_declaration(self, declaration: Declaration) -> list[DataMapProblem]:
        """Problems against the tenant's policy declaration (errors), plus notes for declared items
        that the map neither maps nor lists under ``not_stored`` (warnings)."""
        return _check_declaration(self, declaration)

    # --- the execution-plan view ----------------------------------------------------------------
    def locations(self, subject: str | None = None) -> list[Location]:
        """Every location of a subject's PI (all subjects when ``subject`` is None), in map order.

        Raises ``DataMapInvalid`` if the map has structural problems: a plan over a broken map would
        silently miss data.
        """
        errors = [p for p in self.problems() if p.severity == "error"]
        if errors:
            raise DataMapInvalid(errors)
        return [loc for loc in _locations(self) if subject is None or loc.subject == subject]

    def column_item(self, store_id: str, table: str, column: str) -> str | None:
        """The PI item a column of an SQL store's table is mapped to (``None``: not PI, unmapped)."""
        store = self.store(store_id)
        mapped = store.tables.get(table) if isinstance(store, SqlStore) else None
        col = mapped.columns.get(column) if mapped is not None else None
        return col.item if col is not None and not col.not_pi else None

    def subject_column_item(self, subject_id: str, column: str) -> str | None:
        """The PI item a column of the subject kind's own table is mapped to (``None``: not PI, unmapped)."""
        subj = self.subject(subject_id)
        store = self.store(subj.store) if subj is not None else None
        if subj is None or not isinstance(store, SqlStore):
            return None
        table = store.tables.get(subj.table)
        col = table.columns.get(column) if table is not None else None
        return col.item if col is not None and not col.not_pi else None

    def key_item(self, subject_id: str) -> str | None:
        """The PI item of a subject kind's key column (a visitor keyed by ``network.ip``), or ``None`` when
        the key is an internal id marked ``not_pi``. A PI-keyed subject is kept only encrypted by Yinsi."""
        subj = self.subject(subject_id)
        return self.subject_column_item(subject_id, subj.key) if subj is not None else None

    def subject_ids(self) -> list[str]:
        return [s.id for s in self.subjects]


# --------------------------------------------------------------------------------------- problems
@dataclass(frozen=True)
class DataMapProblem:
    """One problem in a data map, at ``loc`` (keys and list indexes into the map document)."""

    loc: Loc
    message: str
    severity: Literal["error", "warning"] = "error"


class DataMapInvalid(ValueError):
    """A data map with structural errors was asked for its locations."""

    def __init__(self, problems: list[DataMapProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{format_path(None, p.loc)}: {p.message}" for p in problems))


def format_path(datamap: DataMap | Mapping[str, Any] | None, loc: Loc) -> str:
    """A readable path such as ``stores[app_db].tables.agents.columns.phone``: list items are named by
    their ``id`` (or ``pattern`` for Redis keys) where the document has one."""
    node: Any = datamap.model_dump(mode="python") if isinstance(datamap, DataMap) else datamap
    parts: list[str] = []
    for key in loc:
        if isinstance(key, int):
            label: str | None = None
            if isinstance(node, list) and 0 <= key < len(node) and isinstance(node[key], Mapping):
                raw_label = node[key].get("id") or node[key].get("pattern")
                label = str(raw_label) if raw_label else None
            parts.append(f"[{label}]" if label else f"[{key}]")
            node = node[key] if isinstance(node, list) and 0 <= key < len(node) else None
        else:
            parts.append(f".{key}" if parts else key)
            node = node.get(key) if isinstance(node, Mapping) else None
    return "".join(parts)


# -------------------------------------------------------------------------------------- locations
@dataclass(frozen=True)
class Hop:
    """One step of a join path: ``from_table.from_column = to_table.to_column``."""

    from_table: str
    from_column: str
    to_table: str
    to_column: str

    def __str__(self) -> str:
        return f"{self.from_table}.{self.from_column} -> {self.to_table}.{self.to_column}"


@dataclass(frozen=True)
class Location:
    """One place where a PI item of a subject lives, and what erasure does there.

    ``id`` is stable across runs and edits elsewhere in the map: ``store.table.column@subject`` for SQL,
    ``store:pattern@subject`` for Redis, ``store/step/item@subject`` for manual steps.

    Finding the subject's data:
    - SQL with ``key_column``: ``SELECT .. FROM table WHERE key_column = :subject_id``;
    - SQL with ``join``: follow the hops; the last hop ends at the subject's table and key column, so the
      last hop's ``from_column`` equals the subject id;
    - Redis: ``key_pattern`` with ``{subject}`` = the subject id, ``{<attribute>}`` = the value of that
      column of the subject's row (``attributes``); if ``members_of`` is set, the one remaining
      placeholder takes each member of that set/list key;
    - manual: a person follows ``description``.
    """

    id: str
    subject: str
    store: str
    store_kind: StoreKind
    item: str
    item_name: str
    sensitive: bool
    erase: EraseAction
    table: str | None = None
    column: str | None = None
    row_erase: RowAction | None = None
    key_column: str | None = None
    join: tuple[Hop, ...] = ()
    key_pattern: str | None = None
    key_type: str | None = None
    members_of: str | None = None
    attributes: tuple[tuple[str, str], ...] = ()  # placeholder → column of the subject's table
    legal_hold: LegalHold | None = None
    retention: Retention | None = None
    description: str | None = None
    who: str | None = None
    access: str | None = None
    reach_name: str | None = None  # set when the table has several reaches for the subject kind
    match: tuple[tuple[str, str], ...] = ()  # SQL: column → the subject's attribute it equals
    shared_via: str | None = None  # SQL: the link table through which other subjects share these rows
    historical: bool = False  # SQL: a record of the past, left by correction unless asked for
    step: str | None = None  # manual: the step's id
    captures: tuple[tuple[str, str, str], ...] = ()  # manual: (store, table, column) captured for the step

    @property
    def place(self) -> str:
        """Where the rows are, as a step key names them: ``store.table`` (SQL), else the location id."""
        return f"{self.store}.{self.table}" if self.table is not None else self.id

    @property
    def reach_suffix(self) -> str:
        """``#name`` when the table has several reaches for the subject kind, else empty."""
        return f"#{self.reach_name}" if self.reach_name else ""

    @property
    def manual_key(self) -> str:
        """A manual step's id, the same in every request type: ``manual:store/step``."""
        return f"manual:{self.store}/{self.step or ''}"

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (enums as values, join hops as ``a.b -> c.d`` strings), plus ``how``."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, StrEnum):
                value = value.value
            elif isinstance(value, BaseModel):
                value = value.model_dump()
            elif f.name == "join":
                value = [str(h) for h in value]
            elif f.name in ("attributes", "match"):
                value = dict(value)
            elif f.name == "captures":
                value = [{"store": a, "table": b, "column": c} for a, b, c in value]
            out[f.name] = value
        out["how"] = self.how()
        return out

    def how(self) -> str:
        """How to find the rows, in one line (Chinese), for plans and reports."""
        if self.store_kind is StoreKind.SQL:
            shared = f"（与他人共享，经 {self.shared_via}；他人仍关联的行保留）" if self.shared_via else ""
            if self.match:
                return " 且 ".join(f"{self.table}.{c} = 主体的{a}" for c, a in self.match)
            if self.key_column:
                return f"{self.table}.{self.key_column} = 主体编号{shared}"
            return " → ".join(str(h) for h in self.join) + f"（末端 = 主体编号）{shared}"
        if self.store_kind is StoreKind.REDIS:
            via = f"（{{…}} 取自集合 {self.members_of} 的成员）" if self.members_of else ""
            return f"键 {self.key_pattern}{via}"
        return f"人工：{self.description}（{self.who}）"


def _locations(dm: DataMap) -> Iterator[Location]:
    tax = taxonomy()
    subjects = {s.id: s for s in dm.subjects}
    for store in dm.stores:
        if isinstance(store, SqlStore):
            for tname, table in store.tables.items():
                if table.not_pi:
                    continue
                for subject_id, reaches in table.reach_items():
                    several = len(reaches) > 1
                    for reach in reaches:
                        hops = tuple(_parse_hop(h) for h in reach.join)
                        suffix = f"#{reach.name}" if several and reach.name else ""
                        for cname, col in table.columns.items():
                            if col.not_pi or col.item is None or (reach.columns and cname not in reach.columns):
                                continue
                            pi = tax.item(col.item)
                            yield Location(
                                id=f"{store.id}.{tname}.{cname}@{subject_id}{suffix}", subject=subject_id,
                                store=store.id, store_kind=StoreKind.SQL, item=col.item, item_name=pi.name,
                                sensitive=pi.sensitive,
                                erase=_reach_column_action(table, reach, col) or EraseAction.DELETE_ROW,
                                table=tname, column=cname, row_erase=reach.erase or table.erase, key_column=reach.key,
                                join=tuple(h for h in hops if h is not None),
                                legal_hold=col.legal_hold or table.legal_hold, retention=table.retention,
                                reach_name=reach.name if several else None, match=tuple(reach.match.items()),
                                shared_via=table.shared_via, historical=col.historical,
                            )
        elif isinstance(store, RedisStore):
            for key in store.keys:
                pi = tax.item(key.item)
                subj = subjects[key.subject]
                names = set(_PLACEHOLDER.findall(key.pattern))
                attrs = tuple(sorted((n, subj.attributes[n]) for n in names if n in subj.attributes))
                yield Location(
                    id=f"{store.id}:{key.pattern}@{key.subject}", subject=key.subject, store=store.id,
                    store_kind=StoreKind.REDIS, item=key.item, item_name=pi.name, sensitive=pi.sensitive,
                    erase=key.erase, key_pattern=store.key_prefix + key.pattern, key_type=key.type,
                    members_of=store.key_prefix + key.members_of if key.members_of else None,
                    attributes=attrs, legal_hold=key.legal_hold,
                )
        else:
            for step in store.steps:
                for item in step.items:
                    pi = tax.item(item)
                    yield Location(
                        id=f"{store.id}/{step.id}/{item}@{step.subject}", subject=step.subject, store=store.id,
                        store_kind=StoreKind.MANUAL, item=item, item_name=pi.name, sensitive=pi.sensitive,
                        erase=step.erase, legal_hold=step.legal_hold, description=step.description, who=step.who,
                        access=step.access, step=step.id,
                        captures=tuple((c.store, c.table, c.column) for c in step.capture),
                    )


def _column_action(table: Table, col: Column) -> EraseAction | None:
    """The column's erase action, defaulting to the table's row action where that is unambiguous."""
    if col.erase is not None:
        return col.erase
    if col.free_text and table.erase in (None, RowAction.KEEP_ROW):
        return EraseAction.REDACT  # the person's rows keep the text, with the identifiers redacted
    if table.erase is RowAction.DELETE_ROW:
        return EraseAction.DELETE_ROW
    if table.erase is RowAction.KEEP_LEGAL_HOLD:
        return EraseAction.KEEP_LEGAL_HOLD
    return None


def _reach_column_action(table: Table, reach: Reach, col: Column) -> EraseAction | None:
    """The column's erase action for the rows of one reach: the reach's row action (default: the table's);
    rows that are deleted take every column with them."""
    row = reach.erase or table.erase
    if row is RowAction.DELETE_ROW:
        return EraseAction.DELETE_ROW
    if reach.erase is None:
        return _column_action(table, col)
    if col.erase is not None and col.erase is not EraseAction.DELETE_ROW:
        return col.erase
    if col.free_text and row is RowAction.KEEP_ROW:
        return EraseAction.REDACT
    if row is RowAction.KEEP_LEGAL_HOLD:
        return EraseAction.KEEP_LEGAL_HOLD
    return None


def _parse_hop(text: str) -> Hop | None:
    m = _JOIN_HOP.match(text)
    return Hop(m.group(1), m.group(2), m.group(3), m.group(4)) if m else None


# ---------------------------------------------------------------------------------- structure check
def _check_structure(dm: DataMap) -> list[DataMapProblem]:
    out: list[DataMapProblem] = []

    def err(loc: Loc, msg: str) -> None:
        out.append(DataMapProblem(loc, msg))

    tax = taxonomy()
    for label, field_name, ids in (("存储", "stores", [s.id for s in dm.stores]),
                                   ("主体", "subjects", [s.id for s in dm.subjects])):
        for k, i in enumerate(ids):
            if ids.index(i) != k:
                err((field_name, k, "id"), f"{label}编号 {i!r} 重复")

    for loc, item in dm.iter_item_refs():
        if item not in tax.items:
            err(loc, f"未知的个人信息项 {item!r}（见 src/yinsi/domain/data/pi_items.yaml）")

    subjects = {s.id: s for s in dm.subjects}
    for sk, subj in enumerate(dm.subjects):
        store = dm.store(subj.store)
        if store is None:
            err(("subjects", sk, "store"), f"主体 {subj.id} 所在的存储 {subj.store!r} 不存在")
            continue
        if not isinstance(store, SqlStore):
            err(("subjects", sk, "store"), f"主体 {subj.id} 必须锚定在 SQL 存储上，{subj.store!r} 不是")
            continue
        table = store.tables.get(subj.table)
        if table is None:
            err(("subjects", sk, "table"), f"主体 {subj.id} 的表 {subj.table!r} 不在存储 {store.id} 的映射中")
            continue
        for name, column in (("key", subj.key), *((f"attributes.{a}", c) for a, c in subj.attributes.items())):
            if column not in table.columns:
                err(("subjects", sk, *name.split(".")), f"主体 {subj.id} 引用的列 {subj.table}.{column} 不在映射中")
        if subj.id not in table.reach:
            err(("subjects", sk, "table"), f"主体表 {subj.table} 的 reach 中没有主体 {subj.id}")

    for sk, subj in enumerate(dm.subjects):
        _check_subject_extras(dm, sk, subj, err)
    _check_free_text(dm, out)
    _check_other_kinds(dm, out)
    for pk, check in enumerate(dm.prerequisites):
        _check_prerequisite(dm, pk, check, subjects, err)

    for sk, store in enumerate(dm.stores):
        if isinstance(store, SqlStore):
            for tname, table in store.tables.items():
                _check_table(store, sk, tname, table, subjects, err)
        elif isinstance(store, RedisStore):
            _check_redis(store, sk, subjects, err)
        else:
            for pk, step in enumerate(store.steps):
                ploc: Loc = ("stores", sk, "steps", pk)
                if step.subject not in subjects:
                    err((*ploc, "subject"), f"未知的主体 {step.subject!r}（主体在 subjects 中声明）")
                if not step.items:
                    err((*ploc, "items"), "人工步骤至少涉及一个个人信息项")
                if step.erase not in MANUAL_ACTIONS:
                    err((*ploc, "erase"), _bad_action(step.erase, MANUAL_ACTIONS, "人工步骤"))
                _check_hold(step.erase, step.legal_hold, None, ploc, err)
                for ck, cap in enumerate(step.capture):
                    _check_capture(dm, step.subject, cap, (*ploc, "capture", ck), err)
    return out


def _check_capture(dm: DataMap, subject_id: str, cap: Capture, loc: Loc, err: Err) -> None:
    """A manual step's capture reads a mapped column of an SQL table that reaches the step's subject."""
    store = dm.store(cap.store)
    if not isinstance(store, SqlStore):
        err((*loc, "store"), f"人工步骤要读取的存储 {cap.store!r} 不是数据地图中的 SQL 存储")
        return
    table = store.tables.get(cap.table)
    if table is None or table.not_pi:
        err((*loc, "table"), f"人工步骤要读取的表 {cap.table!r} 不在存储 {cap.store} 的个人信息映射中")
    elif cap.column not in table.columns:
        err((*loc, "column"), f"人工步骤要读取的列 {cap.table}.{cap.column} 不在映射中")
    elif not table.reaches(subject_id):
        err((*loc, "table"), f"表 {cap.table} 的 reach 中没有主体 {subject_id}，无法找到该主体的行")


def _check_subject_extras(dm: DataMap, sk: int, subj: Subject, err: Err) -> None:
    for channel, attribute in subj.verify_by.items():
        if attribute not in subj.attributes:
            err(("subjects", sk, "verify_by", channel), f"核验身份用的属性 {attribute!r} 不在主体 {subj.id} 的 attributes 中")
    if subj.cancelled_marker is None:
        return
    store = dm.store(subj.store)
    table = store.tables.get(subj.table) if isinstance(store, SqlStore) else None
    if table is None:
        return  # reported with the subject's anchor
    for column in subj.cancelled_marker:
        col = table.columns.get(column)
        if col is None:
            err(("subjects", sk, "cancelled_marker", column), f"注销标记列 {subj.table}.{column} 不在映射中")
        elif not col.not_pi:
            err(("subjects", sk, "cancelled_marker", column),
                f"注销标记列 {subj.table}.{column} 必须是 not_pi 列（注销时写入的是账号状态，不是个人信息）")


def _check_free_text(dm: DataMap, out: list[DataMapProblem]) -> None:
    """Subjects' identifiers are attributes (free text is searched for their values)."""
    for sk, subj in enumerate(dm.subjects):
        for k, name in enumerate(subj.identifiers):
            if name not in subj.attributes:
                out.append(DataMapProblem(("subjects", sk, "identifiers", k),
                                          f"标识属性 {name!r} 不在主体 {subj.id} 的 attributes 中"))


def _check_other_kinds(dm: DataMap, out: list[DataMapProblem]) -> None:
    """Warn where a person may also be known under another subject kind (identifiers of the same PI item)
    that none of the first kind's reaches covers: a cancellation then names that kind as not covered."""
    def items(subj: Subject) -> set[str]:
        found = {dm.subject_column_item(subj.id, subj.attributes[a]) for a in subj.identifiers if a in subj.attributes}
        return {i for i in found if i}

    for sk, subj in enumerate(dm.subjects):
        mine = items(subj)
        if not mine:
            continue
        for other in dm.subjects:
            shared = mine & items(other)
            if other.id == subj.id or not shared:
                continue
            store = dm.store(other.store)
            table = store.tables.get(other.table) if isinstance(store, SqlStore) else None
            if table is not None and not table.reaches(subj.id):
                out.append(DataMapProblem(("subjects", sk, "identifiers"),
                                          f"主体 {subj.id} 与 {other.id} 有相同类型的标识（{'、'.join(sorted(shared))}），"
                                          f"但表 {other.table} 没有 {subj.id} 的 reach：同一个人也可能是{other.name}，"
                                          f"注销时将在结果中注明未覆盖（可加 match reach 覆盖）", "warning"))


def _free_text_only(table: Table) -> bool:
    """Whether every PI column of the table is free text (such a table needs no reach: the text is
    searched for the person's identifiers in every row)."""
    pi = [col for col in table.columns.values() if not col.not_pi and col.item is not None]
    return bool(pi) and all(col.free_text for col in pi)


def _check_prerequisite(dm: DataMap, pk: int, check: PrerequisiteCheck, subjects: Mapping[str, Subject],
                        err: Err) -> None:
    loc: Loc = ("prerequisites", pk)
    if check.subject not in subjects:
        err((*loc, "subject"), f"未知的主体 {check.subject!r}（主体在 subjects 中声明）")
        return
    store = dm.store(check.store)
    if not isinstance(store, SqlStore):
        err((*loc, "store"), f"注销前提检查的存储 {check.store!r} 不是数据地图中的 SQL 存储")
        return
    table = store.tables.get(check.table)
    if table is None or table.not_pi:
        err((*loc, "table"), f"注销前提检查的表 {check.table!r} 不在存储 {store.id} 的个人信息映射中")
    elif check.subject not in table.reach:
        err((*loc, "table"), f"表 {check.table} 的 reach 中没有主体 {check.subject}，无法检查该前提")


def _bad_action(action: EraseAction, allowed: Iterable[EraseAction], where: str) -> str:
    names = "、".join(sorted(a.value for a in allowed))
    return f"{where}不能使用删除动作 {action.value}（可用：{names}）"


def _check_hold(action: EraseAction | None, hold: LegalHold | None, inherited: LegalHold | None, loc: Loc,
                err: Err, columns: Mapping[str, Column] | None = None) -> None:
    """``keep_legal_hold`` needs a hold with a basis and a period (min_days or a RULES.md rule); a date
    column only in SQL tables (``columns``: the table's), and one of the table's columns."""
    if hold is not None:
        _check_hold_fields(hold, (*loc, "legal_hold"), err, columns)
    if action is EraseAction.KEEP_LEGAL_HOLD and hold is None and inherited is None:
        err((*loc, "erase"), "法定保存（keep_legal_hold）必须给出 legal_hold：依据（basis）与保存期限（min_days 或 rule）")


def _check_hold_fields(hold: LegalHold, loc: Loc, err: Err, columns: Mapping[str, Column] | None = None) -> None:
    if not (hold.basis or "").strip():
        err(loc, "法定保存缺少依据（basis）：写明法律条款，例如“电子商务法第三十一条”")
    if hold.min_days is None and hold.rule is None:
        err(loc, "法定保存缺少期限：给出 min_days 或 RULES.md 规则编号（rule，例如 T2）")
    if hold.rule is not None and not _RULE_ID.match(hold.rule):
        err((*loc, "rule"), f"规则编号 {hold.rule!r} 不是 RULES.md 的编号格式（例如 T2）")
    if hold.date_column is not None:
        if columns is None:
            err((*loc, "date_column"), "只有 SQL 表的法定保存可以按行的日期列（date_column）起算")
        elif hold.date_column not in columns:
            err((*loc, "date_column"), f"法定保存的起算日期列 {hold.date_column} 不在该表的列映射中")


def _check_table(store: SqlStore, sk: int, tname: str, table: Table, subjects: Mapping[str, Subject],
                 err: Err) -> None:
    tloc: Loc = ("stores", sk, "tables", tname)
    if table.not_pi:
        if not (table.why or "").strip():
            err((*tloc, "why"), f"表 {tname} 标记为 not_pi，必须说明理由（why）")
        if table.reach or table.columns or table.erase is not None:
            err(tloc, f"表 {tname} 标记为 not_pi，不能再给出 reach、columns 或 erase")
        return
    if not table.columns:
        err((*tloc, "columns"), f"表 {tname} 没有列映射：每一列都要映射到个人信息项或标记 not_pi")
    if not table.reach and not _free_text_only(table):
        err((*tloc, "reach"), f"表 {tname} 没有说明如何关联到主体（reach：key 或 join）")
    every_reach_erases = bool(table.reach) and all(r.erase is not None for _, rs in table.reach_items() for r in rs)
    if table.erase is None and not every_reach_erases and not (_free_text_only(table) and not table.reach):
        err((*tloc, "erase"), f"表 {tname} 缺少行级删除动作（erase：delete_row、keep_row 或 keep_legal_hold）")
    if table.updated_at is not None and table.updated_at not in table.columns:
        err((*tloc, "updated_at"), f"更新时间列 {tname}.{table.updated_at} 不在映射中")
    if table.legal_hold is not None:
        _check_hold_fields(table.legal_hold, (*tloc, "legal_hold"), err, table.columns)
    if table.erase is RowAction.KEEP_LEGAL_HOLD and table.legal_hold is None:
        err((*tloc, "erase"), f"表 {tname} 整行法定保存，必须给出 legal_hold：依据（basis）与保存期限")
    if table.retention is not None and table.retention.time_column not in table.columns:
        err((*tloc, "retention", "time_column"), f"存储期限的时间列 {tname}.{table.retention.time_column} 不在映射中")

    for subject_id, reaches in table.reach_items():
        rloc: Loc = (*tloc, "reach", subject_id)
        subj = subjects.get(subject_id)
        if subj is None:
            err(rloc, f"未知的主体 {subject_id!r}（主体在 subjects 中声明）")
            continue
        several = len(reaches) > 1
        if not reaches:
            err(rloc, f"表 {tname} 对主体 {subject_id} 的 reach 列表为空")
        names = [r.name for r in reaches]
        for k, reach in enumerate(reaches):
            kloc: Loc = (*rloc, k) if isinstance(table.reach[subject_id], list) else rloc
            if several and reach.name is None:
                err(kloc, f"表 {tname} 对主体 {subject_id} 有多个 reach，每个都要有名称（name）")
            elif reach.name is not None and names.index(reach.name) != k:
                err((*kloc, "name"), f"表 {tname} 对主体 {subject_id} 的 reach 名称 {reach.name!r} 重复")
            _check_reach(store, tname, table, subj, reach, kloc, err, anchor=tname == subj.table and not several)
        if tname == subj.table and several and not any(r.key == subj.key for r in reaches):
            err(rloc, f"主体表 {tname} 的 reach 中必须有一个以主体键 {subj.key} 关联（key: {subj.key}）")
    if table.shared_via is not None:
        _check_shared(store, sk, tname, table, err)

    has_pi = False
    for cname, col in table.columns.items():
        cloc: Loc = (*tloc, "columns", cname)
        if col.not_pi:
            if col.item is not None or col.erase is not None or col.legal_hold is not None:
                err(cloc, f"列 {tname}.{cname} 标记为 not_pi，不能再给出 item、erase 或 legal_hold")
            if not (col.why or "").strip():
                err((*cloc, "why"), f"列 {tname}.{cname} 标记为 not_pi，必须说明理由（why）")
            continue
        if col.item is None:
            err(cloc, f"列 {tname}.{cname} 既没有映射到个人信息项（item）也没有标记 not_pi")
            continue
        has_pi = True
        action = _column_action(table, col)
        if action is EraseAction.REDACT:
            if not col.free_text:
                err((*cloc, "erase"), f"只有自由文本列（free_text: true）可以使用 redact，列 {tname}.{cname} 不是")
            elif table.erase not in (None, RowAction.KEEP_ROW):
                err((*cloc, "erase"), f"表 {tname} 的行级动作是 {table.erase}，自由文本列 {cname} 不能另设 redact")
            continue
        if action is None:
            err((*cloc, "erase"), f"表 {tname} 按列处理（keep_row），列 {cname} 必须给出删除动作（erase）")
            continue
        if action not in COLUMN_ACTIONS:
            err((*cloc, "erase"), _bad_action(action, COLUMN_ACTIONS, "SQL 列"))
            continue
        if table.erase is RowAction.DELETE_ROW and action is not EraseAction.DELETE_ROW and not _kept_by_a_reach(
                table, cname):
            err((*cloc, "erase"), f"表 {tname} 按行删除（delete_row），列 {cname} 不能另设 {action.value}")
        if action is EraseAction.DELETE_ROW and table.erase is not RowAction.DELETE_ROW:
            err((*cloc, "erase"), f"列 {cname} 要求删除整行，但表 {tname} 的行级动作是 {table.erase}")
        _check_hold(action, col.legal_hold, table.legal_hold, cloc, err, table.columns)
    if table.columns and not has_pi:
        err((*tloc, "columns"), f"表 {tname} 没有任何个人信息列：请把整表标记为 not_pi 并说明理由")


def _kept_by_a_reach(table: Table, cname: str) -> bool:
    """Whether a reach with its own keep_row / keep_legal_hold action claims the column (its action then
    applies to those rows; the table's delete_row to the others)."""
    return any(r.erase in (RowAction.KEEP_ROW, RowAction.KEEP_LEGAL_HOLD) and (not r.columns or cname in r.columns)
               for _, rs in table.reach_items() for r in rs)


def _check_reach(store: SqlStore, tname: str, table: Table, subj: Subject, reach: Reach, rloc: Loc, err: Err, *,
                 anchor: bool) -> None:
    """One reach: exactly one of key, join, match; mapped columns; its own row action and claimed columns."""
    given = [w for w, v in (("key", reach.key), ("join", reach.join), ("match", reach.match)) if v]
    if len(given) != 1:
        err(rloc, "reach 必须给出 key（存主体编号的列）、join（关联路径）或 match（等于主体属性的列）之一，且只能给一个"
                  + (f"（现为：{'、'.join(given)}）" if given else ""))
        return
    if reach.match:
        for column, attribute in reach.match.items():
            if column not in table.columns:
                err((*rloc, "match", column), f"匹配列 {tname}.{column} 不在该表的列映射中")
            if attribute not in subj.attributes:
                err((*rloc, "match", column), f"匹配的属性 {attribute!r} 不在主体 {subj.id} 的 attributes 中"
                                              f"（可用：{'、'.join(subj.attributes) or '无'}）")
    elif subj.store != store.id:
        err(rloc, f"主体 {subj.id} 在存储 {subj.store} 中，不能跨存储关联到表 {tname}（跨存储请用 match 按属性匹配）")
        return
    elif reach.key is not None:
        if reach.key not in table.columns:
            err((*rloc, "key"), f"关联列 {tname}.{reach.key} 不在该表的列映射中")
        if anchor and reach.key != subj.key:
            err((*rloc, "key"), f"主体表 {tname} 的关联列必须是主体键 {subj.key}")
    else:
        _check_join(store, tname, subj, reach.join, rloc, err)
    for k, cname in enumerate(reach.columns):
        col = table.columns.get(cname)
        if col is None or col.not_pi or col.item is None:
            err((*rloc, "columns", k), f"reach 声明的列 {tname}.{cname} 不是该表映射的个人信息列")
    if reach.erase is RowAction.KEEP_LEGAL_HOLD and table.legal_hold is None:
        err((*rloc, "erase"), f"reach 按法定保存处理表 {tname} 的行，表必须给出 legal_hold：依据与保存期限")
    if reach.erase is None:
        return
    for cname, col in table.columns.items():
        if col.not_pi or col.item is None or (reach.columns and cname not in reach.columns):
            continue
        action = _reach_column_action(table, reach, col)
        if reach.erase is RowAction.DELETE_ROW and col.erase is EraseAction.KEEP_LEGAL_HOLD:
            err((*rloc, "erase"), f"reach 删除整行，但列 {tname}.{cname} 要求法定保存：请改用 keep_legal_hold")
        elif action is None:
            err((*rloc, "erase"), f"reach 保留行（{reach.erase.value}），列 {tname}.{cname} 必须给出删除动作（erase）")


def _check_shared(store: SqlStore, sk: int, tname: str, table: Table, err: Err) -> None:
    """A shared table names a mapped link table, and every reach goes through it: its first hop joins the
    shared table to the link table, from which the path goes on to the subject."""
    sloc: Loc = ("stores", sk, "tables", tname, "shared_via")
    link = store.tables.get(str(table.shared_via))
    if link is None or link.not_pi:
        err(sloc, f"共享表 {tname} 的关联表 {table.shared_via!r} 不在存储 {store.id} 的个人信息映射中")
        return
    for subject_id, reaches in table.reach_items():
        for reach in reaches:
            hop = _parse_hop(reach.join[0]) if reach.join else None
            if hop is None or hop.from_table != tname or hop.to_table != table.shared_via or len(reach.join) < 2:
                err(sloc, f"共享表 {tname} 对主体 {subject_id} 的 reach 必须是 join，第一步从 {tname} 到关联表 "
                          f"{table.shared_via}（例如 “{tname}.id -> {table.shared_via}.{tname}_id”），再到主体")


def _check_join(store: SqlStore, tname: str, subj: Subject, join: Sequence[str], rloc: Loc, err: Err) -> None:
    """A join path must start at this table, chain hop to hop over mapped columns, and end at the
    subject's table and key column."""
    at = tname
    for hk, text in enumerate(join):
        hloc: Loc = (*rloc, "join", hk)
        hop = _parse_hop(text)
        if hop is None:
            err(hloc, f"关联步骤 {text!r} 的格式应为 “表.列 -> 表.列”")
            return
        if hop.from_table != at:
            err(hloc, f"关联路径断开：这一步应从表 {at} 出发，实际从 {hop.from_table} 出发")
            return
        for t, c in ((hop.from_table, hop.from_column), (hop.to_table, hop.to_column)):
            mapped = store.tables.get(t)
            if mapped is None:
                err(hloc, f"关联路径经过的表 {t} 不在存储 {store.id} 的映射中")
                return
            if c not in mapped.columns:
                err(hloc, f"关联路径经过的列 {t}.{c} 不在映射中")
                return
        at = hop.to_table
        if hk == len(join) - 1 and (hop.to_table, hop.to_column) != (subj.table, subj.key):
            err(hloc, f"关联路径没有到达主体 {subj.id}：终点是 {hop.to_table}.{hop.to_column}，"
                      f"应为 {subj.table}.{subj.key}")


def _check_redis(store: RedisStore, sk: int, subjects: Mapping[str, Subject], err: Err) -> None:
    patterns = [k.pattern for k in store.keys]
    for kk, key in enumerate(store.keys):
        kloc: Loc = ("stores", sk, "keys", kk)
        if patterns.index(key.pattern) != kk:
            err((*kloc, "pattern"), f"键模式 {key.pattern!r} 重复")
        if key.erase not in REDIS_ACTIONS:
            err((*kloc, "erase"), _bad_action(key.erase, REDIS_ACTIONS, "Redis 键"))
        _check_hold(key.erase, key.legal_hold, None, kloc, err)
        subj = subjects.get(key.subject)
        if subj is None:
            err((*kloc, "subject"), f"未知的主体 {key.subject!r}（主体在 subjects 中声明）")
            continue
        known = {"subject", *subj.attributes}
        names = _PLACEHOLDER.findall(key.pattern)
        if "" in names:
            err((*kloc, "pattern"), "键模式中有空的占位符 {}")
            continue
        free = [n for n in names if n not in known]
        if key.members_of is None:
            if free:
                err((*kloc, "pattern"), f"占位符 {{{free[0]}}} 既不是 {{subject}} 也不是主体 {subj.id} 的属性"
                                        f"（attributes：{'、'.join(subj.attributes) or '无'}），也没有 members_of 提供取值")
            elif not names:
                err((*kloc, "pattern"), "键模式没有占位符，无法关联到某个主体（用 {subject} 或主体属性）")
        else:
            if len(free) != 1:
                err((*kloc, "pattern"), "使用 members_of 时，键模式必须恰好有一个由成员填充的占位符"
                                        f"（现有未绑定占位符：{'、'.join(free) or '无'}）")
            parent = next((k for k in store.keys if k.pattern == key.members_of), None)
            if parent is None:
                err((*kloc, "members_of"), f"members_of 指向的键模式 {key.members_of!r} 不在该存储的映射中")
            elif parent.type not in ("set", "list", "zset"):
                err((*kloc, "members_of"), f"members_of 指向的键 {parent.pattern} 类型是 {parent.type}，应为 set、list 或 zset")
            elif parent.subject != key.subject or parent.members_of is not None:
                err((*kloc, "members_of"), f"members_of 指向的键 {parent.pattern} 必须属于同一主体且能直接定位")


# ------------------------------------------------------------------------------- declaration check
def _check_declaration(dm: DataMap, decl: Declaration) -> list[DataMapProblem]:
    out: list[DataMapProblem] = []
    if dm.tenant != decl.tenant:
        out.append(DataMapProblem(("tenant",), f"数据地图属于租户 {dm.tenant}，政策声明属于租户 {decl.tenant}"))
    if dm.declaration_version is not None and dm.declaration_version != decl.version.label:
        out.append(DataMapProblem(("declaration_version",), f"数据地图针对声明版本 {dm.declaration_version}，"
                                                            f"给出的政策声明版本是 {decl.version.label}"))
    collected = set(decl.collected_items())
    tax = taxonomy()
    for loc, item in dm.iter_item_refs():
        if item in tax.items and item not in collected:
            out.append(DataMapProblem(loc, f"个人信息项 {item}（{tax.items[item].name}）不在政策声明 "
                                           f"{decl.tenant} {decl.version.label} 收集的个人信息中：先在声明中载明"
                                           "其功能、目的和合法性基础，再保存它"))
    for rid in dm.recipients:
        if decl.recipient(rid) is None:
            out.append(DataMapProblem(("recipients", rid), f"接收方 {rid!r} 不在政策声明 {decl.tenant} "
                                                           f"{decl.version.label} 的接收方中"))
    explained = set(dm.mapped_items()) | {ns.item for ns in dm.not_stored}
    for item in decl.collected_items():
        if item not in explained:
            name = tax.items[item].name if item in tax.items else item
            out.append(DataMapProblem(("not_stored",), f"政策声明收集 {item}（{name}），但数据地图既未映射它也未在 "
                                                       "not_stored 中说明去向", "warning"))
    return out


# -------------------------------------------------------------------------------- live schema check
@dataclass(frozen=True)
class LiveColumn:
    """A column as the live database reports it."""

    name: str
    nullable: bool
    type: str = ""


@dataclass(frozen=True)
class LiveSchema:
    """Tables and columns of a live SQL database (from SQLAlchemy inspection)."""

    tables: Mapping[str, Sequence[LiveColumn]] = field(default_factory=dict)


def check_live_sql(dm: DataMap, store_id: str, live: LiveSchema) -> list[DataMapProblem]:
    """Compare a SQL store's mapping with the live schema: every live table must be mapped (or marked
    ``not_pi``), every live column of a mapped table must be mapped or ``not_pi``, every mapped table and
    column must exist, and a column erased by ``null`` must be nullable."""
    out: list[DataMapProblem] = []
    sk = next((k for k, s in enumerate(dm.stores) if s.id == store_id), None)
    store = dm.store(store_id)
    if sk is None or not isinstance(store, SqlStore):
        return [DataMapProblem(("stores",), f"没有编号为 {store_id!r} 的 SQL 存储")]
    for tname in sorted(set(live.tables) - set(store.tables)):
        out.append(DataMapProblem(("stores", sk, "tables"), f"数据库中的表 {tname} 不在数据地图中："
                                                            "映射它的每一列，或把整表标记为 not_pi 并说明理由"))
    for tname, table in store.tables.items():
        tloc: Loc = ("stores", sk, "tables", tname)
        if tname not in live.tables:
            out.append(DataMapProblem(tloc, f"数据地图中的表 {tname} 在数据库中不存在"))
            continue
        if table.not_pi:
            continue
        live_cols = {c.name: c for c in live.tables[tname]}
        for cname in live_cols:
            if cname not in table.columns:
                out.append(DataMapProblem((*tloc, "columns"), f"数据库表 {tname} 的列 {cname} 既没有映射到个人信息项，"
                                                              "也没有标记 not_pi"))
        for cname, col in table.columns.items():
            found = live_cols.get(cname)
            if found is None:
                out.append(DataMapProblem((*tloc, "columns", cname), f"数据地图中的列 {tname}.{cname} 在数据库中不存在"))
            elif not col.not_pi and _column_action(table, col) is EraseAction.NULL and not found.nullable:
                out.append(DataMapProblem((*tloc, "columns", cname, "erase"),
                                          f"列 {tname}.{cname} 在数据库中是 NOT NULL，无法按 null 删除"))
    return out


def redis_key_regex(prefix: str, pattern: str) -> re.Pattern[str]:
    """The regular expression matching concrete keys of ``pattern`` (a placeholder matches one segment
    without ``:``)."""
    parts = _PLACEHOLDER.split(pattern)
    rx = "".join(re.escape(p) if k % 2 == 0 else f"(?P<{p}>[^:]+)" for k, p in enumerate(parts))
    return re.compile(f"^{re.escape(prefix)}{rx}$")


_SHAPE = re.compile(r"[0-9a-fA-F]{16,}|\d+")


def check_live_redis(dm: DataMap, store_id: str, keys: Mapping[str, str], examples: int = 3) -> list[DataMapProblem]:
    """Compare a Redis store's mapping with a sample of live keys (key → Redis type): every key under the
    store's prefix must match a mapped pattern, with the mapped type. Unmatched keys are grouped by shape
    (digits and long hex runs replaced by ``*``) so a million keys give one problem, with examples."""
    sk = next((k for k, s in enumerate(dm.stores) if s.id == store_id), None)
    store = dm.store(store_id)
    if sk is None or not isinstance(store, RedisStore):
        return [DataMapProblem(("stores",), f"没有编号为 {store_id!r} 的 Redis 存储")]
    matchers = [(kk, key, redis_key_regex(store.key_prefix, key.pattern)) for kk, key in enumerate(store.keys)]
    unmatched: dict[str, list[str]] = {}
    wrong_type: dict[int, tuple[str, str]] = {}
    for name, rtype in keys.items():
        if not name.startswith(store.key_prefix):
            continue
        hit = next(((kk, key) for kk, key, rx in matchers if rx.match(name)), None)
        if hit is None:
            shape = store.key_prefix + _SHAPE.sub("*", name[len(store.key_prefix):])
            unmatched.setdefault(shape, []).append(name)
        elif hit[1].type != rtype and hit[0] not in wrong_type:
            wrong_type[hit[0]] = (name, rtype)
    out: list[DataMapProblem] = []
    for shape, names in sorted(unmatched.items()):
        sample = "、".join(sorted(names)[:examples])
        out.append(DataMapProblem(("stores", sk, "keys"), f"Redis 中有 {len(names)} 个键（形如 {shape}，例如 {sample}）"
                                                          "不匹配数据地图中的任何键模式"))
    for kk, (name, rtype) in sorted(wrong_type.items()):
        key = store.keys[kk]
        out.append(DataMapProblem(("stores", sk, "keys", kk, "type"),
                                  f"键 {name} 在 Redis 中的类型是 {rtype}，数据地图写的是 {key.type}"))
    return out
