"""The audit trail as the services use it: every entry's subject pseudonymised with the tenant's key.

Changes and their audit entries are written in the same transaction (``record_in``), so one never exists
without the other. The tenant's keys are created when it is first needed (a tenant exists once its
policy is published); the master key is read from ``YINSI_MASTER_KEY`` / ``YINSI_MASTER_KEY_FILE``, and
when neither is set and ``<data dir>/master.key`` does not exist yet, it is created there (0600), as
``yinsi keys init`` would — unless the database already holds keys wrapped by a master key.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from yinsi.audit import AuditAction, AuditLog, AuditRecord
from yinsi.protect.errors import KeyNotFound, MasterKeyError
from yinsi.protect.keys import (
    MASTER_KEY_ENV,
    MASTER_KEY_FILE_ENV,
    KeyRing,
    MasterKey,
    create_master_key_file,
    load_master_key,
    master_key_path,
    refuse_new_master_key,
)
from yinsi.storage.keys_tables import DataKeyRow


def master_key(sessions: sessionmaker[Session] | None = None) -> MasterKey:
    """The configured master key; created in the data directory on first use when none is configured.

    Never created when Yinsi's database (``sessions``, default: the configured database) already holds
    keys wrapped by a master key: a new one could not unwrap them, so the missing key file is reported
    with what to do instead (:func:`yinsi.protect.keys.refuse_new_master_key`).
    """
    try:
        return load_master_key()
    except MasterKeyError:
        if os.environ.get(MASTER_KEY_ENV) or os.environ.get(MASTER_KEY_FILE_ENV) or master_key_path().exists():
            raise
    if sessions is not None:
        _refuse_if_keys_exist(sessions)
    else:
        refuse_if_database_has_keys()
    return create_master_key_file()


def _refuse_if_keys_exist(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        if inspect(session.connection()).has_table(DataKeyRow.__tablename__):
            refuse_new_master_key(session, master_key_path())


def refuse_if_database_has_keys(url: str | None = None) -> None:
    """:class:`MasterKeyError` if Yinsi's database (default: the configured one) holds wrapped keys, or
    cannot be reached to tell; a database that does not exist yet holds none."""
    from yinsi.config import database_url
    from yinsi.storage.engine import make_engine, make_session_factory, parse_url

    url = url or database_url()
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite" and (not parsed.database or not Path(parsed.database).exists()):
        return  # no database yet: nothing can have been wrapped
    engine = make_engine(url)
    try:
        _refuse_if_keys_exist(make_session_factory(engine))
    except SQLAlchemyError:
        raise MasterKeyError(
            f"找不到主密钥文件 {master_key_path()}，且无法连接数据库确认其中没有已封装的密钥，因此不会新建主密钥；"
            f"请恢复主密钥文件，或设置环境变量 {MASTER_KEY_FILE_ENV} 指向它"
        ) from None
    finally:
        engine.dispose()


#: Pseudonyms kept in memory per process (cleared before a batch that would overflow it: ``AuditTrail.prepare``).
_PSEUDONYM_CACHE = 100_000


class AuditTrail:
    """Pseudonymised audit entries for one database."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.log = AuditLog(sessions)
        self._ring: KeyRing | None = None
        self._pseudonyms: dict[tuple[str, str], str] = {}

    @property
    def ring(self) -> KeyRing:
        if self._ring is None:
            self._ring = KeyRing(self.sessions, master_key(self.sessions))
        return self._ring

    def ensure_tenant_keys(self, tenant: str) -> None:
        """Create the tenant's data, index and pseudonym keys if it has none (after the tenant row exists)."""
        self.ring.provision(tenant)

    def pseudonym(self, tenant: str, subject: str) -> str:
        key = (tenant, subject)
        p = self._pseudonyms.get(key)
        if p is None:
            try:
                p = self.ring.pseudonymise(tenant, subject)
            except KeyNotFound:
                self.ensure_tenant_keys(tenant)
                p = self.ring.pseudonymise(tenant, subject)
            if len(self._pseudonyms) >= _PSEUDONYM_CACHE:
                self._pseudonyms.clear()
            self._pseudonyms[key] = p
        return p

    def prepare(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Compute the pseudonyms of ``(tenant, subject)`` pairs before the caller opens its transaction.

        The key ring reads (and on first use creates) keys through its own connection; on SQLite, doing
        that inside a large write transaction of another connection waits for that very transaction and
        fails with "database is locked".
        """
        todo = [p for p in dict.fromkeys(pairs) if p not in self._pseudonyms]
        if len(self._pseudonyms) + len(todo) > _PSEUDONYM_CACHE:
            self._pseudonyms.clear()  # now, not half-way: every pseudonym of the batch stays cached
        for tenant, subject in todo:
            self.pseudonym(tenant, subject)

    def record_in(self, session: Session, tenant: str, actor: str, action: AuditAction, *,
                  subject: str | None = None, items: Sequence[str] = (), reason: str | None = None,
                  details: Mapping[str, Any] | None = None) -> None:
        """Append one entry inside the caller's transaction."""
        target = self.pseudonym(tenant, subject) if subject is not None else None
        self.log.append_in(session, tenant, actor, action, target, items, reason, details)

    def record_many_in(self, session: Session, tenant: str, records: Sequence[AuditRecord]) -> None:
        """Append several entries (subjects already pseudonymised) inside the caller's transaction."""
        self.log.append_many_in(session, tenant, records)
