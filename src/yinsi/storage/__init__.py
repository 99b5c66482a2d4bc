"""Yinsi's own database (自身数据库): tables, repositories, unit of work and Alembic migrations.

Works on SQLite (the embedded default), PostgreSQL (psycopg 3) and MariaDB/MySQL (PyMySQL, utf8mb4).
"""

from __future__ import annotations

import yinsi.storage.audit_tables  # registers the audit-log tables on Base.metadata
import yinsi.storage.auth_tables as _auth_tables  # registers the app-key, session and rate-limit tables
import yinsi.storage.freetext_tables  # registers the free-text index tables
import yinsi.storage.jobs_tables  # registers the jobs table
import yinsi.storage.keys_tables  # registers the key and protected-identifier tables
import yinsi.storage.minors_tables  # noqa: F401  (registers the minors and transfer-abroad tables)
import yinsi.storage.notify_tables as _notify_tables  # registers the outbox and verification-code tables
import yinsi.storage.rights_tables as _rights_tables  # registers the rights-request tables
import yinsi.storage.staff_tables as _staff_tables  # registers the staff, session, approval and alert tables
from yinsi.storage import consent_tables, notice_tables  # noqa: F401  (register the ledger, notice and incident tables)
from yinsi.storage.engine import display_url, make_engine, make_session_factory, parse_url, ping
from yinsi.storage.errors import DatabaseUnavailable, InvalidDatabaseUrl, SchemaNotCurrent, StorageError
from yinsi.storage.migrate import current, downgrade, ensure_current, head, upgrade
from yinsi.storage.repository import PolicyVersionRepository, TenantRepository
from yinsi.storage.tables import Base, PolicyVersion, Tenant
from yinsi.storage.uow import UnitOfWork

_notify_tables.register_rotation_columns()
_rights_tables.register_rotation_columns()
_staff_tables.register_rotation_columns()
_auth_tables.register_rotation_columns()
consent_tables.register_rotation_columns()

__all__ = [
    "Base",
    "DatabaseUnavailable",
    "InvalidDatabaseUrl",
    "PolicyVersion",
    "PolicyVersionRepository",
    "SchemaNotCurrent",
    "StorageError",
    "Tenant",
    "TenantRepository",
    "UnitOfWork",
    "current",
    "display_url",
    "downgrade",
    "ensure_current",
    "head",
    "make_engine",
    "make_session_factory",
    "parse_url",
    "ping",
    "upgrade",
]
