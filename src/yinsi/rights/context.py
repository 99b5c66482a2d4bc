"""What every part of the rights engine shares (权利请求的公共环境): the database sessions and clock, the audit
trail and the tenant's key ring, the data maps and the addresses of their stores, the published
declarations, the notification outbox and the consent ledger; and the request lookups and encryption helpers
built on them. The use cases live beside it, one module per concern (intake, verify, erasure, copy, …);
:class:`yinsi.rights.service.RightsService` gathers them behind one object.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from yinsi.config import data_dir, database_url, is_default_database
from yinsi.declarations import parse_declaration
from yinsi.domain.datamap import DataMap, Subject
from yinsi.domain.deadlines import ChineseCalendar
from yinsi.domain.policy import Declaration
from yinsi.domain.rights import RequestType
from yinsi.protect.errors import KeyNotFound
from yinsi.services.audit_trail import AuditTrail
from yinsi.storage.engine import make_engine, make_session_factory
from yinsi.storage.migrate import ensure_current
from yinsi.storage.repository import PolicyVersionRepository
from yinsi.storage.rights_tables import DETAILS_FIELD, IDENTITY_FIELD, RightsRequest

BEIJING = ZoneInfo("Asia/Shanghai")
Clock = Callable[[], datetime]


class RequestError(ValueError):
    """A request operation a person can act on (Chinese message)."""


class ErasureIncomplete(RuntimeError):
    """The read-back after erasure found data left: the exact locations are named."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


@dataclass
class Job:
    """What a run needs of its request (read once, in the transaction that started the run)."""

    tenant: str
    request_id: str
    kind: str
    subject: str
    type: RequestType
    details: dict[str, Any]
    actor: str
    policy_label: str
    decl: Declaration | None = None  # the tenant's current declaration, read once per run

    def acting_as(self, rtype: RequestType) -> Job:
        return Job(self.tenant, self.request_id, self.kind, self.subject, rtype, self.details, self.actor,
                   self.policy_label, self.decl)


