"""What every key rotation covers: the registry of encrypted columns and encrypted files.

This module imports nothing from Yinsi, so the table modules of :mod:`yinsi.storage` can register their
columns while :mod:`yinsi.storage` is being imported, whichever module a program imports first
(:mod:`yinsi.protect.rotation`, which needs the storage tables, re-exports these names).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "EncryptedColumn",
    "EncryptedFiles",
    "register_encrypted_column",
    "register_encrypted_files",
    "registered_columns",
    "registered_files",
]


@dataclass(frozen=True)
class EncryptedColumn:
    """A column that holds Yinsi tokens.

    ``field`` is the field name the tokens were encrypted with (default ``"table.column"``);
    ``key_columns`` order the scan (default: the table's primary key); ``tenant_column`` restricts the
    scan to the tenant's rows (``None``: every row belongs to the tenant being rotated).
    """

    table: str
    column: str
    field: str | None = None
    key_columns: tuple[str, ...] | None = None
    tenant_column: str | None = "tenant_id"

    @property
    def field_name(self) -> str:
        return self.field or f"{self.table}.{self.column}"

    @property
    def label(self) -> str:
        return f"{self.table}.{self.column}"


@dataclass(frozen=True)
class EncryptedFiles:
    """Files that each hold one bytes token of a tenant (e.g. the packages of rights requests).

    ``locate(engine, tenant)`` lists the tenant's files, given the engine of Yinsi's database; a listed
    file that does not exist is skipped. ``field`` is the field name the tokens were encrypted with.
    """

    name: str
    field: str
    locate: Callable[[Any, str], Iterable[Path]]

    @property
    def label(self) -> str:
        return f"文件：{self.name}"


_REGISTRY: dict[tuple[str, str], EncryptedColumn] = {}
_FILES: dict[str, EncryptedFiles] = {}


def register_encrypted_column(column: EncryptedColumn) -> EncryptedColumn:
    """Add a column of *Yinsi's own database* to the registry that every rotation covers."""
    existing = _REGISTRY.get((column.table, column.column))
    if existing is not None and existing != column:
        raise ValueError(f"{column.label} is already registered differently: {existing}")
    _REGISTRY[(column.table, column.column)] = column
    return column


def registered_columns() -> list[EncryptedColumn]:
    return sorted(_REGISTRY.values(), key=lambda c: (c.table, c.column))


def register_encrypted_files(files: EncryptedFiles) -> EncryptedFiles:
    """Add a kind of encrypted file to the registry that every rotation re-encrypts."""
    existing = _FILES.get(files.name)
    if existing is not None and existing != files:
        raise ValueError(f"files {files.name} are already registered differently: {existing}")
    _FILES[files.name] = files
    return files


def registered_files() -> list[EncryptedFiles]:
    return sorted(_FILES.values(), key=lambda f: f.name)
