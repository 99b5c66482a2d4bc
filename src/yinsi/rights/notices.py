"""Recipients told to delete (通知接收方删除, R13): the recipients the person's data was provided to, from the
gate's processing records; one e-mail each where the data map gives an address, written to the outbox in
the transaction that completes the request; otherwise a manual step for the person the map names.
Authorities that received data under a statutory duty are not asked to delete."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yinsi.domain.datamap import DataMap
from yinsi.domain.policy import Declaration
from yinsi.domain.taxonomy import LegalBasis, taxonomy
from yinsi.rights.context import Job, RightsContext


def recipients_of(ctx: RightsContext, tenant: str, subject: str, items: Collection[str] | None = None) -> list[str]:
    """The recipients the person's data was actually provided to: allowed gate decisions with a
    recipient in the processing records (the same records as the person's 双清单); with ``items``, only
    those that received one of them (a deletion of chosen items tells those, R13)."""
    import json

    from yinsi.storage.consent_tables import ProcessingRecord

    ctx.flush_consents()  # records still buffered in this process
    ref = ctx.audit.pseudonym(tenant, subject)  # the records hold the subject's pseudonym
    where = (ProcessingRecord.tenant_id == tenant, ProcessingRecord.subject_id == ref,
             ProcessingRecord.allowed.is_(True), ProcessingRecord.recipient.is_not(None))
    with ctx.sessions() as s:
        if items is None:
            return sorted(str(r) for r in s.scalars(select(ProcessingRecord.recipient).distinct().where(*where)))
        rows = s.execute(select(ProcessingRecord.recipient, ProcessingRecord.items).distinct().where(*where)).all()
    wanted = set(items)
    return sorted({str(r) for r, got in rows if wanted & set(json.loads(got or "[]"))})


def recipient_notices(dm: DataMap, decl: Declaration, recipients: Sequence[str]
                      ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(by e-mail: (recipient, address)), (by a person: (recipient, who)) for the recipients that received
    the person's data. Authorities that received it under a statutory duty are not asked to delete."""
    emails: list[tuple[str, str]] = []
    manual: list[tuple[str, str]] = []
    for rid in recipients:
        r = decl.recipient(rid)
        if r is not None and r.legal_basis is LegalBasis.STATUTORY_DUTY:
            continue
        contact = dm.recipients.get(rid)
        if contact is not None and contact.email:
            emails.append((rid, contact.email))
        else:
            manual.append((rid, (contact.who if contact is not None and contact.who else "个人信息保护负责人")))
    return emails, manual


def enqueue_notices(ctx: RightsContext, s: Session, job: Job, decl: Declaration,
                    notices: Sequence[tuple[str, str]]) -> dict[str, int]:
    """R13: one e-mail per recipient, in the transaction that completes the request (exactly once).
    Returns recipient → the outbox message, whose delivery :func:`delivery` reads."""
    from yinsi.notify.messages import recipient_deletion_notice

    if not notices:
        return {}
    out: dict[str, int] = {}
    tax = taxonomy()
    ref = ctx.audit.pseudonym(job.tenant, job.subject)
    for rid, address in notices:
        r = decl.recipient(rid)
        items = [tax.items[i].name for i in (r.items if r is not None else []) if i in tax.items]
        text = recipient_deletion_notice(recipient_name=r.name if r is not None else rid,
                                         controller_name=decl.controller.legal_name.value or decl.app.name,
                                         app_name=decl.app.name, subject_ref=ref, items=items,
                                         request_ref=job.request_id)
        out[rid] = ctx.outbox.enqueue_in(s, job.tenant, "email", address, text.subject, text.body, "deletion_notice",
                                         job.request_id, now=ctx.clock(), template=text.template, params=text.params)
    return out


def delivery(s: Session, tenant: str, result: dict[str, Any]) -> dict[str, Any]:
    """``result`` of an erasure with its R13 e-mails as they stand now (R11): ``recipients_notified`` only
    once the outbox delivered the notice, ``recipients_queued`` while it waits or retries,
    ``recipients_failed`` when delivery gave up (a person must notify them)."""
    from yinsi.notify.outbox import MessageStatus
    from yinsi.storage.notify_tables import OutboxMessage

    ids = result.get("notices")
    if not isinstance(ids, dict) or not ids:
        return result
    status = dict(s.execute(select(OutboxMessage.id, OutboxMessage.status).where(
        OutboxMessage.tenant_id == tenant, OutboxMessage.id.in_([int(i) for i in ids.values()]))).all())
    sent: list[str] = []
    queued: list[str] = []
    failed: list[str] = []
    for rid, mid in sorted(ids.items()):
        st = status.get(int(mid))
        (sent if st == MessageStatus.SENT.value else queued if st == MessageStatus.PENDING.value else failed).append(rid)
    return {**result, "recipients_notified": sent, "recipients_queued": queued, "recipients_failed": failed}
