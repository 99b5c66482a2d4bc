"""The read-back after erasure (删除后回读核实, R11): every location is read again before anything waits for
people; a location still holding data fails the request loudly with the exact place, and its step is
reopened so that a retry runs it again. Nothing is ever "complete" with a location silently skipped."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from yinsi.domain.datamap import Location
from yinsi.rights.context import ErasureIncomplete, Job, RightsContext
from yinsi.rights.parallel import map_parallel
from yinsi.rights.plan import Operation
from yinsi.rights.steps import PENDING, mark_step


def read_back(ctx: RightsContext, job: Job, ops: Sequence[Operation], connectors: Mapping[str, Any]) -> int:
    """Read every location back; raise ErasureIncomplete naming each location that still holds data.
    Returns how many locations were read back."""
    left: list[str] = []
    failed: dict[str, list[str]] = {}
    # what to read back: for a table whose rows are deleted, the rows reaching the subject (every column
    # of the table at once); otherwise each location
    checks: list[tuple[Operation, Location, tuple[Location, ...]]] = []
    for op in ops:
        if op.action in ("manual", "mark"):
            continue
        if op.action in ("delete", "hold"):
            checks.append((op, op.first, op.locations))
        elif op.action == "null" and hasattr(connectors[op.store], "remaining_null"):
            checks.append((op, op.first, op.locations))  # every nulled column of the table in one query
        else:
            checks.extend((op, loc, (loc,)) for loc in op.locations)

    # SQL stores first say, in one round trip per store, which checks still find something; only those
    # are read again for the message (a store without ``anything_left`` is read check by check)
    suspect: list[bool] = [True] * len(checks)
    by_store: dict[str, list[int]] = {}
    for n, (op, _, _) in enumerate(checks):
        if hasattr(connectors[op.store], "anything_left"):
            by_store.setdefault(op.store, []).append(n)

    def batch(store: str) -> list[bool]:
        indices = by_store[store]
        return list(connectors[store].anything_left([_batched(checks[n]) for n in indices], job.subject))

    for store, found in zip(by_store, map_parallel(ctx, batch, list(by_store), connectors), strict=True):
        for n, hit in zip(by_store[store], found, strict=True):
            suspect[n] = hit

    def one(check: tuple[Operation, Location, tuple[Location, ...]]) -> list[Any]:
        op, loc, covered = check
        conn = connectors[op.store]
        if op.action == "null" and len(covered) > 1 and hasattr(conn, "remaining_null"):
            return list(conn.remaining_null(covered, job.subject))
        return list(conn.remaining(loc, job.subject))

    verified = sum(len(c[2]) for c in checks)
    todo = [c for c, hit in zip(checks, suspect, strict=True) if hit]
    for (op, _, covered), rows in zip(todo, map_parallel(ctx, one, todo, connectors), strict=True):
        if rows:
            unit = "行" if op.action in ("delete", "hold") else "处"
            by_column = op.action == "null" and len(covered) > 1  # name only the columns still holding a value
            for loc in covered:
                hits = [r for r in rows if loc.column in r.values] if by_column else rows
                if hits:
                    failed.setdefault(op.key, []).append(f"{loc.id}（{len(hits)} {unit}，例如 {hits[0].key}）")
    if failed:
        # the steps that claimed success are reopened, so a retry runs them again
        for key, where in failed.items():
            mark_step(ctx, job, key, PENDING, {"read_back_left": where})
            left.extend(where)
        raise ErasureIncomplete("删除后回读发现仍有数据，请求未完成（相应步骤已重新打开，可重试）：" + "；".join(left))
    return verified


def _batched(check: tuple[Operation, Location, tuple[Location, ...]]) -> tuple[Location, ...]:
    """A read-back check as ``anything_left`` takes it: the rows of a deleted table (its first location),
    the nulled columns of a table together, or one location."""
    op, loc, covered = check
    return covered if op.action == "null" and len(covered) > 1 else (loc,)
