"""The audit log (审计日志): append entries to a tenant's hash chain, sign checkpoints, read and verify.

One chain per tenant: tenants stay isolated (a tenant's auditor verifies and exports only its chain),
and appends of different tenants never wait for each other. Within a chain, appends are serialised by
locking the chain's head row (``SELECT … FOR UPDATE`` on PostgreSQL and MariaDB; on SQLite the database
write lock, taken by the first statement), so concurrent writers in any number of threads or processes
never fork the chain or leave a gap; ``(tenant_id, seq)`` is also the primary key, as a second guard.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import random
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Row, event, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from yinsi.audit.errors import AuditError, ChainConfigConflict, InvalidAuditEntry
from yinsi.audit.hashing import GENESIS_HASH, HashAlg, hash_fn
from yinsi.audit.location import canonical_database
from yinsi.audit.merkle import Frontier, consistency_proof, inclusion_proof, leaf_hash, root_of
from yinsi.audit.model import (
    AuditAction,
    AuditEntry,
    AuditRecord,
    Checkpoint,
    canonical_json,
    checkpoint_payload,
    endorsement_payload,
    entry_payload,
)
from yinsi.audit.proofcheck import CONSISTENCY_TYPE, INCLUSION_TYPE
from yinsi.audit.records import Prepared, check_tenant, prepare
from yinsi.audit.signing import SignAlg, Signer, default_key_file, generate, load_signer, replace_key_file
from yinsi.audit.store import (
    ADVANCE_HEAD,
    ADVANCE_HEAD_AND_CHECKPOINT,
    CHAINS,
    CHECKPOINTS,
    ENTRIES,
    INSERT_ENTRIES,
    KEYS,
    SELECT_HEAD,
    SELECT_HEAD_FOR_UPDATE,
    TOUCH_HEAD,
    TOUCH_HEAD_RETURNING,
    row_to_checkpoint,
    row_to_entry,
)
from yinsi.audit.tsa import TimestampAuthority, tsa_from_env
from yinsi.audit.verify import VerifyResult, verify_chain
from yinsi.audit.witness import FileWitness, WitnessMissing, WitnessRecord, WitnessStore, record_quietly, witness_from_env

#: Entries between automatic checkpoints (for new chains), unless ``YINSI_AUDIT_CHECKPOINT_EVERY`` says otherwise.
DEFAULT_CHECKPOINT_EVERY = 1000
#: At most this many seconds between an entry and the checkpoint that covers it, while the process runs
#: (``YINSI_AUDIT_CHECKPOINT_SECONDS``; 0 turns the time limit off).
DEFAULT_CHECKPOINT_SECONDS = 60.0
CHECKPOINT_EVERY_ENV = "YINSI_AUDIT_CHECKPOINT_EVERY"
CHECKPOINT_SECONDS_ENV = "YINSI_AUDIT_CHECKPOINT_SECONDS"

T = TypeVar("T")
log = logging.getLogger("yinsi.audit")


@dataclass(frozen=True)
class ChainInfo:
    """A chain's settings and head (链头)."""

    tenant: str
    chain_uid: str
    hash_alg: str
    sign_alg: str
    checkpoint_every: int
    last_seq: int
    last_checkpoint_no: int
    last_checkpoint_seq: int
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["created_at"] = self.created_at.isoformat()
        return out


@dataclass(frozen=True)
class InclusionProof:
    """Proof that entry ``seq`` is covered by a signed checkpoint (RFC 6962 audit path)."""

    tenant: str
    seq: int
    entry_hash: str
    checkpoint: Checkpoint
    path: tuple[str, ...]
    #: The entry's hashed form (its canonical JSON hashes to ``entry_hash``).
    entry: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON that ``yinsi.audit.proofcheck.check`` verifies without Yinsi's database."""
        cp = self.checkpoint.to_dict()
        cp.pop("created", None)
        return {"type": INCLUSION_TYPE, "hash_alg": self.checkpoint.hash_alg, "tenant": self.tenant, "seq": self.seq,
                "entry_hash": self.entry_hash, "entry": self.entry, "tree_size": self.checkpoint.upto_seq,
                "root": self.checkpoint.root, "path": list(self.path), "checkpoint": cp}


@dataclass(frozen=True)
class ConsistencyProof:
    """Proof that the tree of ``second_size`` entries extends the tree of ``first_size`` (RFC 9162 §2.1.4)."""

    tenant: str
    hash_alg: str
    first_size: int
    second_size: int
    first_root: str
    second_root: str
    path: tuple[str, ...]
    first_checkpoint: Checkpoint | None = None
    second_checkpoint: Checkpoint | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON that ``yinsi.audit.proofcheck.check`` verifies without Yinsi's database."""
        def cp(c: Checkpoint | None) -> dict[str, Any] | None:
            if c is None:
                return None
            d = c.to_dict()
            d.pop("created", None)
            return d

        return {"type": CONSISTENCY_TYPE, "hash_alg": self.hash_alg, "tenant": self.tenant,
                "first_size": self.first_size, "second_size": self.second_size, "first_root": self.first_root,
                "second_root": self.second_root, "path": list(self.path),
                "first_checkpoint": cp(self.first_checkpoint), "second_checkpoint": cp(self.second_checkpoint)}


