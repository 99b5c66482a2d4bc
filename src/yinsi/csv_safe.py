"""CSV cells a spreadsheet cannot run (CSV/formula injection, CWE-1236).

Excel, LibreOffice and WPS read a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula (and
a leading tab or carriage return can hide such a start), so a value taken from a person's data — a name
like ``=HYPERLINK(...)`` — could run when staff open an export. Every CSV that Yinsi writes passes its
cells through :func:`safe_cell`: such a text value is prefixed with an apostrophe, which spreadsheets
show as text and do not display. Numbers are left as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["FORMULA_STARTS", "safe_cell", "safe_mapping", "safe_row"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value`` unchanged, unless it is text a spreadsheet would read as a formula: then ``'`` + value."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_row(values: Iterable[Any]) -> list[Any]:
    """A row for ``csv.writer.writerow`` with every cell made safe."""
    return [safe_cell(v) for v in values]


def safe_mapping(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row for ``csv.DictWriter.writerow`` with every cell made safe (the header is written by Yinsi)."""
    return {k: safe_cell(v) for k, v in row.items()}
