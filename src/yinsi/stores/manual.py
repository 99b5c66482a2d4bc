"""The manual connector: a system Yinsi cannot reach (a vendor console, a shared spreadsheet).

Yinsi cannot read or change such a system, so ``erase`` (and ``correct``) raise ``ManualStepPending``
with the step's description and who performs it; the rights engine records the step as waiting for a
person, with the request's deadline running, and completes it when the person confirms. ``read`` returns
nothing (the data cannot be seen from here) and ``remaining`` returns nothing (the person's confirmation
is the read-back; the engine keeps who confirmed and the note in the audit trail).
"""

from __future__ import annotations

from typing import Any

from yinsi.domain.datamap import Location, ManualStore, StoreKind
from yinsi.stores.base import EraseResult, ManualStepPending, Row


class ManualConnector:
    """Turns every change into a step for a person (see the module docstring)."""

    kind = StoreKind.MANUAL

    def __init__(self, store: ManualStore) -> None:
        self.store = store

    def read(self, loc: Location, subject_value: str, *, whole: bool = False) -> list[Row]:
        return []

    def erase(self, loc: Location, subject_value: str) -> EraseResult:
        raise ManualStepPending(loc.description, loc.who, loc.id)

    def remaining(self, loc: Location, subject_value: str) -> list[Row]:
        return []

    def correct(self, loc: Location, subject_value: str, new_value: Any) -> int:
        what = f"在“{self.store.name}”中更正该用户的{loc.item_name}（所在位置：{loc.description}）"
        raise ManualStepPending(what, loc.who, loc.id)

    def close(self) -> None:
        """Nothing to release."""