def chain_info(row: Row[Any]) -> ChainInfo:
    return ChainInfo(row.tenant_id, row.chain_uid, row.hash_alg, row.sign_alg, row.checkpoint_every, row.last_seq,
                     row.last_checkpoint_no, row.last_checkpoint_seq, row.created_at)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _database_name(session: Session) -> str:
    return canonical_database(session.get_bind().engine.url)


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise AuditError(f"环境变量 {name} 应为非负数，实际为 {raw!r}") from None
    if value < 0 or value != value:
        raise AuditError(f"环境变量 {name} 应为非负数，实际为 {raw!r}")
    return value


def default_checkpoint_every() -> int:
    return int(_env_number(CHECKPOINT_EVERY_ENV, DEFAULT_CHECKPOINT_EVERY))


def default_checkpoint_seconds() -> float:
    return _env_number(CHECKPOINT_SECONDS_ENV, DEFAULT_CHECKPOINT_SECONDS)


@dataclass
class _Pending:
    """Chains of one database that this process appended to since their last checkpoint. The log itself is
    only weakly held (a command's services are gone by its end): the database URL, key files and witness
    suffice to sign the checkpoints."""

    log: weakref.ref[AuditLog]
    url: str
    key_files: dict[str, Path]
    witness: WitnessStore | None
    tenants: set[str]


_PENDING: dict[tuple[str, tuple[Path, ...]], _Pending] = {}
_PENDING_LOCK = threading.Lock()


def forget_pending() -> None:
    """Forget the unsigned tails noted so far (they are another command's)."""
    with _PENDING_LOCK:
        _PENDING.clear()


def checkpoint_pending() -> list[Checkpoint]:
    """Sign a checkpoint over every chain this process appended to since that chain's last checkpoint.

    Called at the end of every ``yinsi`` command (so a command never leaves an unsigned tail behind) and
    by long-running processes from time to time. Failures are logged, not raised: the entries are
    committed already, and ``verify`` reports an old unsigned tail.
    """
    with _PENDING_LOCK:
        todo = list(_PENDING.values())
        _PENDING.clear()
    made: list[Checkpoint] = []
    for p in todo:
        audit = p.log()
        engine = None
        try:
            if audit is None:
                from yinsi.storage import make_engine, make_session_factory

                engine = make_engine(p.url)
                audit = AuditLog(make_session_factory(engine), key_file=p.key_files[SignAlg.ED25519.value],
                                 sm2_key_file=p.key_files[SignAlg.SM2.value], witness=p.witness,
                                 use_witness=p.witness is not None)
            for tenant in sorted(p.tenants):
                try:
                    cp = audit.checkpoint(tenant)
                except (AuditError, DBAPIError, OSError) as exc:
                    log.warning("未能为租户 %s 的审计链签名检查点：%s", tenant, exc)
                    continue
                if cp is not None and cp.created:
                    made.append(cp)
        except (AuditError, DBAPIError, OSError, ValueError) as exc:
            log.warning("未能为审计链签名检查点：%s", exc)
        finally:
            if engine is not None:
                engine.dispose()
    return made


def _retryable(exc: DBAPIError) -> bool:
    """Lock timeouts, deadlocks and serialisation failures: the whole transaction can simply be retried."""
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate in ("40001", "40P01", "55P03"):
        return True
    args = getattr(orig, "args", ())
    if args and args[0] in (1205, 1213):  # MySQL/MariaDB: lock wait timeout, deadlock
        return True
    text = str(orig).lower()
    return "database is locked" in text or "database is busy" in text


