"""Tasks the jobs tests register (imported by the tests and, with ``--import jobs_tasks``, by worker
subprocesses). Each records its effect as a row of ``job_effects`` through ``ctx.db``, so the effect
commits with the job's done mark and a test can count how often it happened."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from sqlalchemy import text

from yinsi import jobs

EFFECTS_DDL = "CREATE TABLE IF NOT EXISTS job_effects (job_key VARCHAR(255) NOT NULL, attempt INTEGER NOT NULL)"
TINY = timedelta(milliseconds=20)


def _effect(ctx: jobs.JobContext) -> None:
    ctx.db.execute(text("INSERT INTO job_effects (job_key, attempt) VALUES (:k, :a)"), {"k": ctx.key, "a": ctx.attempt})


def effect(ctx: jobs.JobContext) -> dict[str, Any]:
    _effect(ctx)
    return {"attempt": ctx.attempt}


def slow(ctx: jobs.JobContext) -> None:
    """Sleeps ``seconds`` on the first attempt (the worker is killed meanwhile), at once on later ones."""
    if ctx.attempt == 1:
        time.sleep(float(ctx.payload.get("seconds", 60)))
    _effect(ctx)


def flaky(ctx: jobs.JobContext) -> None:
    if ctx.attempt < 2:
        raise RuntimeError("temporary failure for 13800138000")
    _effect(ctx)


def failing(ctx: jobs.JobContext) -> None:
    raise RuntimeError("always fails")


def permanent(ctx: jobs.JobContext) -> None:
    raise jobs.PermanentJobError("cannot succeed")


def daily(ctx: jobs.JobContext) -> None:
    _effect(ctx)


jobs.register_task("test.effect", effect)
jobs.register_task("test.slow", slow, max_attempts=3)
jobs.register_task("test.flaky", flaky, max_attempts=3, base_delay=TINY, max_delay=TINY)
jobs.register_task("test.failing", failing, max_attempts=2, base_delay=TINY, max_delay=TINY)
jobs.register_task("test.permanent", permanent)
