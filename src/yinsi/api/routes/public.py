"""Public reading (no credential): a tenant's published policy with its lists, its archived versions, and
the rule catalogue every decision and refusal cites."""

from __future__ import annotations

import functools
from typing import Any

from fastapi import APIRouter, Depends, Path, Request

from yinsi.api.deps import public, services
from yinsi.api.problems import ApiProblem

router = APIRouter(prefix="/api/v1", tags=["public"], dependencies=[Depends(public)])

TenantPath = Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="租户")
LabelPath = Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$", description="版本标签")


@functools.lru_cache(maxsize=64)
def _lists(declaration_yaml: str, source: str) -> dict[str, Any]:
    """The SDK list and 双清单 of an archived declaration (archived text never changes: cached by text)."""
    from yinsi.declarations import parse_declaration
    from yinsi.render import render_lists

    return render_lists(parse_declaration(declaration_yaml, source))


def _archived(tenant: str, label: str, url: str) -> dict[str, Any]:
    from yinsi.services.publishing import get_version

    archived = get_version(tenant, label, url)
    return {"version": archived.version.to_dict(), "policy_markdown": archived.rendered_markdown,
            "lists": _lists(archived.declaration_yaml, f"{tenant}@{label}")}


@router.get("/tenants/{tenant}/policy", summary="租户当前的隐私政策（全文、SDK 清单、双清单）")
def current_policy(request: Request, tenant: str = TenantPath) -> dict[str, Any]:
    from yinsi.services.publishing import latest_version

    url = services(request).settings.database_url
    latest = latest_version(tenant, url)
    if latest is None:
        raise ApiProblem(404, "no_published_policy", "该租户尚未发布隐私政策")
    return _archived(tenant, latest.label, url)


@router.get("/tenants/{tenant}/policy/versions", summary="租户已发布的全部政策版本")
def policy_versions(request: Request, tenant: str = TenantPath) -> dict[str, Any]:
    from yinsi.services.publishing import history

    versions = history(tenant, services(request).settings.database_url)
    if not versions:
        raise ApiProblem(404, "no_published_policy", "该租户尚未发布隐私政策")
    return {"versions": [v.to_dict() for v in versions]}


@router.get("/tenants/{tenant}/policy/versions/{label}", summary="某一历史版本（存档的全文与清单）")
def policy_version(request: Request, tenant: str = TenantPath, label: str = LabelPath) -> dict[str, Any]:
    return _archived(tenant, label, services(request).settings.database_url)


@router.get("/rules", summary="规则目录（每项判定、检查与拒绝引用的规则编号）")
def list_rules() -> dict[str, Any]:
    from yinsi import rules

    return {"rules": [r.to_json() for r in rules.all()]}


@router.get("/rules/{rule_id}", summary="一条规则：编号、义务与法律依据")
def get_rule(rule_id: str = Path(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9]+$")) -> dict[str, Any]:
    from yinsi import rules

    rule = rules.get(rule_id)
    if rule is None:
        raise ApiProblem(404, "rule_not_found", "规则目录中没有这个编号")
    return rule.to_json()
