"""Validation of what callers ask to record: field limits, JSON details, and no PI in clear."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from yinsi.audit.errors import InvalidAuditEntry
from yinsi.audit.model import AuditAction, AuditRecord, canonical_json
from yinsi.audit.pi_guard import check_fields
from yinsi.storage.audit_tables import ACTOR_LEN, SUBJECT_LEN
from yinsi.storage.tables import TENANT_ID_LEN

MAX_REASON = 2000
MAX_ITEMS = 200
MAX_DETAILS_BYTES = 64 * 1024
_ITEM_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")


@dataclass(frozen=True)
class Prepared:
    """A validated record, ready to be chained."""

    actor: str
    action: str
    subject: str | None
    items: tuple[str, ...]
    reason: str | None
    details: dict[str, Any]
    items_text: str
    details_text: str


def check_tenant(tenant: str) -> str:
    if not isinstance(tenant, str) or not tenant.strip() or len(tenant) > TENANT_ID_LEN:
        raise InvalidAuditEntry(f"租户标识无效：须为 1 到 {TENANT_ID_LEN} 个字符")
    return tenant


def _text(value: object, what: str, limit: int, *, required: bool) -> str | None:
    if value is None:
        if required:
            raise InvalidAuditEntry(f"审计记录缺少{what}")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidAuditEntry(f"审计记录的{what}须为非空文本")
    if len(value) > limit:
        raise InvalidAuditEntry(f"审计记录的{what}过长：最多 {limit} 个字符，实际 {len(value)} 个")
    return value


def _details(details: Mapping[str, Any] | None) -> tuple[dict[str, Any], str]:
    """The details as plain JSON data and as canonical JSON text."""
    if details is None:
        return {}, "{}"
    if not isinstance(details, Mapping):
        raise InvalidAuditEntry("审计记录的 details 须为 JSON 对象（dict）")
    if not all(isinstance(k, str) for k in details):
        raise InvalidAuditEntry("审计记录的 details 的键须为文本")
    try:
        # a round trip keeps exactly what JSON can carry (tuples become lists; sets, bytes, dates are refused)
        text = canonical_json(dict(details)).decode("utf-8")
        normalised: dict[str, Any] = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise InvalidAuditEntry(f"审计记录的 details 不是合法的 JSON 数据：{exc}") from None
    return normalised, text


def prepare(rec: AuditRecord) -> Prepared:
    """Validate ``rec``; raises ``InvalidAuditEntry`` (``PIInAuditEntry`` for PI in clear)."""
    actor = _text(rec.actor, "操作人（actor）", ACTOR_LEN, required=True)
    assert actor is not None
    try:
        action = AuditAction(rec.action).value
    except ValueError:
        allowed = "、".join(a.value for a in AuditAction)
        raise InvalidAuditEntry(f"未知的审计操作类型 {rec.action!r}；可选：{allowed}") from None
    subject = _text(rec.target_subject, "主体标识（target_subject）", SUBJECT_LEN, required=False)
    reason = _text(rec.reason, "事由（reason）", MAX_REASON, required=False)
    if isinstance(rec.items, str) or not isinstance(rec.items, Sequence | set | frozenset):
        raise InvalidAuditEntry("审计记录的 items 须为个人信息项 ID 的列表")
    items = tuple(sorted(rec.items, key=str)) if isinstance(rec.items, set | frozenset) else tuple(rec.items)
    if not all(isinstance(item, str) for item in items):
        raise InvalidAuditEntry("审计记录的 items 须为个人信息项 ID（如 contact.mobile），不能是个人信息的值")
    items_text = _checked_items(items)
    details, details_text = _details(rec.details)
    check_fields([("actor", actor), ("target_subject", subject), ("reason", reason), ("details", details)])
    if len(details_text.encode("utf-8")) > MAX_DETAILS_BYTES:
        raise InvalidAuditEntry(f"审计记录的 details 过大：最多 {MAX_DETAILS_BYTES // 1024} KiB")
    return Prepared(actor, action, subject, items, reason, details, items_text, details_text)


@lru_cache(maxsize=4096)
def _checked_items(items: tuple[str, ...]) -> str:
    """The items' canonical JSON after checking them (IDs, not PI values). Cached: the entries of a batch
    repeat the same few item lists (a policy consent lists every item it covers); refusals are not cached."""
    if len(items) > MAX_ITEMS:
        raise InvalidAuditEntry(f"审计记录的个人信息项过多：最多 {MAX_ITEMS} 个")
    for item in items:
        if not isinstance(item, str) or not _ITEM_ID.match(item):
            raise InvalidAuditEntry("审计记录的 items 须为个人信息项 ID（如 contact.mobile），不能是个人信息的值")
    check_fields([("items", list(items))])
    return canonical_json(list(items)).decode("utf-8")
