"""What follows a completed account cancellation (注销) outside the rights service: the person's sessions end.

A cancelled account has nobody left to act for: every live session of the subject (privacy center, app
deep link) is revoked as soon as the cancellation is completed, whichever entry point completed it (the
worker, ``yinsi request run``, a member of staff running it or confirming its last manual step).
"""

from __future__ import annotations

from typing import Any

from yinsi.domain.rights import RequestType, State


def end_sessions_if_cancelled(rights: Any, tenant: str, request_id: str, state: State | str, *,
                              people: Any = None) -> int:
    """If ``request_id`` is a cancellation that is now completed, revoke its subject's sessions; returns how
    many were ended. ``people``: a :class:`~yinsi.auth.people.PersonAuthService` to use (one is opened on
    the rights service's database otherwise)."""
    if State(state) is not State.COMPLETED:
        return 0
    view = rights.show(tenant, request_id)
    if RequestType(view.type) is not RequestType.CANCEL_ACCOUNT:
        return 0
    if people is not None:
        return int(people.revoke_subject(tenant, view.subject, view.subject_kind))
    from yinsi.auth.people import PersonAuthService

    with PersonAuthService(rights.url, datamaps=rights.datamaps) as own:
        return own.revoke_subject(tenant, view.subject, view.subject_kind)
