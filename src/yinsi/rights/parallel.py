"""Running a request's store operations (并发执行): layer by layer (``rights.plan.layers``), the operations of a
layer at once on server databases (``YINSI_RIGHTS_PARALLEL``, default 4; one at a time on SQLite), each
layer's steps recorded in one transaction once all its stores committed; read-only work mapped the same way."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from yinsi.rights.context import Job, RightsContext
from yinsi.rights.plan import Operation, layers
from yinsi.rights.steps import mark_steps

#: How many store operations of one request may run at once on server databases (default 4).
PARALLEL_ENV = "YINSI_RIGHTS_PARALLEL"


def parallelism(ctx: RightsContext, connectors: Mapping[str, Any]) -> int:
    """How many store operations may run at once: ``YINSI_RIGHTS_PARALLEL`` (default 4); 1 when Yinsi's
    database or a SQL store is SQLite (one writer at a time)."""
    engines = [ctx.engine, *(c.engine for c in connectors.values() if hasattr(c, "engine"))]
    if any(e.dialect.name == "sqlite" for e in engines):
        return 1
    return max(1, int(os.environ.get(PARALLEL_ENV, "4") or 4))


def in_layers(ctx: RightsContext, job: Job, ops: Sequence[Operation], connectors: Mapping[str, Any],
              step: Callable[[Operation], tuple[str, str, dict[str, Any]]]) -> None:
    """Run ``step`` for every operation, layer by layer (``rights.plan.layers``), and record each
    layer's steps in one transaction once all its stores committed. The operations of a concurrent
    layer touch unrelated tables and run at once. A failure still records what its layer finished,
    then raises. A run killed inside a layer repeats that layer: every operation is idempotent."""
    from concurrent.futures import ThreadPoolExecutor

    width = parallelism(ctx, connectors)
    deps = {sid: c.dependencies() for sid, c in connectors.items() if hasattr(c, "dependencies")} if width > 1 else {}
    with ThreadPoolExecutor(max_workers=width) as pool:
        for concurrent, group in layers(ops, deps):
            if concurrent and width > 1 and len(group) > 1:
                futures = [pool.submit(step, op) for op in group]
                outcomes = [(f.result() if f.exception() is None else f.exception()) for f in futures]
            else:
                outcomes = []
                for op in group:
                    try:
                        outcomes.append(step(op))
                    except Exception as exc:
                        outcomes.append(exc)
                        break
            done = [o for o in outcomes if isinstance(o, tuple)]
            if done:
                mark_steps(ctx, job, done)
            failure = next((o for o in outcomes if isinstance(o, BaseException)), None)
            if failure is not None:
                raise failure


def map_parallel(ctx: RightsContext, fn: Callable[[Any], Any], items: Sequence[Any],
                 connectors: Mapping[str, Any]) -> list[Any]:
    """``[fn(x) for x in items]``, concurrently for server databases (read-only work)."""
    from concurrent.futures import ThreadPoolExecutor

    width = parallelism(ctx, connectors)
    if width == 1 or len(items) < 2:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=width) as pool:
        return list(pool.map(fn, items))
