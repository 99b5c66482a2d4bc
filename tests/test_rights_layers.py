"""Layering of an erasure plan (``rights.plan.layers``): operations that depend on each other keep the plan's
order (a child table's rows go before the rows they reference, a table reached through a join path
before the tables on the path), operations of one layer are unrelated, and the layering is linear in the
map: a 256-table map is planned in few layers without comparing every pair."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from yinsi.domain.datamap import EraseAction, Hop, Location, StoreKind
from yinsi.rights.plan import OpAction, Operation, layers

Deps = dict[str, dict[str, set[str]]]


def sql_op(store: str, table: str, action: OpAction = "delete", join: Sequence[tuple[str, str]] = (),
           n: int = 0) -> Operation:
    hops = tuple(Hop(a, "ref", b, "id") for a, b in join)
    loc = Location(id=f"{store}.{table}.c{n}@user", subject="user", store=store, store_kind=StoreKind.SQL,
                   item="basic.name", item_name="姓名", sensitive=False, erase=EraseAction.DELETE_ROW, table=table,
                   column=f"c{n}", key_column=None if hops else "user_id", join=hops)
    return Operation(f"{store}.{table}#{action}{n}", action, store, (loc,))


def other_op(kind: StoreKind, store: str, n: int) -> Operation:
    action: OpAction = "redis" if kind is StoreKind.REDIS else "manual"
    loc = Location(id=f"{store}:k{n}@user", subject="user", store=store, store_kind=kind, item="basic.name",
                   item_name="姓名", sensitive=False,
                   erase=EraseAction.DELETE_KEY if kind is StoreKind.REDIS else EraseAction.DELETE,
                   key_pattern=f"k{n}" if kind is StoreKind.REDIS else None)
    return Operation(f"{store}:{action}{n}", action, store, (loc,))


def closure(table: str, deps: Mapping[str, set[str]]) -> set[str]:
    seen, todo = set(), [table]
    while todo:
        t = todo.pop()
        if t not in seen:
            seen.add(t)
            todo.extend(deps.get(t, ()))
    return seen


def reach(op: Operation, deps: Mapping[str, set[str]]) -> set[str]:
    """The reference definition: every table the operation's table references, or reaches the subject
    through, transitively (compared pair by pair below, as the quadratic version did)."""
    out = closure(str(op.first.table), deps)
    for loc in op.locations:
        for hop in loc.join:
            out |= closure(hop.from_table, deps) | closure(hop.to_table, deps)
    out.discard(str(op.first.table))
    return out


def concurrent_kind(op: Operation) -> bool:
    return op.first.store_kind is StoreKind.SQL and op.action != "mark"


def check(ops: Sequence[Operation], parents: Deps) -> list[tuple[bool, list[Operation]]]:
    reaches = {op.key: reach(op, parents.get(op.store, {})) for op in ops if op.first.table}
    index = {op.key: k for k, op in enumerate(ops)}

    def related(a: Operation, b: Operation) -> bool:
        if not (concurrent_kind(a) and concurrent_kind(b)) or a.store != b.store or a.first.table == b.first.table:
            return True
        return str(b.first.table) in reaches[a.key] or str(a.first.table) in reaches[b.key]

    out = layers(ops, parents)
    where: dict[str, tuple[int, int]] = {}
    for k, (concurrent, group) in enumerate(out):
        assert group
        for m, op in enumerate(group):
            assert op.key not in where
            where[op.key] = (k, m)
        if concurrent:  # one store's SQL operations, pairwise unrelated
            assert all(concurrent_kind(op) and op.store == group[0].store for op in group)
            assert not any(related(a, b) for i, a in enumerate(group) for b in group[i + 1:])
        else:  # a sequential layer: one mark or manual operation, or one store's Redis keys in plan order
            assert len(group) == 1 or all(op.first.store_kind is StoreKind.REDIS and op.store == group[0].store
                                          for op in group)
            assert [index[op.key] for op in group] == sorted(index[op.key] for op in group)
    assert sorted(where) == sorted(op.key for op in ops)  # every operation exactly once
    for i, a in enumerate(ops):  # related operations keep the plan's order
        for b in ops[i + 1:]:
            if related(a, b):
                assert where[a.key] < where[b.key], (a.key, b.key)
                if where[a.key][0] == where[b.key][0]:
                    assert not out[where[a.key][0]][0]
    return out


@st.composite
def plans(draw: st.DrawFn) -> tuple[list[Operation], Deps]:
    stores = ["db1", "db2"]
    parents: Deps = {}
    for store in stores:
        n = draw(st.integers(1, 8))
        tables = [f"t{k}" for k in range(n)]
        deps: dict[str, set[str]] = {}
        for k, t in enumerate(tables):  # references to other tables (cycles allowed: databases have them)
            deps[t] = set(draw(st.lists(st.sampled_from(tables), max_size=3))) - {t}
            if k and draw(st.booleans()):
                deps[t].add(tables[k - 1])
        parents[store] = deps
    ops: list[Operation] = []
    for n in range(draw(st.integers(0, 24))):
        kind = draw(st.sampled_from(["sql", "sql", "sql", "mark", "redis", "manual"]))
        store = draw(st.sampled_from(stores))
        if kind in ("sql", "mark"):
            tables = sorted(parents[store])
            table = draw(st.sampled_from(tables))
            join = draw(st.lists(st.tuples(st.sampled_from(tables), st.sampled_from(tables)), max_size=2))
            action: OpAction = "mark" if kind == "mark" else draw(st.sampled_from(["delete", "null", "hold"]))
            ops.append(sql_op(store, table, action, join, n))
        else:
            ops.append(other_op(StoreKind.REDIS if kind == "redis" else StoreKind.MANUAL, f"{kind}{store}", n))
    return ops, parents


@settings(max_examples=80, deadline=None)
@given(plans())
def test_layers_keep_every_dependency_and_share_only_unrelated_operations(plan: tuple[list[Operation], Deps]) -> None:
    ops, parents = plan
    check(ops, parents)


def test_children_share_a_layer_and_their_parent_comes_after_them() -> None:
    parents: Deps = {"db": {"members": set(), **{f"t{k}": {"members"} for k in range(5)},
                            "grand": {"t0"}}}
    ops = [sql_op("db", "members", "mark"), other_op(StoreKind.REDIS, "cache", 1), other_op(StoreKind.REDIS, "cache", 2),
           sql_op("db", "grand", join=[("grand", "t0"), ("t0", "members")]),
           *(sql_op("db", f"t{k}") for k in range(5)), sql_op("db", "members", "null"),
           other_op(StoreKind.MANUAL, "paper", 3)]
    out = check(ops, parents)
    shape = [(concurrent, [op.first.table or op.first.key_pattern or op.store for op in group])
             for concurrent, group in out]
    assert shape == [(False, ["members"]), (False, ["k1", "k2"]), (True, ["grand", "t1", "t2", "t3", "t4"]),
                     (True, ["t0"]), (True, ["members"]), (False, ["paper"])]


def test_a_wide_map_is_layered_by_depth_not_by_pairs() -> None:
    # 255 tables referencing the subject's table, every sixteenth also reached through the one before it
    deps = {"members": set[str]()}
    ops = []
    for k in range(1, 256):
        t, before = f"t{k:03d}", f"t{k - 1:03d}"
        if k % 16 == 0:
            deps[t] = {before}
            ops.append(sql_op("db", t, join=[(t, before), (before, "members")]))
        else:
            deps[t] = {"members"}
    for k in range(1, 256):
        if k % 16:
            ops.append(sql_op("db", f"t{k:03d}"))
    ops.append(sql_op("db", "members", "null"))
    out = check(ops, {"db": deps})
    assert [len(group) for _, group in out] == [255 - 15, 15, 1]
