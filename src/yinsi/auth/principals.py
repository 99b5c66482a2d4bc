"""Who is asking: the principals that authentication yields and every entry point passes on.

A principal is only ever made by the authentication services (:mod:`yinsi.auth.apikeys`,
:mod:`yinsi.auth.people`, :mod:`yinsi.auth.staff`) from a credential they checked; entry points never build
one from a name typed by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class AppScope(StrEnum):
    """What an app's API key may do (one key may hold several scopes)."""

    GATE = "gate"  # ask the processing gate
    CONSENT = "consent"  # record consent events
    PERMISSIONS = "permissions"  # record device permission events
    SUBJECTS = "subjects"  # register subjects (birth date) and read their state
    REQUESTS = "requests"  # take in rights requests from the app's own pages
    RECORDS = "records"  # read processing records / a person's 双清单


ALL_APP_SCOPES: frozenset[str] = frozenset(s.value for s in AppScope)


@dataclass(frozen=True)
class AppPrincipal:
    """An app's back end, authenticated by one of its tenant's API keys."""

    tenant: str
    key_id: str
    scopes: frozenset[str]

    def allows(self, scope: AppScope | str) -> bool:
        return str(scope) in self.scopes

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"app:{self.key_id}"


@dataclass(frozen=True)
class PersonPrincipal:
    """A data subject (个人信息主体) in a session started by a one-time code to a contact on record or by the
    tenant app's signed deep link. Acts on ``subject`` of ``tenant`` only."""

    tenant: str
    subject: str
    subject_kind: str | None
    session_id: str
    method: str  # "sms" | "email" | "app_token"

    @property
    def actor(self) -> str:
        return "requester"


@dataclass(frozen=True)
class StaffPrincipal:
    """A member of a tenant's staff (工作人员), logged in with password and (for roles that see PI) a second
    factor. ``person_id`` ties several accounts of one human together (four-eyes approvals refuse it)."""

    tenant: str
    staff_id: str
    person_id: str
    roles: frozenset[str]
    mfa: bool  # a second factor was verified for this session or token
    session_id: str

    @property
    def actor(self) -> str:
        return self.staff_id


class AuthError(Exception):
    """A credential is missing, wrong, expired or not allowed to do this. ``code`` is stable (API problem
    ``code``), ``detail`` is Chinese for people and never contains PI; ``status`` is the HTTP status
    (401 not authenticated, 403 authenticated but not allowed, 429 rate limited); ``rule`` a RULES.md id
    where a rule is the reason; ``retry_after`` seconds for 429."""

    def __init__(self, code: str, detail: str, *, status: int = 401, rule: str | None = None,
                 retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status
        self.rule = rule
        self.retry_after = retry_after
