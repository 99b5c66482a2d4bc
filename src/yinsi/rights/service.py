"""Rights requests executed against the app's real databases (个人信息权利请求的执行).

Intake → identity verification (a one-time code to an address the operator already holds, R8; or staff
in person) → deadline from the tenant's promise and the holiday calendar (D1, D2, R9, R10) → for a
cancellation, the person's confirmation (irreversible from then on) → a plan over the data map → steps
run through the store connectors, each recorded as done only after its store committed, so a killed run
resumes with nothing missed and nothing done twice → read-back verification of every location → consents
end, recipients are told to delete (R13) → close. A request is "completed" only when the read-back found
nothing left (R11); a refusal always carries a ground (R7). See docs/rights.md.

:class:`RightsService` gathers the use cases behind one object; each lives in its own module:

======================  ==========================================================================
``rights.context``      the shared environment: sessions, clock, audit, key ring, data maps, store
                        addresses, declarations, outbox, consent ledger; request lookups, encryption
``rights.intake``       accepting a request, its deadline
``rights.verify``       identity verification of a request (code machinery: ``rights.verification``)
``rights.decisions``    confirmation, withdrawal, refusal, manual steps confirmed by a person
``rights.prerequisites``  cancellation prerequisites (R9)
``rights.run``          running a request: claim (``rights.lease``), dispatch by type, errors
``rights.erasure``      deletion and cancellation: plan snapshot, operations (``rights.plan``)
``rights.readback``     the read-back after erasure (R11)
``rights.holds``        the legal-hold vault (T2, T3)
``rights.notices``      recipients told to delete (R13)
``rights.copy``         access, copy, portability and the package (``rights.export``)
``rights.correction``   correction and supplement
``rights.withdrawal``   withdrawal of consent, restriction of processing and its lifting
``rights.explanation``  explanation of the rules, answers to complaints
``rights.identifiers``  identifiers for a person doing a manual step
``rights.steps``        step bookkeeping; ``rights.parallel`` runs steps layer by layer
``rights.transitions``  the one place a request changes state
``rights.queries``      show, list, overdue
======================  ==========================================================================

Every method takes the tenant: a request of another tenant is "not found", never shown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from yinsi.domain.policy import Declaration
from yinsi.domain.rights import RefusalGround, RequestType, State
from yinsi.rights import copy as copy_
from yinsi.rights import decisions, holds, identifiers, intake, queries, verify, withdrawal
from yinsi.rights.context import BEIJING, Clock, ErasureIncomplete, RequestError, RightsContext, utcnow
from yinsi.rights.holds import HoldView
from yinsi.rights.prerequisites import prerequisites
from yinsi.rights.queries import RequestView
from yinsi.rights.run import run

__all__ = ["BEIJING", "Clock", "ErasureIncomplete", "HoldView", "RequestError", "RequestView", "RightsService",
           "utcnow"]


class RightsService(RightsContext):
    """Rights requests for the tenants whose data maps are registered.

    ``datamaps``: tenant → its data map; ``store_urls``: store id → address (else the map's
    ``connection``); ``channels``: outbox channel adapters (default: from the environment, see
    docs/notify.md); ``exports_dir``: where encrypted packages are kept (default ``<data dir>/exports``).
    """

    def __enter__(self) -> RightsService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- intake and identity verification ----------------------------------------------------------------
    def submit(self, tenant: str, subject: str, type_: RequestType | str, *, subject_kind: str | None = None,
               channel: str = "app", requester: str | None = None, details: Mapping[str, Any] | None = None,
               received_at: datetime | None = None) -> str:
        """Accept a request (:func:`yinsi.rights.intake.submit`); returns its id."""
        return intake.submit(self, tenant, subject, type_, subject_kind=subject_kind, channel=channel,
                             requester=requester, details=details, received_at=received_at)

    def send_code(self, tenant: str, request_id: str, channel: str = "sms", *, claimed: str | None = None,
                  deliver: bool = True) -> Any:
        """Send a one-time code to the address on record (R8; :func:`yinsi.rights.verify.send_code`)."""
        return verify.send_code(self, tenant, request_id, channel, claimed=claimed, deliver=deliver)

    def check_code(self, tenant: str, request_id: str, code: str) -> Any:
        """Check the code; on success the request is verified."""
        return verify.check_code(self, tenant, request_id, code)

    def mark_verified(self, tenant: str, request_id: str, actor: str, how: str) -> None:
        """Record an identity verification by staff."""
        verify.mark_verified(self, tenant, request_id, actor, how)

    # --- decisions by people -----------------------------------------------------------------------------
    def prerequisites(self, tenant: str, kind: str, subject: str,
                      decl: Declaration | None = None) -> tuple[list[str], list[str]]:
        """(unmet, unchecked) cancellation prerequisites (:func:`yinsi.rights.prerequisites.prerequisites`)."""
        return prerequisites(self, tenant, kind, subject, decl)

    _prerequisites = prerequisites  # the name older callers use

    def confirm(self, tenant: str, request_id: str, actor: str = "requester") -> list[str]:
        """The person confirms their cancellation; returns the prerequisites a person still has to confirm."""
        return decisions.confirm(self, tenant, request_id, actor)

    def withdraw(self, tenant: str, request_id: str, actor: str = "requester") -> None:
        """The person withdraws the request (not a confirmed cancellation)."""
        decisions.withdraw(self, tenant, request_id, actor)

    def refuse(self, tenant: str, request_id: str, ground: RefusalGround | str, detail: str, actor: str) -> None:
        """Refuse with a ground and a detail (R7)."""
        decisions.refuse(self, tenant, request_id, ground, detail, actor)

    def complete_manual(self, tenant: str, request_id: str, actor: str, note: str, *,
                        step: str | None = None) -> State:
        """A person confirms manual steps (all, or the one whose key starts with ``step``); once none is
        left the request continues: an erasure is verified and closed, other requests close."""
        state, rid = decisions.confirm_manual(self, tenant, request_id, actor, note, step=step)
        if state is State.WAITING_MANUAL:
            return state
        return self.run(tenant, rid, actor)

    # --- execution ---------------------------------------------------------------------------------------
    def run(self, tenant: str, request_id: str, actor: str = "system", *,
            step_hook: Callable[[int], None] | None = None) -> State:
        """Create the plan if needed, run every pending step, verify, and close. Safe to run again."""
        return run(self, tenant, request_id, actor, step_hook=step_hook)

    def lift_restriction(self, tenant: str, request_id: str, actor: str, note: str) -> list[str]:
        """Lift the restrictions a completed restriction request placed."""
        return withdrawal.lift_restriction(self, tenant, request_id, actor, note)

    def identifiers(self, tenant: str, request_id: str, staff_id: str, reason: str) -> dict[str, str]:
        """The subject's key and attributes for a person doing a manual step (privacy officers, audited)."""
        return identifiers.identifiers(self, tenant, request_id, staff_id, reason)

    def export(self, tenant: str, request_id: str, output: Path, actor: str = "staff") -> Path:
        """Decrypt the package of an access/copy/portability request to ``output`` (0600), audited."""
        return copy_.export(self, tenant, request_id, output, actor)

    # --- reading -----------------------------------------------------------------------------------------
    def show(self, tenant: str, request_id: str) -> RequestView:
        return queries.show(self, tenant, request_id)

    def requests(self, tenant: str, *, open_only: bool = False, subject: str | None = None,
                 due_by: date | None = None, limit: int | None = None) -> list[RequestView]:
        """The tenant's requests, oldest first: only open ones, one subject's, those due by a date."""
        return queries.requests(self, tenant, open_only=open_only, subject=subject, due_by=due_by, limit=limit)

    def overdue(self, tenant: str, today: date | None = None, *, soon_days: int = 3) -> list[tuple[RequestView, str]]:
        """Open requests that are overdue or due within ``soon_days`` working days."""
        return queries.overdue(self, tenant, today, soon_days=soon_days)

    # --- the legal-hold vault ----------------------------------------------------------------------------
    def holds(self, tenant: str, request_id: str | None = None) -> list[HoldView]:
        """The legal-hold vault's rows of the tenant (metadata only)."""
        return holds.holds(self, tenant, request_id)

    def release_holds(self, tenant: str, today: date | None = None) -> int:
        """The retention sweep of the vault: delete the rows whose hold ended before ``today``."""
        return holds.release_holds(self, tenant, today)
