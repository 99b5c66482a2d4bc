"""Operations: liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

import functools
from typing import Any

from fastapi import APIRouter, Depends, Request

from yinsi.api.deps import public, services
from yinsi.api.problems import ApiProblem

router = APIRouter(tags=["ops"], dependencies=[Depends(public)])


@router.get("/healthz", summary="进程存活")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@functools.cache
def _expected_schema() -> str:
    from yinsi.storage.migrate import head

    return head()


@router.get("/readyz", summary="可以服务：数据库可达且结构为最新")
def readyz(request: Request) -> dict[str, Any]:
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    from yinsi.storage.migrate import VERSION_TABLE

    engine = services(request).consent.engine
    try:
        with engine.connect() as conn:
            versions = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    except SQLAlchemyError:
        raise ApiProblem(503, "storage_unavailable", "数据库暂不可用或尚未初始化") from None
    current = versions[0] if len(versions) == 1 else None
    if current != _expected_schema():
        raise ApiProblem(503, "schema_not_current", "数据库结构尚未更新到本版本所需；请运维人员运行 yinsi db upgrade")
    return {"status": "ready", "schema": current}
