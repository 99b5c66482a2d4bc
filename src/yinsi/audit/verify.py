"""Verification of one tenant's chain (审计日志校验): what is checked and what each finding means.

1. Every entry is re-hashed from its stored fields and must equal its ``entry_hash``; its ``prev_hash``
   must equal the previous entry's hash (64 zeros for entry 1); seqs must run 1, 2, 3… without gaps.
2. The Merkle root of the re-hashed entries 1..upto_seq must equal the root of each checkpoint, whose
   signature must verify with a known, trusted key; checkpoints are numbered 1, 2, 3… and each names the
   hash of the one before.
3. The head row must agree with the last entry and the last checkpoint; no entry or checkpoint may lie
   beyond it.
4. The newest checkpoint recorded outside the database (the witness) must still be there, unchanged; a
   chain the witness knew in this database must not have been replaced.

Besides problems (tampering or damage), the result carries warnings: what could not be confirmed. No
witness configured, the witness gone, a chain with checkpoints the witness never saw, an unsigned tail
older than the checkpoint time limit (entries a writer would have checkpointed by now: appended behind
Yinsi's back, or a writer that died), signers known only from the database. ``--strict`` fails on them.

Concurrent appends are tolerated: the head is read first, only entries and checkpoints up to it are
checked, and anything beyond it must be accounted for by the head re-read at the end (an append writes
its entries and the head in one transaction).

When an entry does not hash to its stored hash, the verifier tells a moved entry from a modified one: if
the entry hashes correctly under the seq before (after) its own, an entry was inserted (deleted) and the
rest renumbered; if it hashes correctly under the seq after the entry its ``prev_hash`` names, entries
were swapped.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from yinsi.audit.errors import AuditError
from yinsi.audit.hashing import GENESIS_HASH, HashAlg, HashFn, hash_fn
from yinsi.audit.merkle import Frontier, leaf_hash
from yinsi.audit.model import canonical_json, checkpoint_payload, endorsement_payload, entry_payload
from yinsi.audit.signing import SignAlg, key_id_for, verify_signature
from yinsi.audit.store import CHAINS, CHECKPOINTS, ENTRIES, KEYS, iter_entry_rows
from yinsi.audit.witness import WitnessRecord

MAX_PROBLEMS = 100
MAX_LOOKUPS = 20


@dataclass(frozen=True)
class Problem:
    """One finding. ``seq`` is the first entry it concerns (``None`` when it concerns no entry)."""

    kind: str
    message: str
    seq: int | None = None
    checkpoint: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "checkpoint": self.checkpoint, "message": self.message}


#: Finding kinds (JSON ``kind``), for people and machines.
KINDS: dict[str, str] = {
    "modified": "记录内容被修改",
    "rewritten": "记录被改写并重算哈希",
    "deleted": "记录被删除",
    "inserted": "插入了伪造记录",
    "reordered": "记录顺序被调换",
    "truncated": "日志末尾被截断",
    "checkpoint_missing": "检查点被删除",
    "checkpoint_mismatch": "检查点与记录不符",
    "bad_signature": "检查点签名无效",
    "untrusted_key": "检查点由不受信任的密钥签名",
    "unknown_key": "检查点的签名密钥缺失或被替换",
    "head_mismatch": "链头记录与日志不符",
    "head_missing": "链头记录缺失",
    "chain_missing": "审计链被删除或替换",
    "witness_unreadable": "外部见证无法读取",
    "timestamp_invalid": "可信时间戳与检查点不符",
}

#: Warning kinds: nothing found wrong, but something could not be confirmed (``--strict`` fails on them).
WARNING_KINDS: dict[str, str] = {
    "witness_not_configured": "未配置外部见证",
    "witness_missing": "外部见证不存在",
    "witness_no_record": "外部见证中没有该链的检查点",
    "unchecked_tail": "末尾记录长时间没有检查点",
    "keys_from_database": "签名者身份仅取自数据库",
}


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of verifying one chain; ``ok`` when there is no problem."""

    tenant: str
    ok: bool
    entries: int
    last_seq: int
    checkpoints: int
    last_checkpoint_seq: int
    hash_alg: str | None
    sign_alg: str | None
    #: How signers were trusted: ``local`` (this host's key file signed here), ``given`` (``trusted_keys``),
    #: ``database`` (no anchor: any well-formed key in the database; proves integrity only against someone
    #: who cannot also write keys), ``none`` (no checkpoint to check).
    key_trust: str
    #: ``checked`` (the witness holds a checkpoint of this chain and it matched or was reported),
    #: ``no_record`` (it holds none although the chain has checkpoints), ``none`` (nothing to witness yet),
    #: ``not_configured``, ``missing`` (configured but gone), ``unreadable``.
    witness: str
    problems: tuple[Problem, ...] = ()
    #: Consequential findings (cascades of a problem already listed) left out of ``problems``.
    suppressed: int = 0
    #: What could not be confirmed (``WARNING_KINDS``); ``ok`` stays true, ``--strict`` fails.
    warnings: tuple[Problem, ...] = ()

    @property
    def confirmed(self) -> bool:
        """Intact and nothing left unconfirmed (what ``verify --strict`` requires)."""
        return self.ok and not self.warnings

    @property
    def first_problem(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def to_dict(self) -> dict[str, Any]:
        first = self.first_problem
        return {
            "tenant": self.tenant, "ok": self.ok, "entries": self.entries, "last_seq": self.last_seq,
            "checkpoints": self.checkpoints, "last_checkpoint_seq": self.last_checkpoint_seq,
            "hash_alg": self.hash_alg, "sign_alg": self.sign_alg, "key_trust": self.key_trust,
            "witness": self.witness, "first_problem": first.to_dict() if first else None,
            "problems": [p.to_dict() for p in self.problems], "suppressed": self.suppressed,
            "warnings": [w.to_dict() for w in self.warnings],
        }

    def describe(self) -> str:
        """One paragraph in Chinese for people."""
        algs = ""
        if self.hash_alg:
            algs = f"哈希 {HashAlg(self.hash_alg).label}"
            if self.sign_alg:
                algs += f"，签名 {SignAlg(self.sign_alg).label}"
        if self.ok:
            if self.entries == 0:
                return f"租户 {self.tenant}：审计日志为空。"
            cp = (f"{self.checkpoints} 个检查点（最近一个覆盖至第 {self.last_checkpoint_seq} 条，签名有效）"
                  if self.checkpoints else "尚无检查点")
            return f"租户 {self.tenant}：审计日志完整。共 {self.entries} 条记录，{cp}；{algs}。"
        first = self.first_problem
        assert first is not None
        where = f"（第 {first.seq} 条）" if first.seq is not None else ""
        return f"租户 {self.tenant}：审计日志已被篡改或损坏。首个问题{where}：{first.message}"


@dataclass
class _State:
    problems: list[Problem] = field(default_factory=list)
    suppressed: int = 0
    warnings: list[Problem] = field(default_factory=list)

    def warn(self, kind: str, message: str, seq: int | None = None, checkpoint: int | None = None) -> None:
        self.warnings.append(Problem(kind, message, seq, checkpoint))

    def add(self, kind: str, message: str, seq: int | None = None, checkpoint: int | None = None) -> None:
        if len(self.problems) >= MAX_PROBLEMS:
            self.suppressed += 1
        else:
            self.problems.append(Problem(kind, message, seq, checkpoint))


def _entry_digest(h: HashFn, row: Row[Any], seq: int) -> bytes:
    """H(canonical payload) of a stored row, as if it were at ``seq``. Raises ``ValueError`` if unparsable."""
    items = json.loads(row.items)
    details = json.loads(row.details)
    if not isinstance(items, list) or not isinstance(details, dict) or row.recorded_at is None:
        raise ValueError("malformed entry")
    payload = entry_payload(row.tenant_id, seq, row.recorded_at, row.actor, row.action, row.subject, items,
                            row.reason, details, row.prev_hash)
    return h(canonical_json(payload))


def _checkpoint_data(row: Row[Any]) -> bytes:
    return canonical_json(checkpoint_payload(row.tenant_id, row.chain_uid, row.checkpoint_no, row.upto_seq, row.root,
                                             row.tip_hash, row.prev_checkpoint_hash, row.hash_alg, row.sign_alg,
                                             row.key_id, row.created_at))


def _trusted_keys(keys: dict[str, Row[Any]], given: set[str], local: set[str]) -> tuple[set[str], str]:
    """Key ids trusted to sign checkpoints, and how (see ``VerifyResult.key_trust``)."""
    valid = {k: r for k, r in keys.items() if key_id_for(r.algorithm, r.public_key) == k}
    anchors = (given | local) & set(valid)
    if given:
        mode = "given"
    elif anchors:
        mode = "local"
    else:  # this host never signed here and nobody named a key: the database is all there is
        return set(valid), "database"
    trusted = set(anchors)
    changed = True
    while changed:  # a key endorsed by a trusted successor (a rotation) is trusted
        changed = False
        for kid, r in valid.items():
            if kid in trusted or r.endorsed_by not in trusted or not r.endorsement:
                continue
            successor = valid[r.endorsed_by]
            data = canonical_json(endorsement_payload(kid, r.algorithm, r.public_key, successor.key_id))
            if verify_signature(successor.algorithm, successor.public_key, data, r.endorsement):
                trusted.add(kid)
                changed = True
    return trusted, mode


def _detect_hash_alg(session: Session, tenant: str) -> str:
    first = session.execute(select(ENTRIES).where(ENTRIES.c.tenant_id == tenant).order_by(ENTRIES.c.seq).limit(1)).first()
    if first is not None:
        for alg in HashAlg:
            try:
                if _entry_digest(hash_fn(alg), first, first.seq).hex() == first.entry_hash:
                    return alg.value
            except ValueError:
                break
    return HashAlg.SHA256.value


class _Verifier:
    def __init__(self, session: Session, tenant: str, *, given_keys: set[str], local_keys: set[str],
                 witness: dict[str, WitnessRecord] | None, witness_error: str | None, witness_state: str,
                 database: str, now: datetime | None, max_tail_age: float | None,
                 check_timestamp: Callable[[bytes, bytes], datetime] | None = None) -> None:
        self.session = session
        self.tenant = tenant
        self.given = given_keys
        self.local = local_keys
        self.witness = witness
        self.witness_error = witness_error
        self.witness_state = witness_state
        self.database = database
        self.now = now
        self.max_tail_age = max_tail_age
        self.check_timestamp = check_timestamp
        self.first_unsigned: tuple[int, datetime] | None = None
        self.s = _State()
        self.lookups = 0

    def run(self) -> VerifyResult:
        session, tenant, s = self.session, self.tenant, self.s
        head = session.execute(select(CHAINS).where(CHAINS.c.tenant_id == tenant)).one_or_none()
        cps = list(session.execute(select(CHECKPOINTS).where(CHECKPOINTS.c.tenant_id == tenant)
                                   .order_by(CHECKPOINTS.c.checkpoint_no)).all())
        if head is not None:  # checkpoints made after the head was read are checked by a later run
            cps = [c for c in cps if c.checkpoint_no <= head.last_checkpoint_no or c.upto_seq <= head.last_seq]
        keys = {r.key_id: r for r in session.execute(select(KEYS)).all()}
        hash_alg = head.hash_alg if head is not None else cps[0].hash_alg if cps else _detect_hash_alg(session, tenant)
        sign_alg = head.sign_alg if head is not None else cps[0].sign_alg if cps else None
        try:
            h = hash_fn(hash_alg)
        except ValueError:
            s.add("head_mismatch", f"链头记录中的哈希算法 {hash_alg!r} 未知（链头被篡改）")
            return self._result(head, 0, 0, [], hash_alg, sign_alg, "none", "none")
        trusted, trust_mode = _trusted_keys(keys, self.given, self.local)

        self._check_checkpoints(head, cps, keys, trusted, trust_mode)
        count, last_seq, last_hash, matched = self._check_entries(h, head, cps)
        self._check_head(head, cps, count, last_seq, last_hash, matched)
        witness_state = self._check_witness(head, cps, last_seq)
        self._check_tail(last_seq)
        if cps and trust_mode == "database":
            s.warn("keys_from_database", "本机没有参与签名的密钥，也未用 --trust-key 指定：签名者身份取自数据库中的密钥表，"
                   "能写数据库的人可以换上自己的密钥")
        return self._result(head, count, last_seq, cps, hash_alg, sign_alg,
                            trust_mode if cps else "none", witness_state)

    def _check_tail(self, last_seq: int) -> None:
        """Warn about an unsigned tail older than the checkpoint time limit."""
        if self.first_unsigned is None or self.now is None or not self.max_tail_age:
            return
        seq, at = self.first_unsigned
        age = (self.now - at).total_seconds()
        if age > self.max_tail_age:
            rng = f"第 {seq} 条" if seq == last_seq else f"第 {seq} 至第 {last_seq} 条"
            self.s.warn("unchecked_tail", f"{rng}没有检查点，其中最早的一条已有 {int(age)} 秒"
                        f"（写入者应在 {int(self.max_tail_age - 60)} 秒内签名）：可能是绕过 Yinsi 追加的记录，"
                        "或写入进程中途退出；这些记录只受哈希链保护。请运行：yinsi audit checkpoint 后再核对来源", seq)

    def _result(self, head: Row[Any] | None, count: int, last_seq: int, cps: list[Row[Any]], hash_alg: str | None,
                sign_alg: str | None, trust: str, witness: str) -> VerifyResult:
        problems = sorted(self.s.problems, key=lambda p: (p.seq is None, p.seq or 0))
        return VerifyResult(
            tenant=self.tenant, ok=not problems, entries=count, last_seq=last_seq, checkpoints=len(cps),
            last_checkpoint_seq=max((c.upto_seq for c in cps), default=0), hash_alg=hash_alg, sign_alg=sign_alg,
            key_trust=trust, witness=witness, problems=tuple(problems), suppressed=self.s.suppressed,
            warnings=tuple(self.s.warnings))

    # -- checkpoints on their own: numbering, links, keys, signatures --------------------------------

    def _check_checkpoints(self, head: Row[Any] | None, cps: list[Row[Any]], keys: dict[str, Row[Any]],
                           trusted: set[str], trust_mode: str) -> None:
        s = self.s
        expected_no, prev_hash, prev_upto = 1, None, 0
        for cp in cps:
            no, start = cp.checkpoint_no, prev_upto + 1
            if no != expected_no:
                gone = f"#{expected_no}" if no == expected_no + 1 else f"#{expected_no} 至 #{no - 1}"
                s.add("checkpoint_missing", f"检查点 {gone} 缺失（被删除）", start, expected_no)
                prev_hash = None
            elif cp.prev_checkpoint_hash != prev_hash:
                s.add("checkpoint_mismatch", f"检查点 #{no} 与前一个检查点的链接不符（检查点被替换或插入）", start, no)
            if cp.upto_seq <= prev_upto:
                s.add("checkpoint_mismatch", f"检查点 #{no} 覆盖的范围（至第 {cp.upto_seq} 条）不在前一个检查点之后", start, no)
            if head is not None and (cp.chain_uid, cp.hash_alg, cp.sign_alg) != (head.chain_uid, head.hash_alg, head.sign_alg):
                s.add("checkpoint_mismatch", f"检查点 #{no} 属于另一条审计链或使用了其他算法", start, no)
            data = _checkpoint_data(cp)
            key = keys.get(cp.key_id)
            if key is None:
                s.add("unknown_key", f"检查点 #{no} 的签名密钥 {cp.key_id} 不在密钥表中（被删除）", start, no)
            elif key_id_for(key.algorithm, key.public_key) != cp.key_id or key.algorithm != cp.sign_alg:
                s.add("unknown_key", f"密钥表中签名密钥 {cp.key_id} 的公钥或算法被替换（检查点 #{no}）", start, no)
            elif not verify_signature(cp.sign_alg, key.public_key, data, cp.signature):
                s.add("bad_signature", f"检查点 #{no}（覆盖至第 {cp.upto_seq} 条）的签名无效：检查点被伪造或改动", start, no)
            elif cp.key_id not in trusted:
                anchor = "本机签名密钥" if trust_mode == "local" else "指定的受信任密钥"
                s.add("untrusted_key", f"检查点 #{no} 由不受信任的密钥 {cp.key_id} 签名（既非{anchor}，也未经其背书）",
                      start, no)
            if hash_fn(cp.hash_alg)(data).hex() != cp.checkpoint_hash:
                s.add("checkpoint_mismatch", f"检查点 #{no} 的检查点哈希与其内容不符（被改动）", start, no)
            expected_no, prev_hash, prev_upto = no + 1, cp.checkpoint_hash, max(prev_upto, cp.upto_seq)

    # -- entries: hashes, links, seqs, Merkle roots ---------------------------------------------------

    def _check_entries(self, h: HashFn, head: Row[Any] | None,
                       cps: list[Row[Any]]) -> tuple[int, int, str, set[int]]:
        s = self.s
        cp_at = {c.upto_seq: c for c in cps}
        cp_start: dict[int, int] = {}
        prev_upto = 0
        for c in cps:
            cp_start[c.checkpoint_no] = prev_upto + 1
            prev_upto = max(prev_upto, c.upto_seq)
        frontier = Frontier(h)
        expected, prev_stored, count = 1, GENESIS_HASH, 0
        last_problem_seq = 0
        shift: int | None = None  # offset of the previous moved entry (a renumbering cascades)
        prev_kind: str | None = None
        diverged = False  # a root mismatch or entry problem already explains later root mismatches
        matched: set[int] = set()
        upto = head.last_seq if head is not None else None
        signed_upto = prev_upto
        for row in iter_entry_rows(self.session, self.tenant, upto=upto):
            seq = row.seq
            count += 1
            if seq > signed_upto and self.first_unsigned is None and row.recorded_at is not None:
                self.first_unsigned = (seq, row.recorded_at)
            problem_here = False
            if seq != expected:
                missing = f"第 {expected} 条" if seq == expected + 1 else f"第 {expected} 至第 {seq - 1} 条"
                s.add("deleted", f"{missing}缺失（被删除）", expected)
                problem_here = diverged = True
                shift = prev_kind = None
            try:
                digest = _entry_digest(h, row, seq)
            except (ValueError, TypeError):
                s.add("modified", f"第 {seq} 条的内容无法解析（被改动）", seq)
                digest = b""
                problem_here = diverged = True
            if digest and digest.hex() != row.entry_hash:
                kind, d = self._classify(h, row, prev_kind, shift)
                if (kind, d) == (prev_kind, shift) or (kind, d) == ("swapped", -1):
                    s.suppressed += 1  # the same renumbering as the entry before, or a swap's second half
                else:
                    self._report_mismatch(row.seq, kind, d)
                shift, prev_kind = d, kind
                problem_here = diverged = True
            else:
                shift, prev_kind = None, None
                if row.prev_hash != prev_stored and not problem_here and last_problem_seq != seq - 1:
                    s.add("rewritten", f"第 {seq - 1} 条被改写并重算了哈希：第 {seq} 条记下的前一条哈希与之不符"
                          if seq > 1 else "第 1 条的前一条哈希不是初始值（被改写）", max(seq - 1, 1))
                    problem_here = diverged = True
            if problem_here:
                last_problem_seq = seq
            frontier.append(leaf_hash(h, digest or bytes.fromhex(row.entry_hash)))
            cp = cp_at.get(seq)
            if cp is not None:
                matched.add(cp.checkpoint_no)
                if frontier.root().hex() != cp.root or (digest and digest.hex() != cp.tip_hash):
                    if diverged:
                        s.suppressed += 1
                    else:
                        start = cp_start[cp.checkpoint_no]
                        s.add("checkpoint_mismatch",
                              f"第 {start} 至第 {seq} 条与检查点 #{cp.checkpoint_no} 的默克尔根不符：这段记录被改写"
                              "（连同哈希一起重算），或检查点被改动", start, cp.checkpoint_no)
                        diverged = True
            prev_stored, expected = row.entry_hash, seq + 1
        return count, expected - 1, prev_stored, matched

    def _lookup(self, entry_hash: str) -> int | None:
        """The seq of the entry stored with ``entry_hash`` (a scan; bounded in number per run)."""
        if self.lookups >= MAX_LOOKUPS or entry_hash == GENESIS_HASH:
            return 0 if entry_hash == GENESIS_HASH else None
        self.lookups += 1
        found = self.session.execute(select(ENTRIES.c.seq).where(
            ENTRIES.c.tenant_id == self.tenant, ENTRIES.c.entry_hash == entry_hash).limit(1)).scalar()
        return int(found) if found is not None else None

    def _classify(self, h: HashFn, row: Row[Any], prev_kind: str | None, prev_shift: int | None) -> tuple[str, int | None]:
        """Why an entry does not hash to its stored hash: ``(kind, offset)`` where the entry hashes correctly
        at ``seq + offset`` (it was moved), or ``("modified", None)``."""
        seq = row.seq
        d: int | None = None
        for cand in (-1, 1):
            if seq + cand >= 1 and _entry_digest(h, row, seq + cand).hex() == row.entry_hash:
                d = cand
                break
        if d == 1:
            if prev_kind == "deleted" and prev_shift == 1:
                return "deleted", 1
            # an adjacent swap also looks like this, but then the entry this one follows is still there, just after it
            return ("swapped", 1) if self._lookup(row.prev_hash) == seq + 1 else ("deleted", 1)
        if d == -1:
            return ("swapped", -1) if (prev_kind, prev_shift) == ("swapped", 1) else ("inserted", -1)
        j = self._lookup(row.prev_hash)
        if j is not None and j + 1 != seq and _entry_digest(h, row, j + 1).hex() == row.entry_hash:
            return "reordered", j + 1 - seq
        return "modified", None

    def _report_mismatch(self, seq: int, kind: str, d: int | None) -> None:
        add = self.s.add
        if kind == "inserted":
            add("inserted", f"第 {seq - 1} 条是插入的伪造记录：原第 {seq - 1} 条起的记录序号都被后移了一位", seq - 1)
        elif kind == "deleted":
            add("deleted", f"原第 {seq} 条被删除，其后的记录序号都被前移了一位", seq)
        elif kind == "swapped":
            add("reordered", f"第 {seq} 条与第 {seq + 1} 条的位置被调换", seq)
        elif kind == "reordered" and d is not None:
            add("reordered", f"第 {seq} 条的位置被调换：其内容原为第 {seq + d} 条", seq)
        else:
            add("modified", f"第 {seq} 条的内容被修改（重算的哈希与记录的哈希不符）", seq)

    # -- the head row ------------------------------------------------------------------------------

    def _check_head(self, head: Row[Any] | None, cps: list[Row[Any]], count: int, last_seq: int, last_hash: str,
                    matched: set[int]) -> None:
        s, session, tenant = self.s, self.session, self.tenant
        if head is None:
            if count or cps:
                s.add("head_missing", "链头记录缺失（audit_chains 中没有该租户的记录）：链头被删除")
            return
        reported_tail = False
        in_scope = [c for c in cps if c.checkpoint_no <= head.last_checkpoint_no]
        if last_seq < head.last_seq:
            gone = f"第 {last_seq + 1} 条" if last_seq + 1 == head.last_seq else f"第 {last_seq + 1} 至第 {head.last_seq} 条"
            beyond = [c for c in in_scope if c.upto_seq > last_seq]
            signed = f"，检查点 #{beyond[-1].checkpoint_no} 签名覆盖至第 {beyond[-1].upto_seq} 条" if beyond else ""
            s.add("truncated", f"{gone}缺失：日志末尾被截断（链头记录显示共 {head.last_seq} 条{signed}）", last_seq + 1,
                  beyond[0].checkpoint_no if beyond else None)
            reported_tail = True
        elif head.last_seq and last_hash != head.last_hash:
            s.add("head_mismatch", f"第 {last_seq} 条的哈希与链头记录不符（被改写）", last_seq)
        # Entries and checkpoints beyond the head read at the start: legitimate only if the head now covers them.
        max_seq = session.execute(select(func.max(ENTRIES.c.seq)).where(ENTRIES.c.tenant_id == tenant)).scalar() or 0
        max_cp = session.execute(select(func.max(CHECKPOINTS.c.checkpoint_no)).where(
            CHECKPOINTS.c.tenant_id == tenant)).scalar() or 0
        now = session.execute(select(CHAINS).where(CHAINS.c.tenant_id == tenant)).one_or_none()
        now_seq = now.last_seq if now is not None else head.last_seq
        now_cp = now.last_checkpoint_no if now is not None else head.last_checkpoint_no
        if max_seq > now_seq:
            s.add("inserted", f"第 {now_seq + 1} 条起的记录不在链头记录之内（伪造的追加）", now_seq + 1)
        if max_cp > now_cp:
            s.add("inserted", f"检查点 #{now_cp + 1} 起不在链头记录之内（伪造的检查点）", None, now_cp + 1)
        last_no = max((c.checkpoint_no for c in in_scope), default=0)
        covered = max((c.upto_seq for c in in_scope), default=0)
        if last_no < head.last_checkpoint_no:
            gone = f"#{last_no + 1}"
            if last_no + 1 != head.last_checkpoint_no:
                gone += f" 至 #{head.last_checkpoint_no}"
            s.add("checkpoint_missing", f"检查点 {gone} 缺失（被删除；链头记录显示最近的检查点覆盖至第 "
                  f"{head.last_checkpoint_seq} 条）", min(covered + 1, last_seq + 1), last_no + 1)
        elif in_scope and max(in_scope, key=lambda c: c.checkpoint_no).checkpoint_hash != head.last_checkpoint_hash:
            s.add("head_mismatch", f"检查点 #{last_no} 与链头记录不符（被替换）", None, last_no)
        for c in in_scope:
            if c.checkpoint_no in matched:
                continue
            if c.upto_seq > last_seq:
                if not reported_tail:
                    s.add("truncated", f"检查点 #{c.checkpoint_no} 覆盖至第 {c.upto_seq} 条，但日志只到第 {last_seq} 条："
                          "日志末尾被截断", last_seq + 1, c.checkpoint_no)
                    reported_tail = True
                else:
                    s.suppressed += 1
            else:
                s.suppressed += 1  # its last entry is missing: reported as a deletion already

    # -- the witness file --------------------------------------------------------------------------

    def _check_timestamp(self, rec: WitnessRecord, cp: Row[Any]) -> None:
        assert self.check_timestamp is not None and rec.timestamp is not None
        try:
            self.check_timestamp(base64.b64decode(rec.timestamp, validate=True), _checkpoint_data(cp))
        except (AuditError, ValueError, binascii.Error) as exc:
            self.s.add("timestamp_invalid", f"检查点 #{rec.checkpoint_no} 的可信时间戳无效或与检查点不符：{exc}",
                       cp.upto_seq, rec.checkpoint_no)

    def _check_witness(self, head: Row[Any] | None, cps: list[Row[Any]], last_seq: int) -> str:
        s = self.s
        if self.witness_state == "unreadable":
            s.add("witness_unreadable", f"无法核对日志的高水位：{self.witness_error}")
            return "unreadable"
        if self.witness_state == "missing":
            s.warn("witness_missing", f"{self.witness_error}：无法核对日志是否被截断、检查点是否被删除、整条链是否被替换"
                   "（能写数据库的人可以做到这些而不被发现）")
            return "missing"
        if self.witness is None:
            if cps or last_seq:
                s.warn("witness_not_configured", "未配置外部见证（YINSI_AUDIT_WITNESS）：无法核对日志是否被截断、"
                       "检查点是否被删除、整条链是否被替换（能写数据库的人可以做到这些而不被发现）")
            return "not_configured"
        uid = head.chain_uid if head is not None else None
        state = "none"
        for rec in self.witness.values():
            if rec.chain_uid == uid:
                state = "checked"
                cp = next((c for c in cps if c.checkpoint_no == rec.checkpoint_no), None)
                if cp is None:
                    s.add("truncated", f"外部见证的检查点 #{rec.checkpoint_no}（覆盖至第 {rec.upto_seq} 条）在数据库中已不存在："
                          "日志被截断或检查点被删除", min(rec.upto_seq, last_seq + 1), rec.checkpoint_no)
                elif cp.checkpoint_hash != rec.checkpoint_hash or cp.root != rec.root or cp.upto_seq != rec.upto_seq:
                    s.add("checkpoint_mismatch", f"检查点 #{rec.checkpoint_no} 与外部见证的不同：检查点被替换",
                          min(rec.upto_seq, cp.upto_seq), rec.checkpoint_no)
                elif rec.timestamp and self.check_timestamp is not None:
                    self._check_timestamp(rec, cp)
            elif rec.tenant == self.tenant and rec.database == self.database:
                state = "checked"
                what = "已被删除" if head is None else "已被替换"
                s.add("chain_missing", f"外部见证记录了本库中该租户的审计链 {rec.chain_uid}（检查点 #{rec.checkpoint_no}，"
                      f"覆盖至第 {rec.upto_seq} 条），该链{what}", 1, rec.checkpoint_no)
        if state == "none" and cps:
            s.warn("witness_no_record", f"外部见证中没有这条链的检查点（数据库中有 {len(cps)} 个）："
                   "见证被清除，或签名时未能写入见证")
            return "no_record"
        return state


def verify_chain(session: Session, tenant: str, *, given_keys: Iterable[str] = (), local_keys: Iterable[str] = (),
                 witness: dict[str, WitnessRecord] | None = None, witness_error: str | None = None,
                 witness_state: str | None = None, database: str = "", now: datetime | None = None,
                 max_tail_age: float | None = None,
                 check_timestamp: Callable[[bytes, bytes], datetime] | None = None) -> VerifyResult:
    """Verify ``tenant``'s chain in the database of ``session`` (read only).

    ``witness_state``: ``configured`` (``witness`` holds the records read), ``not_configured``, ``missing``
    or ``unreadable`` (``witness_error`` says why). ``now`` and ``max_tail_age`` (seconds): warn about an
    unsigned tail older than that."""
    if witness_state is None:
        witness_state = "unreadable" if witness_error else "configured" if witness is not None else "not_configured"
    return _Verifier(session, tenant, given_keys=set(given_keys), local_keys=set(local_keys), witness=witness,
                     witness_error=witness_error, witness_state=witness_state, database=database, now=now,
                     max_tail_age=max_tail_age, check_timestamp=check_timestamp).run()