class CheckpointTimer:
    """For long-running services: sign unsigned tails (``checkpoint_pending``) every ``seconds`` from a daemon
    thread, so that a tail is signed even when appends stop; ``stop()`` signs once more and ends the thread.

    ``with CheckpointTimer(): serve()`` — or ``start()`` in the service's startup and ``stop()`` at shutdown.
    """

    def __init__(self, seconds: float | None = None) -> None:
        self.seconds = seconds if seconds is not None else (default_checkpoint_seconds() or DEFAULT_CHECKPOINT_SECONDS)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> CheckpointTimer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="yinsi-audit-checkpoints", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            checkpoint_pending()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        checkpoint_pending()

    def __enter__(self) -> CheckpointTimer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class AuditLog:
    """``AuditLog(session_factory).append(tenant, actor, action, …)``; see ``docs/audit.md``.

    ``hash_alg``, ``sign_alg`` and ``checkpoint_every`` are the settings of chains this log creates (on
    a tenant's first append, or with ``create_chain``); an existing chain keeps its own. ``checkpoint_every``
    0 turns automatic checkpoints off (then run ``checkpoint`` yourself, e.g. ``yinsi audit checkpoint``
    from cron). ``clock`` returns the current time (timezone-aware); tests pass a fixed one.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        hash_alg: str = HashAlg.SHA256,
        sign_alg: str = SignAlg.ED25519,
        checkpoint_every: int | None = None,
        checkpoint_seconds: float | None = None,
        key_file: Path | None = None,
        sm2_key_file: Path | None = None,
        witness: WitnessStore | None = None,
        witness_file: Path | None = None,
        use_witness: bool = True,
        tsa: TimestampAuthority | None = None,
        clock: Callable[[], datetime] | None = None,
        max_attempts: int = 10,
    ) -> None:
        hash_fn(hash_alg)  # fail early on an unknown algorithm
        if sign_alg not in tuple(SignAlg):
            raise ValueError(f"unknown audit signature algorithm {sign_alg!r} (expected one of: ed25519, sm2)")
        if checkpoint_every is None:
            checkpoint_every = default_checkpoint_every()
        if checkpoint_seconds is None:
            checkpoint_seconds = default_checkpoint_seconds()
        if checkpoint_every < 0 or checkpoint_seconds < 0:
            raise ValueError("checkpoint_every and checkpoint_seconds must be >= 0 (0: no automatic checkpoints)")
        self.session_factory = session_factory
        self.hash_alg = HashAlg(hash_alg).value
        self.sign_alg = SignAlg(sign_alg).value
        self.checkpoint_every = checkpoint_every
        self.checkpoint_seconds = checkpoint_seconds
        self.key_files: dict[str, Path] = {
            SignAlg.ED25519.value: key_file or default_key_file(SignAlg.ED25519),
            SignAlg.SM2.value: sm2_key_file or default_key_file(SignAlg.SM2),
        }
        if not use_witness:
            witness = None
        elif witness is None:
            witness = FileWitness(witness_file) if witness_file is not None else witness_from_env()
        self.witness: WitnessStore | None = witness
        #: An RFC 3161 timestamp authority that countersigns witnessed checkpoints (``YINSI_AUDIT_TSA_URL``).
        self.tsa = tsa if tsa is not None or not use_witness else tsa_from_env()
        self._separate_checked: set[str] = set()
        #: When this process first saw each chain's current unsigned tail (the time limit's clock).
        self._tail_since: dict[str, datetime] = {}
        self._url_text: str | None = None
        self._clock = clock or (lambda: datetime.now(UTC))
        self.max_attempts = max_attempts
        self._lock = threading.Lock()
        self._signers: dict[str, Signer] = {}
        self._known_chains: set[str] = set()

    # --- appending ----------------------------------------------------------------------------

    def append(
        self,
        tenant: str,
        actor: str,
        action: AuditAction | str,
        target_subject: str | None = None,
        items: Sequence[str] = (),
        reason: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Record one entry in its own transaction and return it (with seq, time and hashes).

        ``target_subject`` is a pseudonymised subject id, ``items`` PI item IDs (``contact.mobile``), never
        values; ``details`` a JSON object without PI. Raises ``InvalidAuditEntry`` / ``PIInAuditEntry``.
        """
        return self.append_many(tenant, [AuditRecord(actor, action, target_subject, items, reason, details)])[0]

    def append_many(self, tenant: str, records: Iterable[AuditRecord]) -> list[AuditEntry]:
        """Record several entries atomically, in order, in one transaction (much faster than one by one)."""
        check_tenant(tenant)
        prepared = [prepare(r) for r in records]
        if not prepared:
            return []
        entries, cp = self._in_transaction(lambda s: self._append_locked(s, tenant, prepared))
        if cp is not None:
            self._witness(cp[0], cp[1])
        return entries

    def append_in(
        self,
        session: Session,
        tenant: str,
        actor: str,
        action: AuditAction | str,
        target_subject: str | None = None,
        items: Sequence[str] = (),
        reason: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Like ``append``, inside the caller's transaction (the caller commits), so that a change and its
        audit entry are committed together or not at all.

        The chain stays locked until the caller's transaction ends: keep it short. On SQLite this takes
        the database write lock.
        """
        return self.append_many_in(session, tenant, [AuditRecord(actor, action, target_subject, items, reason, details)])[0]

    def append_many_in(self, session: Session, tenant: str, records: Iterable[AuditRecord]) -> list[AuditEntry]:
        """``append_many`` inside the caller's transaction."""
        check_tenant(tenant)
        prepared = [prepare(r) for r in records]
        if not prepared:
            return []
        entries, cp = self._append_locked(session, tenant, prepared)
        if cp is not None:
            self._witness_after_commit(session, cp[0])
        return entries

    def create_chain(
        self,
        tenant: str,
        *,
        hash_alg: str | None = None,
        sign_alg: str | None = None,
        checkpoint_every: int | None = None,
    ) -> ChainInfo:
        """Create the tenant's chain with these settings (defaults: the log's). An existing chain is
        returned as it is, unless it has other settings than those given: ``ChainConfigConflict``."""
        check_tenant(tenant)
        h = HashAlg(hash_alg or self.hash_alg).value
        sa_ = SignAlg(sign_alg or self.sign_alg).value
        every = self.checkpoint_every if checkpoint_every is None else checkpoint_every
        if every < 0:
            raise ValueError("checkpoint_every must be >= 0")

        def run(session: Session) -> ChainInfo:
            row = self._lock_head(session, tenant, create=(h, sa_, every))
            assert row is not None
            return chain_info(row)

        info = self._in_transaction(run)
        wanted = {"hash_alg": hash_alg and h, "sign_alg": sign_alg and sa_, "checkpoint_every": checkpoint_every}
        clashes = [k for k, v in wanted.items() if v is not None and getattr(info, k) != v]
        if clashes:
            have = "，".join(f"{k}={getattr(info, k)}" for k in clashes)
            raise ChainConfigConflict(f"租户 {tenant} 的审计链已存在，其设置为 {have}；审计链创建后不能更改算法或检查点间隔")
        return info

    def _in_transaction(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` in a new session and commit; retry the whole transaction on lock conflicts."""
        for attempt in range(self.max_attempts):
            session = self.session_factory()
            try:
                result = fn(session)
                session.commit()
                return result
            except DBAPIError as exc:
                session.rollback()
                if attempt == self.max_attempts - 1 or not _retryable(exc):
                    raise
            finally:
                session.close()
            time.sleep(min(0.5, 0.005 * 2 ** attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable")  # pragma: no cover

    def _new_chain(self, tenant: str, settings: tuple[str, str, int]) -> dict[str, Any]:
        return {
            "tenant_id": tenant, "chain_uid": str(uuid.uuid4()), "hash_alg": settings[0], "sign_alg": settings[1],
            "checkpoint_every": settings[2], "last_seq": 0, "last_hash": GENESIS_HASH, "frontier": "",
            "last_checkpoint_no": 0, "last_checkpoint_seq": 0, "last_checkpoint_hash": None,
            "created_at": self._now(),
        }

    def _lock_head(self, session: Session, tenant: str, *, create: tuple[str, str, int] | None) -> Row[Any] | None:
        """The chain's head row, locked until the transaction ends; created (with ``create`` settings) if
        missing, else ``None`` if missing."""
        conn = session.connection()
        key = {"b_tenant": tenant}
        if conn.dialect.name == "sqlite":
            # A write first: it takes SQLite's write lock (waiting for other writers), so reading the head and
            # writing the next entry cannot interleave with another writer. A plain SELECT would not lock.
            if conn.dialect.update_returning:
                row = conn.execute(TOUCH_HEAD_RETURNING, key).one_or_none()
            else:  # SQLite before 3.35
                conn.execute(TOUCH_HEAD, key)
                row = conn.execute(SELECT_HEAD, key).one_or_none()
            if row is None and create is not None:
                conn.execute(insert(CHAINS).values(self._new_chain(tenant, create)))
                row = conn.execute(SELECT_HEAD, key).one_or_none()
            return row
        # A new chain is checked for without a lock first: on MariaDB a locking read of a missing row takes a
        # gap lock, and two writers creating the same chain would then deadlock.
        if tenant not in self._known_chains and conn.execute(SELECT_HEAD, key).first() is None:
            if create is None:
                return None
            try:
                with session.begin_nested():
                    session.connection().execute(insert(CHAINS).values(self._new_chain(tenant, create)))
            except IntegrityError:
                pass  # created concurrently by another writer
        row = session.connection().execute(SELECT_HEAD_FOR_UPDATE, key).one_or_none()
        if row is None:
            if tenant in self._known_chains:  # stale cache (a creation was rolled back): take the slow path
                with self._lock:
                    self._known_chains.discard(tenant)
                return self._lock_head(session, tenant, create=create)
            return None
        with self._lock:
            self._known_chains.add(tenant)
        return row

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("AuditLog clock must return timezone-aware datetimes")
        # microseconds are the precision every backend stores
        return now.astimezone(UTC)

    def _append_locked(
        self, session: Session, tenant: str, prepared: list[Prepared]
    ) -> tuple[list[AuditEntry], tuple[Checkpoint, str] | None]:
        head = self._lock_head(session, tenant, create=(self.hash_alg, self.sign_alg, self.checkpoint_every))
        assert head is not None
        h = hash_fn(head.hash_alg)
        frontier = Frontier.from_text(h, head.last_seq, head.frontier)
        seq, prev = head.last_seq, head.last_hash
        now = self._now()
        rows: list[dict[str, Any]] = []
        entries: list[AuditEntry] = []
        for p in prepared:
            seq += 1
            payload = entry_payload(tenant, seq, now, p.actor, p.action, p.subject, p.items, p.reason, p.details, prev)
            digest = h(canonical_json(payload))
            entry_hash = digest.hex()
            frontier.append(leaf_hash(h, digest))
            rows.append({
                "tenant_id": tenant, "seq": seq, "recorded_at": now, "actor": p.actor, "action": p.action,
                "subject": p.subject, "items": p.items_text, "reason": p.reason, "details": p.details_text,
                "prev_hash": prev, "entry_hash": entry_hash,
            })
            entries.append(AuditEntry(tenant, seq, now, p.actor, p.action, p.subject, p.items, p.reason, p.details,
                                      prev, entry_hash))
            prev = entry_hash
        conn = session.connection()
        try:
            conn.execute(INSERT_ENTRIES, rows)
        except IntegrityError:
            # the seqs after the head are taken: the head row and the entries disagree (tampering or a restore)
            raise AuditError(
                f"租户 {tenant} 的审计链中第 {head.last_seq + 1} 条已存在，与链头记录不符，日志可能被篡改；"
                f"已停止追加。请运行：yinsi audit verify --tenant {tenant}") from None
        params: dict[str, Any] = {"b_tenant": tenant, "b_seq": seq, "b_hash": prev, "b_frontier": frontier.to_text()}
        cp = None
        if self._checkpoint_due(head, seq, now):
            checkpoint = self._sign_checkpoint(session, head, seq, prev, frontier, now)
            params.update(b_cp_no=checkpoint.number, b_cp_seq=seq, b_cp_hash=checkpoint.checkpoint_hash)
            cp = (checkpoint, _database_name(session))
            conn.execute(ADVANCE_HEAD_AND_CHECKPOINT, params)
            self._signed(tenant)
        else:
            conn.execute(ADVANCE_HEAD, params)
            if head.checkpoint_every:
                self._unsigned(tenant, session)
        return entries, cp

    def _checkpoint_due(self, head: Row[Any], seq: int, now: datetime) -> bool:
        """Whether this append should sign a checkpoint: ``checkpoint_every`` entries since the last one, or
        the unsigned tail older than ``checkpoint_seconds`` (as this process saw it: one clock reading per
        append, no query). A chain with ``checkpoint_every`` 0 is only checkpointed on demand."""
        if not head.checkpoint_every:
            return False
        if seq - head.last_checkpoint_seq >= head.checkpoint_every:
            return True
        if not self.checkpoint_seconds:
            return False
        tenant = head.tenant_id
        if head.last_checkpoint_seq == head.last_seq:  # the tail starts with this append
            self._tail_since[tenant] = now
            return False
        since = self._tail_since.setdefault(tenant, now)
        return (now - since).total_seconds() >= self.checkpoint_seconds

    def _pending_key(self, session: Session | None) -> tuple[str, tuple[Path, ...]] | None:
        if self._url_text is None and session is not None:
            self._url_text = session.get_bind().engine.url.render_as_string(hide_password=False)
        if self._url_text is None:
            return None
        return self._url_text, tuple(self.key_files.values())

    def _unsigned(self, tenant: str, session: Session) -> None:
        key = self._pending_key(session)
        assert key is not None
        with _PENDING_LOCK:
            p = _PENDING.get(key)
            if p is None:
                _PENDING[key] = _Pending(weakref.ref(self), key[0], dict(self.key_files), self.witness, {tenant})
            else:
                p.tenants.add(tenant)
                if p.log() is None:
                    p.log = weakref.ref(self)

    def _signed(self, tenant: str) -> None:
        self._tail_since.pop(tenant, None)
        key = self._pending_key(None)
        if key is None:
            return
        with _PENDING_LOCK:
            p = _PENDING.get(key)
            if p is not None:
                p.tenants.discard(tenant)
                if not p.tenants:
                    del _PENDING[key]

    # --- checkpoints and keys -----------------------------------------------------------------

    def checkpoint(self, tenant: str) -> Checkpoint | None:
        """Sign a checkpoint over the chain's current head now (on demand). Returns the newest checkpoint
        (``created`` False if it already covered the head), or ``None`` for a missing or empty chain."""
        check_tenant(tenant)

        def run(session: Session) -> tuple[Checkpoint, str] | None:
            head = self._lock_head(session, tenant, create=None)
            if head is None or head.last_seq == 0:
                return None
            if head.last_checkpoint_seq == head.last_seq:
                row = session.execute(select(CHECKPOINTS).where(
                    CHECKPOINTS.c.tenant_id == tenant, CHECKPOINTS.c.checkpoint_no == head.last_checkpoint_no)).one_or_none()
                if row is not None:
                    return row_to_checkpoint(row, created=False), ""
            h = hash_fn(head.hash_alg)
            frontier = Frontier.from_text(h, head.last_seq, head.frontier)
            cp = self._sign_checkpoint(session, head, head.last_seq, head.last_hash, frontier, self._now())
            session.execute(update(CHAINS).where(CHAINS.c.tenant_id == tenant).values(
                last_checkpoint_no=cp.number, last_checkpoint_seq=cp.upto_seq, last_checkpoint_hash=cp.checkpoint_hash))
            self._signed(tenant)
            return cp, _database_name(session)

        result = self._in_transaction(run)
        if result is None:
            return None
        if result[0].created:
            self._witness(result[0], result[1])
        return result[0]

    def signer(self, alg: str) -> Signer:
        """The signing key of ``alg`` (loaded once; created on first use)."""
        with self._lock:
            signer = self._signers.get(alg)
            if signer is None:
                loaded = load_signer(alg, self.key_files[alg], create=True)
                assert loaded is not None
                signer = self._signers[alg] = loaded
            return signer

    def _register_key(self, session: Session, signer: Signer) -> None:
        if session.execute(select(KEYS.c.key_id).where(KEYS.c.key_id == signer.key_id)).first() is not None:
            return
        values = {"key_id": signer.key_id, "algorithm": signer.alg, "public_key": signer.public_key,
                  "created_at": self._now(), "endorsed_by": None, "endorsement": None}
        if _dialect(session) == "sqlite":  # the write lock is held: no concurrent insert
            session.execute(insert(KEYS).values(values))
            return
        try:
            with session.begin_nested():
                session.execute(insert(KEYS).values(values))
        except IntegrityError:
            pass

    def _sign_checkpoint(self, session: Session, head: Row[Any], seq: int, tip: str, frontier: Frontier,
                         now: datetime) -> Checkpoint:
        signer = self.signer(head.sign_alg)
        self._register_key(session, signer)
        h = hash_fn(head.hash_alg)
        number = head.last_checkpoint_no + 1
        root = frontier.root().hex()
        payload = checkpoint_payload(head.tenant_id, head.chain_uid, number, seq, root, tip, head.last_checkpoint_hash,
                                     head.hash_alg, head.sign_alg, signer.key_id, now)
        data = canonical_json(payload)
        cp = Checkpoint(head.tenant_id, head.chain_uid, number, seq, root, tip, head.last_checkpoint_hash, head.hash_alg,
                        head.sign_alg, signer.key_id, now, signer.sign(data), h(data).hex())
        session.execute(insert(CHECKPOINTS).values(
            tenant_id=cp.tenant, checkpoint_no=cp.number, chain_uid=cp.chain_uid, upto_seq=cp.upto_seq, root=cp.root,
            tip_hash=cp.tip_hash, prev_checkpoint_hash=cp.prev_checkpoint_hash, checkpoint_hash=cp.checkpoint_hash,
            hash_alg=cp.hash_alg, sign_alg=cp.sign_alg, key_id=cp.key_id, signature=cp.signature, created_at=now))
        return cp

    def _witness_store(self, database: str) -> WitnessStore | None:
        """The witness store, once checked to be apart from ``database`` (``AuditError`` otherwise)."""
        if self.witness is not None and database not in self._separate_checked:
            self.witness.check_separate(database)
            self._separate_checked.add(database)
        return self.witness

    def _witness(self, cp: Checkpoint, database: str) -> None:
        try:
            store = self._witness_store(database)
        except AuditError as exc:
            log.warning("审计检查点已保存，但外部见证配置不当，未写入：%s", exc)
            return
        if store is None:
            return
        token = None
        if self.tsa is not None:
            try:
                token = base64.b64encode(self.tsa.stamp(canonical_json(cp.payload()))).decode("ascii")
            except AuditError as exc:
                log.warning("审计检查点 #%s 未能取得可信时间戳：%s", cp.number, exc)
        record_quietly(store, WitnessRecord(cp.chain_uid, cp.tenant, database, cp.number, cp.upto_seq, cp.root,
                                            cp.checkpoint_hash, token))

    def _witness_after_commit(self, session: Session, cp: Checkpoint) -> None:
        """Record ``cp`` outside the database once the caller's transaction has committed, and only if the
        checkpoint is then really stored (a rolled-back savepoint may have discarded it)."""
        if self.witness is None:
            return
        pending: list[Checkpoint] = session.info.setdefault("yinsi_audit_pending_checkpoints", [])
        pending.append(cp)
        if session.info.get("yinsi_audit_listening"):
            return
        session.info["yinsi_audit_listening"] = True
        engine = session.get_bind().engine
        database = canonical_database(engine.url)

        def after_commit(sess: Session) -> None:
            todo = list(sess.info.get("yinsi_audit_pending_checkpoints", []))
            sess.info["yinsi_audit_pending_checkpoints"] = []
            if not todo:
                return
            try:
                with engine.connect() as conn:
                    for c in todo:
                        stored = conn.execute(select(CHECKPOINTS.c.checkpoint_hash).where(
                            CHECKPOINTS.c.tenant_id == c.tenant, CHECKPOINTS.c.checkpoint_no == c.number)).scalar()
                        if stored == c.checkpoint_hash:
                            self._witness(c, database)
            except DBAPIError as exc:
                log.warning("审计检查点已提交，但未能确认并写入外部留存文件：%s", exc)

        def after_rollback(sess: Session) -> None:
            sess.info["yinsi_audit_pending_checkpoints"] = []

        event.listen(session, "after_commit", after_commit)
        event.listen(session, "after_rollback", after_rollback)

    def rotate_key(self, alg: str = SignAlg.ED25519) -> tuple[str, str]:
        """Replace the signing key of ``alg`` by a new one; returns ``(old key id, new key id)``.

        The new key endorses the old one (signs its record), so checkpoints signed before the rotation stay
        verifiable from the new key. The old key file is kept beside the new one as ``<name>.retired-<id>``.
        Other processes keep signing with the old key until restarted (which remains valid).
        Record the rotation in the chains concerned (action ``key_rotation``).
        """
        alg = SignAlg(alg).value
        old = self.signer(alg)
        new = generate(alg)
        endorsement = new.sign(canonical_json(endorsement_payload(old.key_id, old.alg, old.public_key, new.key_id)))

        def run(session: Session) -> None:
            if _dialect(session) == "sqlite":
                session.execute(update(KEYS).where(KEYS.c.key_id == old.key_id).values(algorithm=KEYS.c.algorithm))
            self._register_key(session, old)
            self._register_key(session, new)
            session.execute(update(KEYS).where(KEYS.c.key_id == old.key_id).values(
                endorsed_by=new.key_id, endorsement=endorsement))

        self._in_transaction(run)
        replace_key_file(self.key_files[alg], new, f"retired-{old.key_id[:12]}")
        with self._lock:
            self._signers[alg] = new
        return old.key_id, new.key_id

    # --- reading and verifying ----------------------------------------------------------------

    def chains(self) -> list[ChainInfo]:
        """Every chain (one per tenant), by tenant."""
        with self.session_factory() as session:
            return [chain_info(r) for r in session.execute(select(CHAINS).order_by(CHAINS.c.tenant_id)).all()]

    def chain(self, tenant: str) -> ChainInfo | None:
        with self.session_factory() as session:
            row = session.execute(select(CHAINS).where(CHAINS.c.tenant_id == tenant)).one_or_none()
            return chain_info(row) if row is not None else None

    def entries(self, tenant: str, *, after_seq: int = 0, limit: int | None = None) -> list[AuditEntry]:
        """Entries with seq > ``after_seq``, in order."""
        check_tenant(tenant)
        stmt = select(ENTRIES).where(ENTRIES.c.tenant_id == tenant, ENTRIES.c.seq > after_seq).order_by(ENTRIES.c.seq)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.session_factory() as session:
            return [row_to_entry(r) for r in session.execute(stmt).all()]

    def tail(self, tenant: str, limit: int = 20) -> list[AuditEntry]:
        """The newest ``limit`` entries, oldest first."""
        check_tenant(tenant)
        stmt = select(ENTRIES).where(ENTRIES.c.tenant_id == tenant).order_by(ENTRIES.c.seq.desc()).limit(limit)
        with self.session_factory() as session:
            return [row_to_entry(r) for r in reversed(session.execute(stmt).all())]

    def checkpoints(self, tenant: str) -> list[Checkpoint]:
        check_tenant(tenant)
        stmt = select(CHECKPOINTS).where(CHECKPOINTS.c.tenant_id == tenant).order_by(CHECKPOINTS.c.checkpoint_no)
        with self.session_factory() as session:
            return [row_to_checkpoint(r) for r in session.execute(stmt).all()]

    def prove(self, tenant: str, seq: int, checkpoint_no: int | None = None) -> InclusionProof:
        """An inclusion proof of entry ``seq`` in the given (default: the first covering) checkpoint."""
        check_tenant(tenant)
        with self.session_factory() as session:
            stmt = select(CHECKPOINTS).where(CHECKPOINTS.c.tenant_id == tenant)
            stmt = stmt.where(CHECKPOINTS.c.checkpoint_no == checkpoint_no) if checkpoint_no is not None else \
                stmt.where(CHECKPOINTS.c.upto_seq >= seq).order_by(CHECKPOINTS.c.upto_seq).limit(1)
            row = session.execute(stmt).one_or_none()
            if row is None or row.upto_seq < seq or seq < 1:
                raise AuditError(f"第 {seq} 条尚无覆盖它的检查点；请先运行：yinsi audit checkpoint --tenant {tenant}")
            h = hash_fn(row.hash_alg)
            hashes = self._entry_hashes(session, tenant, row.upto_seq)
            entry = row_to_entry(session.execute(select(ENTRIES).where(
                ENTRIES.c.tenant_id == tenant, ENTRIES.c.seq == seq)).one())
        leaves = [leaf_hash(h, bytes.fromhex(x)) for x in hashes]
        path = inclusion_proof(h, leaves, seq - 1)
        return InclusionProof(tenant, seq, hashes[seq - 1], row_to_checkpoint(row), tuple(p.hex() for p in path),
                              entry.payload())

    def _entry_hashes(self, session: Session, tenant: str, upto: int) -> list[str]:
        hashes = list(session.execute(select(ENTRIES.c.entry_hash).where(
            ENTRIES.c.tenant_id == tenant, ENTRIES.c.seq <= upto).order_by(ENTRIES.c.seq)).scalars().all())
        if len(hashes) != upto:
            raise AuditError(f"租户 {tenant} 的审计日志不完整，无法生成证明；请运行：yinsi audit verify --tenant {tenant}")
        return hashes

    def prove_consistency(self, tenant: str, first_size: int, second_size: int | None = None) -> ConsistencyProof:
        """A consistency proof (RFC 9162 §2.1.4) that the tree of the first ``second_size`` entries (default:
        the newest checkpoint's) extends the tree of the first ``first_size``: whoever kept the older
        checkpoint can check that nothing it covered was changed since. The checkpoints of those sizes, when
        there are any, come with the proof."""
        check_tenant(tenant)
        with self.session_factory() as session:
            head = session.execute(select(CHAINS).where(CHAINS.c.tenant_id == tenant)).one_or_none()
            if head is None:
                raise AuditError(f"租户 {tenant} 没有审计链")
            n = head.last_checkpoint_seq if second_size is None else second_size
            if not 1 <= first_size <= n <= head.last_seq:
                raise AuditError(f"无法给出从 {first_size} 条到 {n} 条的一致性证明：须满足 1 ≤ 起始 ≤ 结束 ≤ {head.last_seq}"
                                 "（结束默认为最近检查点覆盖的条数）")
            h = hash_fn(head.hash_alg)
            hashes = self._entry_hashes(session, tenant, n)
            cps = {r.upto_seq: row_to_checkpoint(r) for r in session.execute(select(CHECKPOINTS).where(
                CHECKPOINTS.c.tenant_id == tenant, CHECKPOINTS.c.upto_seq.in_([first_size, n]))).all()}
        leaves = [leaf_hash(h, bytes.fromhex(x)) for x in hashes]
        path = consistency_proof(h, leaves, first_size)
        return ConsistencyProof(tenant, head.hash_alg, first_size, n, root_of(h, leaves[:first_size]).hex(),
                                root_of(h, leaves).hex(), tuple(p.hex() for p in path), cps.get(first_size), cps.get(n))

    def tenants(self) -> list[str]:
        """Tenants with a chain, entries or checkpoints here, or with a checkpoint of this database on file."""
        with self.session_factory() as session:
            found = set(session.execute(select(CHAINS.c.tenant_id)).scalars())
            found |= set(session.execute(select(ENTRIES.c.tenant_id).distinct()).scalars())
            found |= set(session.execute(select(CHECKPOINTS.c.tenant_id).distinct()).scalars())
            database = _database_name(session)
        if self.witness is not None:
            with contextlib.suppress(AuditError, OSError):  # an unreadable or missing witness is reported by verify
                found |= {r.tenant for r in self.witness.read().values() if r.database == database}
        return sorted(found)

    def verify(self, tenant: str, *, trusted_keys: Iterable[str] = ()) -> VerifyResult:
        """Recompute the chain, the Merkle roots and the signatures of ``tenant``'s log, and compare with the
        witness.

        ``trusted_keys``: key ids to trust besides this host's own key files. Never raises for tampering: the
        result lists the problems, the first bad entry first, and warnings (no witness, witness missing, an
        old unsigned tail, signers known only from the database) that ``--strict`` treats as failures.
        """
        check_tenant(tenant)
        anchors = set(trusted_keys)
        local: set[str] = set()
        for alg, path in self.key_files.items():
            try:
                signer = self._signers.get(alg) or load_signer(alg, path, create=False)
            except AuditError as exc:  # e.g. no master key here to unwrap it: verify without local trust
                log.info("本机审计签名密钥不可用，按数据库中的密钥校验：%s", exc)
                signer = None
            if signer is not None:
                local.add(signer.key_id)
        with self.session_factory() as session:
            database = _database_name(session)
            witness: dict[str, WitnessRecord] | None = None
            witness_error: str | None = None
            witness_state = "not_configured"
            if self.witness is not None:
                try:
                    self._witness_store(database)
                    witness = self.witness.read()
                    witness_state = "configured"
                except WitnessMissing as exc:
                    witness_state, witness_error = "missing", str(exc)
                except (AuditError, OSError) as exc:
                    witness_state, witness_error = "unreadable", str(exc)
            return verify_chain(session, tenant, given_keys=anchors, local_keys=local, witness=witness,
                                witness_error=witness_error, witness_state=witness_state, database=database,
                                now=self._now(), max_tail_age=self._max_tail_age(),
                                check_timestamp=self.tsa.check if self.tsa is not None else None)

    def _max_tail_age(self) -> float | None:
        """How old an unsigned tail may be before ``verify`` warns: the time limit plus a minute's grace."""
        return self.checkpoint_seconds + 60 if self.checkpoint_seconds else None

    def verify_all(self, *, trusted_keys: Iterable[str] = ()) -> list[VerifyResult]:
        keys = list(trusted_keys)
        return [self.verify(t, trusted_keys=keys) for t in self.tenants()]

    def count(self, tenant: str) -> int:
        with self.session_factory() as session:
            return int(session.execute(select(func.count()).select_from(ENTRIES).where(
                ENTRIES.c.tenant_id == tenant)).scalar_one())



__all__ = ["AuditLog", "ChainInfo", "CheckpointTimer", "ConsistencyProof", "InclusionProof", "InvalidAuditEntry",
           "checkpoint_pending", "forget_pending"]