class RightsContext:
    """The shared environment of the rights use cases (see the module docstring).

    ``datamaps``: tenant → its data map; ``store_urls``: store id → address (else the map's
    ``connection``); ``channels``: outbox channel adapters (default: from the environment, see
    docs/notify.md); ``exports_dir``: where encrypted packages are kept (default ``<data dir>/exports``).
    """

    def __init__(self, url: str | None = None, *, datamaps: Mapping[str, DataMap] | None = None,
                 store_urls: Mapping[str, str] | None = None, clock: Clock = utcnow,
                 exports_dir: Path | None = None, channels: Mapping[str, Any] | None = None) -> None:
        self.url = url or database_url()
        ensure_current(self.url, auto_upgrade=is_default_database(self.url))
        self.engine = make_engine(self.url, pool_pre_ping=False, pool_recycle=300)  # see yinsi.stores.sql._engine
        self.sessions: sessionmaker[Session] = make_session_factory(self.engine)
        self.datamaps = dict(datamaps or {})
        self.store_urls = dict(store_urls or {})
        self.clock = clock
        self.calendar = ChineseCalendar()
        self.exports_dir = exports_dir or (data_dir() / "exports")
        self.audit = AuditTrail(self.sessions)
        self._channels = channels
        self._outbox: Any = None
        self._consents: Any = None
        self._declarations: dict[tuple[str, str], Declaration] = {}

    def close(self) -> None:
        if self._consents is not None:
            self._consents.close()
        self.engine.dispose()

    # --- wiring ------------------------------------------------------------------------------------------
    @property
    def outbox(self) -> Any:
        """The notification outbox (channels from the environment unless given)."""
        if self._outbox is None:
            from yinsi.notify.outbox import Outbox
            from yinsi.notify.settings import NotifySettings

            channels = self._channels if self._channels is not None else NotifySettings.from_env().channels()
            self._outbox = Outbox(self.sessions, self.audit.ring, channels, clock=self.clock)
        return self._outbox

    @property
    def consents(self) -> Any:
        if self._consents is None:
            from yinsi.services.consent import ConsentService

            self._consents = ConsentService(self.url, clock=self.clock)
        return self._consents

    def flush_consents(self) -> None:
        """Write the processing records this process still buffers (when the ledger was opened)."""
        if self._consents is not None:
            self._consents.flush()

    def deliver(self, tenant: str | None = None) -> Any:
        """Send the due outbox messages now (verification codes, R13 notices); returns the report."""
        return self.outbox.deliver(tenant=tenant)

    @contextmanager
    def tx(self) -> Iterator[Session]:
        with self.sessions() as s:
            yield s
            s.commit()

    # --- the tenant's declaration and data map -----------------------------------------------------------
    def declaration(self, tenant: str, label: str | None = None) -> Declaration:
        """The tenant's latest published declaration (or the version ``label``), parsed once per version."""
        with self.sessions() as s:
            repo = PolicyVersionRepository(s)
            name = repo.latest_label(tenant) if label is None else label
            cached = self._declarations.get((tenant, name or ""))
            if cached is not None:
                return cached
            v = repo.get(tenant, name) if name is not None else None
            if v is None:
                raise RequestError(f"租户 {tenant} 尚未发布隐私政策；请先运行：yinsi policy publish 声明文件")
            decl = self._declarations[(tenant, v.label)] = parse_declaration(v.declaration_yaml, f"{tenant}@{v.label}")
            return decl

    _declaration = declaration  # the name tests and older callers use

    def datamap(self, tenant: str) -> DataMap:
        dm = self.datamaps.get(tenant)
        if dm is None:
            raise RequestError(f"租户 {tenant} 没有数据地图；请用 --datamap 指定（见 docs/datamap.md）")
        return dm

    @staticmethod
    def subject_kind(dm: DataMap, kind: str) -> Subject:
        subj = dm.subject(kind)
        if subj is None:
            raise RequestError(f"数据地图中没有主体类型 {kind}（可选：{'、'.join(dm.subject_ids())}）")
        return subj

    def connectors(self, dm: DataMap, tenant: str) -> dict[str, Any]:
        """A store connector per store of the map (subjects pseudonymised with the tenant's key in details);
        a store that fails names itself (:mod:`yinsi.rights.reach`)."""
        return {store.id: self.connector(dm, tenant, store.id) for store in dm.stores}

    def connector(self, dm: DataMap, tenant: str, store_id: str) -> Any:
        """The connector of one store of the map (see :meth:`connectors`)."""
        from yinsi.rights.reach import guarded
        from yinsi.stores.base import connector_for

        def pseudonymise(value: str) -> str:
            return self.audit.pseudonym(tenant, value)

        return guarded(dm, store_id, lambda: connector_for(dm, store_id, urls=self.store_urls,
                                                           pseudonymise=pseudonymise))

    def attributes(self, dm: DataMap, kind: str, subject: str) -> dict[str, str]:
        """The subject's attributes (e.g. the phone) read from its row; a failing store names itself."""
        from yinsi.rights.reach import reaching
        from yinsi.stores.base import resolve_attributes

        subj = self.subject_kind(dm, kind)
        with reaching(dm, subj.store):
            return resolve_attributes(dm, subject, self.store_urls, kind=kind)

    def subject_exists(self, dm: DataMap, tenant: str, kind: str, subject: str) -> bool:
        """Whether the app holds the subject's own row (its table, by its key)."""
        subj = self.subject_kind(dm, kind)
        anchor = next((loc for loc in dm.locations(kind) if loc.store == subj.store and loc.table == subj.table
                       and loc.key_column == subj.key), None)
        if anchor is None:
            return True  # nothing to look in: the map keeps no column of the subject's own table
        return bool(self.connector(dm, tenant, subj.store).read(anchor, subject, whole=True))

    # --- requests ----------------------------------------------------------------------------------------
    def get(self, s: Session, tenant: str, request_id: str, *, lock: bool = False) -> RightsRequest:
        """The tenant's request by its id or the id's first 8 or more characters ("not found" otherwise)."""
        if lock and len(request_id) == 36:
            row = s.scalars(select(RightsRequest).where(RightsRequest.id == request_id).with_for_update()).one_or_none()
            if row is None or row.tenant_id != tenant:
                raise RequestError(f"租户 {tenant} 没有编号为 {request_id} 的请求")
            return row
        row = s.get(RightsRequest, request_id) if len(request_id) == 36 else None
        if row is None and 8 <= len(request_id) < 36:
            found = s.scalars(select(RightsRequest).where(RightsRequest.tenant_id == tenant,
                                                          RightsRequest.id.startswith(request_id, autoescape=True))
                              .limit(2)).all()
            row = found[0] if len(found) == 1 else None
        if row is None or row.tenant_id != tenant:
            raise RequestError(f"租户 {tenant} 没有编号为 {request_id} 的请求")
        return row

    # --- encryption --------------------------------------------------------------------------------------
    def cipher(self, tenant: str) -> Any:
        try:
            return self.audit.ring.cipher(tenant)
        except KeyNotFound:
            self.audit.ensure_tenant_keys(tenant)
            return self.audit.ring.cipher(tenant)

    def encrypt(self, tenant: str, field: str, value: Any) -> str:
        return str(self.cipher(tenant).encrypt_text(field, dumps(value)))

    def decrypt(self, tenant: str, field: str, token: str | None) -> Any:
        if not token:
            return None
        return json.loads(self.cipher(tenant).decrypt_text(field, token))

    def blind(self, tenant: str, value: str) -> str:
        try:
            return str(self.audit.ring.blind_index(tenant, "text", value))
        except KeyNotFound:
            self.audit.ensure_tenant_keys(tenant)
            return str(self.audit.ring.blind_index(tenant, "text", value))

    # --- the subject of a request ------------------------------------------------------------------------
    def subject_ref(self, tenant: str, kind: str | None, subject: str) -> str:
        """What ``rights_requests.subject_id`` holds: ``bi:`` and the tenant's blind index of the subject's
        key, for every subject kind (an app may key its users by phone number), so that no id is stored in
        clear; the key itself is kept encrypted in ``identity_encrypted`` (the request queries the app's
        stores with it). The index key never rotates, so the reference keeps its meaning."""
        del kind  # every kind alike (before issue 11: only kinds keyed by PI)
        return "bi:" + self.blind(tenant, subject)

    def identity(self, row: RightsRequest) -> dict[str, Any]:
        return dict(self.decrypt(row.tenant_id, IDENTITY_FIELD, row.identity_encrypted) or {})

    def subject_of(self, row: RightsRequest) -> str:
        """The subject's key (decrypted for a PI-keyed subject kind)."""
        if row.identity_encrypted is None:
            return row.subject_id
        return str(self.identity(row).get("subject") or row.subject_id)

    def shown_subject(self, row: RightsRequest) -> str:
        """The subject as ``show`` and ``list`` give it: a PI-keyed one only masked."""
        if not row.subject_id.startswith("bi:"):
            return row.subject_id
        from yinsi.protect.masking import mask_value

        dm = self.datamaps.get(row.tenant_id)
        item = dm.key_item(row.subject_kind) if dm is not None else None
        if item is None:  # an opaque app id: shown as it is (decrypted)
            return self.subject_of(row)
        return mask_value(item.rsplit(".", 1)[-1], self.subject_of(row))

    def details(self, row: RightsRequest) -> dict[str, Any]:
        return dict(self.decrypt(row.tenant_id, DETAILS_FIELD, row.details_encrypted) or {})
