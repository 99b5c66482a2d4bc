"""Execution order over a subject's locations.

``erasure_order`` groups the locations per place (SQL: store and table; Redis: store and key pattern;
manual: store and step) and orders the groups:

1. **Redis first.** Deleting the session keys first logs the person out everywhere, so the app cannot
   write new data for the account while the rest is erased. Keys found through an attribute
   (``sms:code:{phone}``) use the attributes bound at plan time, so the order among stores does not
   matter for finding them; running Redis first also means that an unbound connector still finds the
   phone in SQL. Within a store, keys found through ``members_of`` come before the set that lists them
   (``session:{token}`` before ``user:{subject}:sessions``): once the set is gone, they cannot be found.
2. **SQL next, children before parents.** Per store, tables are ordered so that a table comes before
   every table it references by a foreign key (from the reflected schema: pass the connectors) and before
   every table its join path goes through (once the parent rows are gone, the child rows can no longer
   be reached). Within a table, column updates (null, pseudonymise) come before row deletions, so a
   legal-hold capture of the whole row happens after the columns that must not be kept are cleared.
3. **Manual steps last.** They do not block: the manual connector raises ``ManualStepPending``, the
   engine records the step as waiting for a person and carries on, so every automatic step is done in
   the first pass.

The order is deterministic (ties keep map order), so a resumed run walks the same plan.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from yinsi.domain.datamap import Location, StoreKind
from yinsi.stores.base import sql_erase_mode

K = TypeVar("K", bound=Hashable)


def _group_key(loc: Location) -> tuple[str, str, str]:
    if loc.store_kind is StoreKind.SQL:
        return (loc.store, "table", loc.table or "")
    if loc.store_kind is StoreKind.REDIS:
        return (loc.store, "key", loc.key_pattern or "")
    step = loc.id.split("/")[1] if loc.id.count("/") >= 2 else loc.id  # store/step/item@subject
    return (loc.store, "step", step)


def _topo(nodes: Sequence[K], edges: Iterable[tuple[K, K]]) -> list[K]:
    """``nodes`` ordered so that for every edge (a, b) a comes before b; ties (and any cycle) keep the
    order of ``nodes``."""
    rank = {n: k for k, n in enumerate(nodes)}
    after: dict[K, set[K]] = {n: set() for n in nodes}
    indegree = dict.fromkeys(nodes, 0)
    for a, b in edges:
        if a in rank and b in rank and a != b and b not in after[a]:
            after[a].add(b)
            indegree[b] += 1
    ready = [(rank[n], n) for n in nodes if indegree[n] == 0]
    heapq.heapify(ready)
    out: list[K] = []
    while ready:
        _, n = heapq.heappop(ready)
        out.append(n)
        for m in after[n]:
            indegree[m] -= 1
            if indegree[m] == 0:
                heapq.heappush(ready, (rank[m], m))
    if len(out) < len(nodes):  # a cycle: the rest in map order
        done = set(out)
        out.extend(n for n in nodes if n not in done)
    return out


def _ancestors(table: str, deps: Mapping[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(deps.get(table, ()))
    while todo:
        t = todo.pop()
        if t not in seen:
            seen.add(t)
            todo.extend(deps.get(t, ()))
    return seen


def _sql_table_order(store: str, groups: Mapping[tuple[str, str, str], list[Location]],
                     connector: Any) -> list[tuple[str, str, str]]:
    keys = [k for k in groups if k[0] == store and k[1] == "table"]
    tables = [k[2] for k in keys]
    edges: list[tuple[str, str]] = []
    dependencies = getattr(connector, "dependencies", None)
    if callable(dependencies):
        deps: Mapping[str, set[str]] = dependencies()
        for t in tables:
            edges.extend((t, parent) for parent in _ancestors(t, deps))  # child before parent
    for key in keys:
        for loc in groups[key]:
            if loc.shared_via:  # its rows are pinned at plan time: the link table may go first (foreign keys)
                continue
            for hop in loc.join:
                for via in (hop.from_table, hop.to_table):
                    if via != key[2]:
                        edges.append((key[2], via))  # reached through `via`: erase before it
    ordered = _topo(tables, edges)
    return [(store, "table", t) for t in ordered]


def _redis_order(store: str, groups: Mapping[tuple[str, str, str], list[Location]]) -> list[tuple[str, str, str]]:
    keys = [k for k in groups if k[0] == store and k[1] == "key"]
    edges = [(k, (store, "key", loc.members_of)) for k in keys for loc in groups[k] if loc.members_of]
    return _topo(keys, edges)


def erasure_order(locations: Iterable[Location],
                  connectors: Mapping[str, Any] | None = None) -> list[list[Location]]:
    """The locations of one erasure, grouped per place and ordered (see the module docstring).

    ``connectors`` (store id → connector, as from ``connector_for``) gives the SQL foreign keys from the
    reflected schema. Without it only join paths order the tables: pass it whenever the app's tables
    have foreign keys (a child deleted after its parent fails the erasure with an integrity error).
    """
    groups: dict[tuple[str, str, str], list[Location]] = {}
    for loc in locations:
        groups.setdefault(_group_key(loc), []).append(loc)
    stores: dict[tuple[StoreKind, str], None] = {}
    for group in groups.values():
        stores.setdefault((group[0].store_kind, group[0].store), None)

    ordered: list[tuple[str, str, str]] = []
    for kind, store in stores:
        if kind is StoreKind.REDIS:
            ordered.extend(_redis_order(store, groups))
    for kind, store in stores:
        if kind is StoreKind.SQL:
            ordered.extend(_sql_table_order(store, groups, (connectors or {}).get(store)))
    for kind, store in stores:
        if kind is StoreKind.MANUAL:
            ordered.extend(k for k in groups if k[0] == store)

    out: list[list[Location]] = []
    for key in ordered:
        members = groups[key]
        if key[1] == "table":  # column updates before row deletions
            members = sorted(members, key=lambda loc: sql_erase_mode(loc) == "delete")
        out.append(members)
    return out


def access_order(locations: Iterable[Location]) -> list[Location]:
    """The locations in a stable order for reading (access, copy): map order, SQL tables kept together."""
    locs = list(locations)
    groups: dict[tuple[str, str, str], list[Location]] = {}
    for loc in locs:
        groups.setdefault(_group_key(loc), []).append(loc)
    return [loc for group in groups.values() for loc in group]
