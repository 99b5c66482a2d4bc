"""The free-text index (自由文本索引): where the data map's free-text columns mention identifiers, kept as keyed
hashes only (never the text, never an identifier in clear).

- ``freetext_columns``: one row per tenant and free-text column of its data map (store, table, column), with
  how far the index has read it: the highest primary key (``key_mark``, as text) and the highest
  ``updated_at`` value seen (``updated_mark``, when the map names an updated-at column).
- ``freetext_tokens``: (tenant, token hash, column, row key): the row ``row_key`` of the column mentions an
  identifier whose normalised form hashes to ``token`` under the tenant's index key (HMAC, see
  :mod:`yinsi.rights.freetext_index`). Looking a person up is one index seek per identifier variant.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yinsi.storage.tables import MYSQL_TABLE_ARGS, TENANT_ID_LEN, Base
from yinsi.storage.types import UTCDateTime

NAME_LEN = 190
ROW_KEY_LEN = 190
TOKEN_LEN = 32

ColumnId = BigInteger().with_variant(Integer(), "sqlite")


class FreeTextColumn(Base):
    """One free-text column of a tenant's data map and the index's high-water marks on it."""

    __tablename__ = "freetext_columns"
    __table_args__ = (
        UniqueConstraint("tenant_id", "store", "table_name", "column_name", name="uq_freetext_columns_column"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(ColumnId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"))
    store: Mapped[str] = mapped_column(String(NAME_LEN))
    table_name: Mapped[str] = mapped_column(String(NAME_LEN))
    column_name: Mapped[str] = mapped_column(String(NAME_LEN))
    key_mark: Mapped[str | None] = mapped_column(String(ROW_KEY_LEN))
    updated_mark: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rows_indexed: Mapped[int] = mapped_column(BigInteger, default=0)
    indexed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class FreeTextToken(Base):
    """A row of a free-text column mentions the identifier whose keyed hash is ``token``."""

    __tablename__ = "freetext_tokens"
    __table_args__ = (
        Index("ix_freetext_tokens_row", "column_id", "row_key"),
        MYSQL_TABLE_ARGS,
    )

    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"), primary_key=True)
    token: Mapped[str] = mapped_column(String(TOKEN_LEN), primary_key=True)
    column_id: Mapped[int] = mapped_column(ColumnId, ForeignKey("freetext_columns.id"), primary_key=True)
    row_key: Mapped[str] = mapped_column(String(ROW_KEY_LEN), primary_key=True)
