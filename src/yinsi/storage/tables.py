"""Yinsi's own tables (SQLAlchemy 2 typed declarative).

Every row carries ``tenant_id`` (租户) and every query filters by it: no query crosses tenants.
String columns that are indexed have explicit lengths (MariaDB needs them); large texts are ``LargeText``.
On MariaDB every table is InnoDB with ``utf8mb4`` and the binary collation, so 4-byte characters such as
𠮷 are stored intact and identifiers compare exactly (case-sensitively), as on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, Integer, MetaData, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from yinsi.storage.types import LargeText, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s_%(column_1_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Table options for MySQL/MariaDB; ignored by the other backends.
MYSQL_TABLE_ARGS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}

TENANT_ID_LEN = 64
LABEL_LEN = 64
HASH_LEN = 64
NAME_LEN = 500


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Tenant(Base):
    """An app operator served by Yinsi (租户)."""

    __tablename__ = "tenants"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LEN))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PolicyVersion(Base):
    """One published version of a tenant's declaration, archived with its rendered policy (存档).

    ``declaration_yaml`` is the exact file text and ``declaration_hash`` its SHA-256; ``rendered_markdown``
    is the policy text as published. Rows are never updated: old versions stay readable as published.
    """

    __tablename__ = "policy_versions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "label"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"))
    label: Mapped[str] = mapped_column(String(LABEL_LEN))
    app_name: Mapped[str] = mapped_column(String(NAME_LEN))
    controller_name: Mapped[str | None] = mapped_column(String(NAME_LEN))
    effective_date: Mapped[date | None] = mapped_column(Date)
    updated_date: Mapped[date | None] = mapped_column(Date)
    declaration_yaml: Mapped[str] = mapped_column(LargeText)
    declaration_hash: Mapped[str] = mapped_column(String(HASH_LEN))
    rendered_markdown: Mapped[str] = mapped_column(LargeText)
    rendered_hash: Mapped[str] = mapped_column(String(HASH_LEN))
    lint_errors: Mapped[int] = mapped_column(Integer)
    lint_warnings: Mapped[int] = mapped_column(Integer)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime())
    published_by: Mapped[str | None] = mapped_column(String(NAME_LEN))

    #: The owning tenant; it also orders inserts (tenant before version). Never loaded implicitly.
    tenant: Mapped[Tenant] = relationship(lazy="raise")
