"""Subject ids in Yinsi's tables (主体编号的假名化存储): the app's id never, its pseudonym always.

An app may key its users by something that is itself PI (a phone number). Yinsi's tables therefore hold, in
every ``subject_id`` column of the ledger, the processing records and the protected identifiers, the tenant's
keyed pseudonym of the app's id (:func:`yinsi.protect.pseudonyms.compute_pseudonym`: HMAC under the tenant's
pseudonym key, the same pseudonym as the audit log's), and in ``subjects`` the id itself encrypted under the
tenant's data key, for the few places that need it back (lists of people to notify, staff lists, exports).
Birth dates are stored encrypted too.

The pseudonym key is never rotated (``yinsi keys rotate`` rotates the data key only), so a pseudonym keeps
its meaning for the life of the tenant; the encrypted ids and birth dates are re-encrypted by rotation like
every other encrypted column.

:class:`SubjectDirectory` is the one place the services turn ids into pseudonyms and back; it caches
pseudonyms (a keyed hash per new subject, a dictionary look-up after) and decoded birth dates per token.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import date

from yinsi.protect.errors import KeyNotFound
from yinsi.protect.keys import KeyRing
from yinsi.storage.consent_tables import BIRTH_DATE_FIELD, SUBJECT_FIELD

__all__ = ["SubjectDirectory"]

#: pseudonyms (and decoded birth dates) kept in memory per process before the cache is cleared
_CACHE = 200_000


class SubjectDirectory:
    """Pseudonyms of the app's subject ids, and the ids and birth dates encrypted, for one database.

    ``ring`` gives the key ring (created on first use); ``provision(tenant)`` creates a tenant's keys when
    it has none yet (a published tenant that has never used a key)."""

    def __init__(self, ring: Callable[[], KeyRing], provision: Callable[[str], object] | None = None) -> None:
        self._ring_of = ring
        self._provision = provision
        self._refs: dict[tuple[str, str], str] = {}
        self._subjects: dict[tuple[str, str], str] = {}  # (tenant, pseudonym) → id, for ids seen here
        self._births: dict[str, date] = {}
        self._known: set[tuple[str, str]] = set()  # (tenant, pseudonym) with a directory row
        self._lock = threading.Lock()

    @property
    def ring(self) -> KeyRing:
        return self._ring_of()

    def _with_keys(self, tenant: str, fn: Callable[[], str]) -> str:
        try:
            return fn()
        except KeyNotFound:
            if self._provision is None:
                raise
            self._provision(tenant)
            return fn()

    # --- pseudonyms ---------------------------------------------------------------------------------------
    def ref(self, tenant: str, subject: str) -> str:
        """The pseudonym stored for the app's ``subject``."""
        key = (tenant, subject)
        p = self._refs.get(key)
        if p is None:
            p = self._with_keys(tenant, lambda: self.ring.pseudonymise(tenant, subject))
            with self._lock:
                if len(self._refs) >= _CACHE:
                    self._refs.clear()
                    self._subjects.clear()
                self._refs[key] = p
                self._subjects[(tenant, p)] = subject
        return p

    def refs(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """The pseudonyms of ``(tenant, subject)`` pairs (compute them before opening a write transaction:
        the key ring reads keys through its own connection)."""
        return {pair: self.ref(*pair) for pair in dict.fromkeys(pairs)}

    def seen(self, tenant: str, ref: str) -> str | None:
        """The app's id of a pseudonym computed in this process, if still cached (no decryption)."""
        return self._subjects.get((tenant, ref))

    # --- encrypted ids and birth dates ------------------------------------------------------------------
    def encrypt_subject(self, tenant: str, subject: str) -> str:
        return self._with_keys(tenant, lambda: self.ring.cipher(tenant).encrypt_text(SUBJECT_FIELD, subject))

    def decrypt_subject(self, tenant: str, token: str) -> str:
        return self.ring.cipher(tenant).decrypt_text(SUBJECT_FIELD, token)

    def encrypt_birth(self, tenant: str, birth: date) -> str:
        return self._with_keys(tenant, lambda: self.ring.cipher(tenant).encrypt_text(BIRTH_DATE_FIELD,
                                                                                     birth.isoformat()))

    def birth_decoder(self, tenant: str) -> Callable[[str], date]:
        """Decodes the tenant's ``birth_date_encrypted`` tokens (each token decrypted once per process: a
        token is never rewritten in place, a new birth date is a new token)."""
        births = self._births

        def decode(token: str) -> date:
            d = births.get(token)
            if d is None:
                d = date.fromisoformat(self.ring.cipher(tenant).decrypt_text(BIRTH_DATE_FIELD, token))
                if len(births) >= _CACHE:
                    births.clear()
                births[token] = d
            return d
        return decode

    # --- the directory ----------------------------------------------------------------------------------
    def known(self, tenant: str, ref: str) -> bool:
        """Whether this process saw the pseudonym's directory row (it is never deleted while events exist)."""
        return (tenant, ref) in self._known

    def mark_known(self, tenant: str, refs: Iterable[str]) -> None:
        with self._lock:
            if len(self._known) >= _CACHE:
                self._known.clear()
            self._known.update((tenant, r) for r in refs)

    def subjects_of(self, tenant: str, tokens: Mapping[str, str]) -> dict[str, str]:
        """The app's ids of pseudonyms, from their directory tokens (``{pseudonym: token}``)."""
        out: dict[str, str] = {}
        for ref, token in tokens.items():
            subject = self.seen(tenant, ref)
            out[ref] = subject if subject is not None else self.decrypt_subject(tenant, token)
        return out
