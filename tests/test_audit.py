"""The audit log: entry format and hashing, Merkle trees, checkpoints and keys, the PI guard, the API."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from yinsi.audit import (
    AuditAction,
    AuditError,
    AuditKeyError,
    AuditLog,
    AuditRecord,
    ChainConfigConflict,
    InvalidAuditEntry,
    PIInAuditEntry,
    find_pi,
    proofcheck,
)
from yinsi.audit.hashing import hash_fn
from yinsi.audit.merkle import (
    Frontier,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from yinsi.audit.model import canonical_json, checkpoint_payload
from yinsi.audit.signing import generate, key_id_for, parse_private, verify_signature
from yinsi.audit.witness import WITNESS_FILE_NAME, FileWitness
from yinsi.storage import make_engine, make_session_factory, upgrade

pytestmark = pytest.mark.usefixtures("isolated_env")

T0 = datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)


class Clock:
    """A fixed clock that advances one second per reading."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{(tmp_path / 'audit.db').as_posix()}"
    upgrade(url)
    eng = make_engine(url)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def witness_dir(tmp_path: Path) -> Path:
    """A witness directory outside the data directory (as on another mount)."""
    d = tmp_path / "witness"
    d.mkdir()
    return d


@pytest.fixture
def witness(witness_dir: Path) -> FileWitness:
    return FileWitness(witness_dir, directory=True)


@pytest.fixture
def log(factory: sessionmaker[Session], witness: FileWitness) -> AuditLog:
    return AuditLog(factory, checkpoint_every=10, checkpoint_seconds=0, clock=Clock(), witness=witness)


# --- Merkle trees (RFC 6962) -----------------------------------------------------------------------

SHA256 = hash_fn("sha256")

# The test tree of RFC 6962's reference implementation (certificate-transparency merkle_tree_test.cc).
CT_INPUTS = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43", bytes(range(0x50, 0x58)),
             bytes(range(0x60, 0x70))]
CT_ROOTS = {
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}


def test_merkle_roots_match_the_rfc_6962_reference_vectors() -> None:
    leaves = [leaf_hash(SHA256, x) for x in CT_INPUTS]
    for n, root in CT_ROOTS.items():
        assert root_of(SHA256, leaves[:n]).hex() == root
        frontier = Frontier(SHA256)
        for leaf in leaves[:n]:
            frontier.append(leaf)
        assert frontier.root().hex() == root
    assert root_of(SHA256, []) == hashlib.sha256(b"").digest()


@settings(deadline=None)  # a slow shared machine must not fail a correct property
@given(st.integers(min_value=0, max_value=300))
def test_the_incremental_frontier_equals_the_recursive_definition(n: int) -> None:
    leaves = [leaf_hash(SHA256, i.to_bytes(4, "big")) for i in range(n)]
    frontier = Frontier(SHA256)
    for leaf in leaves:
        frontier.append(leaf)
    assert frontier.root() == root_of(SHA256, leaves)
    again = Frontier.from_text(SHA256, n, frontier.to_text())
    assert again.root() == frontier.root()


def test_inclusion_proofs_verify_and_wrong_ones_do_not() -> None:
    for n in range(1, 34):
        leaves = [leaf_hash(SHA256, bytes([i])) for i in range(n)]
        root = root_of(SHA256, leaves)
        for i in range(n):
            proof = inclusion_proof(SHA256, leaves, i)
            assert verify_inclusion(SHA256, leaves[i], i, n, proof, root)
            assert not verify_inclusion(SHA256, leaf_hash(SHA256, b"forged"), i, n, proof, root)
            if n > 1:
                assert not verify_inclusion(SHA256, leaves[i], (i + 1) % n, n, proof, root)


def test_consistency_proofs_verify_for_every_pair_of_sizes_and_reject_changes() -> None:
    leaves = [leaf_hash(SHA256, bytes([i])) for i in range(20)]
    for n in range(1, 21):
        new_root = root_of(SHA256, leaves[:n])
        for m in range(1, n + 1):
            old_root = root_of(SHA256, leaves[:m])
            proof = consistency_proof(SHA256, leaves[:n], m)
            assert verify_consistency(SHA256, m, n, proof, old_root, new_root), (m, n)
            assert proofcheck.consistency_ok(SHA256, m, n, proof, old_root, new_root), (m, n)
            assert not verify_consistency(SHA256, m, n, proof, new_root if m != n else b"x" * 32, new_root)
            if proof:
                bent = [bytes(32), *proof[1:]]
                assert not verify_consistency(SHA256, m, n, bent, old_root, new_root), (m, n)
            if m < n:  # a history that changed leaf 0 is not consistent with the old root
                changed = [leaf_hash(SHA256, b"forged"), *leaves[1:n]]
                forged = consistency_proof(SHA256, changed, m)
                assert not verify_consistency(SHA256, m, n, forged, old_root, root_of(SHA256, changed)), (m, n)
    assert not verify_consistency(SHA256, 0, 3, [], root_of(SHA256, []), root_of(SHA256, leaves[:3]))
    assert not verify_consistency(SHA256, 4, 3, [], root_of(SHA256, leaves[:4]), root_of(SHA256, leaves[:3]))


def test_consistency_proofs_between_checkpoints_of_a_chain(log: AuditLog) -> None:
    for i in range(25):
        log.append("t1", "a", "other", details={"i": i})
    proof = log.prove_consistency("t1", 10).to_dict()  # from checkpoint #1 to the newest (#2, 20 entries)
    assert (proof["first_size"], proof["second_size"]) == (10, 20)
    assert proof["first_checkpoint"]["root"] == proof["first_root"] and proof["second_checkpoint"]["checkpoint"] == 2
    assert proofcheck.check(proof) and proofcheck.check(proof, trusted_root=proof["first_root"])
    inclusion = log.prove("t1", 7).to_dict()
    assert proofcheck.check(inclusion) and inclusion["entry"]["details"] == {"i": 6}
    assert not proofcheck.check({**inclusion, "seq": 8}) and not proofcheck.check({"type": "nonsense"})
    with pytest.raises(AuditError):
        log.prove_consistency("t1", 21, 20)


def test_a_leaf_cannot_pass_for_an_interior_node() -> None:
    """Domain separation: the two-leaf root is not the leaf hash of the concatenated children."""
    a, b = leaf_hash(SHA256, b"a"), leaf_hash(SHA256, b"b")
    assert root_of(SHA256, [a, b]) != leaf_hash(SHA256, a + b)


# --- entries ---------------------------------------------------------------------------------------


def test_an_entry_hashes_its_canonical_json_including_the_previous_hash(factory: sessionmaker[Session]) -> None:
    log = AuditLog(factory, clock=lambda: T0)
    first = log.append("t1", "staff-7", "pi_access", target_subject="psn_8f3a", items=["contact.mobile"],
                       reason="核实订单收货信息", details={"ticket": "T-1", "次数": 1})
    second = log.append("t1", "system", AuditAction.CONSENT_CHANGE, details={"scope": "location"})
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == "0" * 64 and second.prev_hash == first.entry_hash
    assert first.time == T0 and log.entries("t1")[0].time == T0  # microseconds survive the database
    # an independent re-implementation of the documented format
    expected = json.dumps({
        "v": 1, "chain": "t1", "seq": 1, "time": "2026-03-01T08:30:15.123456Z", "actor": "staff-7",
        "action": "pi_access", "subject": "psn_8f3a", "items": ["contact.mobile"], "reason": "核实订单收货信息",
        "details": {"ticket": "T-1", "次数": 1}, "prev": "0" * 64,
    }, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    assert first.entry_hash == hashlib.sha256(expected).hexdigest()
    stored = log.entries("t1")
    assert [e.entry_hash for e in stored] == [first.entry_hash, second.entry_hash]
    assert stored[0].details == {"ticket": "T-1", "次数": 1} and stored[0].items == ("contact.mobile",)


def test_chains_are_per_tenant_and_isolated(log: AuditLog) -> None:
    log.append("t1", "a", "other")
    log.append("t2", "a", "other")
    log.append("t1", "a", "other")
    assert [e.seq for e in log.entries("t1")] == [1, 2]
    assert [e.seq for e in log.entries("t2")] == [1]
    assert {c.tenant for c in log.chains()} == {"t1", "t2"}
    assert log.verify("t1").ok and log.verify("t2").ok


def test_batch_append_is_ordered_gapless_and_atomic(log: AuditLog) -> None:
    records = [AuditRecord("staff-1", "export", items=["basic.name"], details={"n": i}) for i in range(25)]
    entries = log.append_many("t1", records)
    assert [e.seq for e in entries] == list(range(1, 26))
    with pytest.raises(PIInAuditEntry):
        log.append_many("t1", [AuditRecord("staff-1", "other"), AuditRecord("staff-1", "other", reason="13800138000")])
    assert log.chain("t1") is not None and log.chain("t1").last_seq == 25  # type: ignore[union-attr]
    assert log.verify("t1").ok


def test_invalid_entries_are_refused(log: AuditLog) -> None:
    with pytest.raises(InvalidAuditEntry, match="未知的审计操作类型"):
        log.append("t1", "staff-1", "delete_everything")
    with pytest.raises(InvalidAuditEntry, match="操作人"):
        log.append("t1", " ", "other")
    with pytest.raises(InvalidAuditEntry, match="过长"):
        log.append("t1", "x" * 129, "other")
    with pytest.raises(InvalidAuditEntry, match="JSON"):
        log.append("t1", "staff-1", "other", details={"when": datetime.now(UTC)})
    with pytest.raises(InvalidAuditEntry, match="个人信息项 ID"):
        log.append("t1", "staff-1", "other", items=["张三 的手机"])
    with pytest.raises(InvalidAuditEntry, match="租户"):
        log.append("", "staff-1", "other")
    assert log.chains() == []


# --- no PI in clear --------------------------------------------------------------------------------


@pytest.mark.parametrize("value, kind", [
    ("13800138000", "手机号码"),
    ("+86 138 0013 8000", "手机号码"),
    ("8613800138000", "手机号码"),
    ("138-0013-8000", "手机号码"),
    ("１３８００１３８０００", "手机号码"),  # full-width digits
    ("用户手机13912345678已核实", "手机号码"),
    ("u_13800138000", "手机号码"),
    ("11010519491231002X", "身份证号"),
    ("身份证 440524198001010013 复印件", "身份证号"),
    ("zhang.san@example.com", "电子邮箱"),
    ("联系 li@qq.com 处理", "电子邮箱"),
])
def test_obvious_pi_is_found(value: str, kind: str) -> None:
    assert find_pi(value) == kind


@pytest.mark.parametrize("value", [
    "202403011380013800012",  # an order number containing a phone-like run
    "1709280000000",  # a millisecond timestamp
    "11010519491231002Y",
    "110105194912310021",  # ID number with a wrong check digit
    "110105194913310029",  # ID number with an impossible birth date
    "a13800138000f",  # digits inside a hex string
    "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",
    "contact.mobile",
    "psn_8f3a9c",
    "12345678901",  # 11 digits but not a mobile prefix
])
def test_look_alikes_are_not_pi(value: str) -> None:
    assert find_pi(value) is None


@pytest.mark.parametrize("field, kwargs", [
    ("actor", {"actor": "13800138000"}),
    ("target_subject", {"target_subject": "zhang@example.com"}),
    ("reason", {"reason": "客户 13800138000 来电"}),
    ("details.caller", {"details": {"caller": "13800138000"}}),
    ("details.who[1].id", {"details": {"who": [{"id": "x"}, {"id": "11010519491231002X"}]}}),
    ("details.n", {"details": {"n": 13800138000}}),  # numbers too
    ("details 的键名", {"details": {"13800138000": True}}),  # keys too
    ("items", {"items": ["13800138000"]}),
])
def test_plaintext_pi_is_refused_everywhere_in_an_entry(log: AuditLog, field: str, kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"actor": "staff-1", "action": "pi_access", **kwargs}
    with pytest.raises(PIInAuditEntry) as info:
        log.append("t1", **args)  # type: ignore[arg-type]
    assert info.value.field.startswith(field)
    # the message names the field and the kind, never the value
    assert "13800138000" not in str(info.value) and "11010519491231002X" not in str(info.value)
    assert log.chains() == []


def test_the_database_holds_no_plaintext_identifiers_after_normal_use(log: AuditLog, engine: Engine) -> None:
    log.append("t1", "staff-1", "unmask", target_subject="psn_1", items=["contact.mobile", "identity.id_card"],
               reason="客户要求核对", details={"masked": "138****8000"})
    log.checkpoint("t1")
    dump = "\n".join(str(r) for table in ("audit_entries", "audit_chains", "audit_checkpoints", "audit_keys")
                     for r in engine.connect().execute(text(f"SELECT * FROM {table}")).all())
    assert "13800138000" not in dump and "138****8000" in dump


# --- checkpoints and keys --------------------------------------------------------------------------


def test_a_checkpoint_is_signed_every_n_entries_and_on_demand(log: AuditLog) -> None:
    for i in range(25):
        log.append("t1", "staff-1", "pi_access", details={"i": i})
    cps = log.checkpoints("t1")
    assert [(c.number, c.upto_seq) for c in cps] == [(1, 10), (2, 20)]
    made = log.checkpoint("t1")
    assert made is not None and (made.number, made.upto_seq, made.created) == (3, 25, True)
    again = log.checkpoint("t1")
    assert again is not None and (again.number, again.created) == (3, False)
    assert log.checkpoint("nobody") is None
    # the signature covers the documented payload and verifies with the stored key
    leaves = [leaf_hash(SHA256, bytes.fromhex(e.entry_hash)) for e in log.entries("t1")]
    assert made.root == root_of(SHA256, leaves).hex()
    assert made.prev_checkpoint_hash == cps[1].checkpoint_hash and made.tip_hash == log.entries("t1")[-1].entry_hash
    signer = log.signer("ed25519")
    data = canonical_json(checkpoint_payload("t1", made.chain_uid, 3, 25, made.root, made.tip_hash,
                                             made.prev_checkpoint_hash, "sha256", "ed25519", signer.key_id, made.time))
    assert verify_signature("ed25519", signer.public_key, data, made.signature)
    result = log.verify("t1")
    assert result.ok and (result.entries, result.checkpoints, result.last_checkpoint_seq) == (25, 3, 25)
    assert result.key_trust == "local" and result.witness == "checked"


def test_sm3_chains_with_sm2_checkpoints(log: AuditLog) -> None:
    log.create_chain("gm", hash_alg="sm3", sign_alg="sm2", checkpoint_every=3)
    entries = [log.append("gm", "staff-1", "pi_access", details={"i": i}) for i in range(4)]
    payload = canonical_json(entries[0].payload())
    from cryptography.hazmat.primitives import hashes

    digest = hashes.Hash(hashes.SM3())
    digest.update(payload)
    assert entries[0].entry_hash == digest.finalize().hex() != hashlib.sha256(payload).hexdigest()
    cp = log.checkpoints("gm")[0]
    assert (cp.hash_alg, cp.sign_alg, cp.upto_seq) == ("sm3", "sm2", 3)
    result = log.verify("gm")
    assert result.ok and (result.hash_alg, result.sign_alg) == ("sm3", "sm2")
    with pytest.raises(ChainConfigConflict):
        log.create_chain("gm", hash_alg="sha256")
    assert log.create_chain("gm").hash_alg == "sm3"


def test_sm2_signatures_verify_and_reject() -> None:
    signer = generate("sm2")
    sig = signer.sign(b"checkpoint")
    assert verify_signature("sm2", signer.public_key, b"checkpoint", sig)
    assert not verify_signature("sm2", signer.public_key, b"checkpoinT", sig)
    assert not verify_signature("sm2", signer.public_key, b"checkpoint", "00" * 64)
    assert not verify_signature("sm2", signer.public_key, b"checkpoint", "zz")
    assert not verify_signature("sm2", generate("sm2").public_key, b"checkpoint", sig)


def test_sm2_keys_whose_x_coordinate_starts_with_04_sign_and_verify() -> None:
    # d = 11 gives a public key 04 || 04b3cb…: gmssl's public_key.lstrip("04") used to strip the x
    # coordinate's leading digits too, so about one checkpoint key in 256 made unverifiable signatures.
    signer = parse_private("sm2", b"YINSI-AUDIT-SM2-PRIVATE-KEY\n" + f"{11:064x}".encode() + b"\n", "test")
    assert signer.public_key.startswith("04") and len(signer.public_key) == 128
    for message in (b"checkpoint", b"", "检查点".encode()):
        sig = signer.sign(message)
        assert verify_signature("sm2", signer.public_key, message, sig)
        assert not verify_signature("sm2", signer.public_key, message + b"!", sig)


def test_the_signing_key_file_is_created_once_with_mode_0600(log: AuditLog, factory: sessionmaker[Session],
                                                            isolated_env: Path) -> None:
    log.append("t1", "a", "other")
    assert not (isolated_env / "audit_signing.key").exists()  # first used to sign a checkpoint
    log.checkpoint("t1")
    key_file = isolated_env / "audit_signing.key"
    assert key_file.exists() and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    first = log.signer("ed25519").key_id
    assert AuditLog(factory).signer("ed25519").key_id == first  # reloaded, not regenerated
    assert first == key_id_for("ed25519", log.signer("ed25519").public_key)
    os.chmod(key_file, 0o644)
    with pytest.raises(AuditKeyError, match="chmod 600"):
        AuditLog(factory).signer("ed25519")


def test_the_key_file_location_comes_from_the_environment(factory: sessionmaker[Session], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YINSI_AUDIT_KEY_FILE", str(tmp_path / "keys" / "k.pem"))
    log = AuditLog(factory, checkpoint_every=1)
    log.append("t1", "a", "other")
    assert (tmp_path / "keys" / "k.pem").exists()


def test_a_rotated_key_keeps_old_checkpoints_verifiable(log: AuditLog, factory: sessionmaker[Session],
                                                         isolated_env: Path) -> None:
    for _ in range(12):
        log.append("t1", "a", "other")
    old, new = log.rotate_key()
    assert old != new and (isolated_env / f"audit_signing.key.retired-{old[:12]}").exists()
    for _ in range(10):
        log.append("t1", "a", "other")
    assert [c.key_id for c in log.checkpoints("t1")] == [old, new]
    fresh = AuditLog(factory)  # a new process: only the new key file is on disk
    assert fresh.signer("ed25519").key_id == new
    result = fresh.verify("t1")
    assert result.ok and result.key_trust == "local", result.problems


def test_a_host_that_never_signed_verifies_with_the_database_keys(log: AuditLog, factory: sessionmaker[Session],
                                                                 tmp_path: Path) -> None:
    for _ in range(10):
        log.append("t1", "a", "other")
    auditor = AuditLog(factory, key_file=tmp_path / "none.key", witness_file=tmp_path / "none.json")
    result = auditor.verify("t1")
    assert result.ok and result.key_trust == "database" and result.witness == "missing"
    assert {w.kind for w in result.warnings} == {"keys_from_database", "witness_missing"} and not result.confirmed
    assert not (tmp_path / "none.key").exists()  # verification never creates keys
    named = auditor.verify("t1", trusted_keys=[log.signer("ed25519").key_id])
    assert named.ok and named.key_trust == "given"
    wrong = auditor.verify("t1", trusted_keys=["0" * 32])
    assert not wrong.ok and wrong.first_problem is not None and wrong.first_problem.kind == "untrusted_key"


def test_inclusion_proof_of_an_entry_against_its_checkpoint(log: AuditLog) -> None:
    for i in range(23):
        log.append("t1", "a", "other", details={"i": i})
    proof = log.prove("t1", 17)
    assert proof.checkpoint.upto_seq == 20
    leaf = leaf_hash(SHA256, bytes.fromhex(proof.entry_hash))
    path = [bytes.fromhex(p) for p in proof.path]
    assert verify_inclusion(SHA256, leaf, 16, 20, path, bytes.fromhex(proof.checkpoint.root))
    with pytest.raises(Exception, match="检查点"):
        log.prove("t1", 22)


# --- transactions ----------------------------------------------------------------------------------


def test_append_in_commits_with_the_callers_transaction(log: AuditLog, factory: sessionmaker[Session],
                                                        witness_dir: Path) -> None:
    with factory() as session:
        log.append_in(session, "t1", "system", "consent_change", target_subject="psn_1", details={"scope": "a"})
        session.rollback()
    assert log.entries("t1") == []
    with factory() as session:
        for i in range(10):
            log.append_in(session, "t1", "system", "consent_change", details={"i": i})
        assert not (witness_dir / WITNESS_FILE_NAME).exists()  # not before the commit
        session.commit()
    assert [e.seq for e in log.entries("t1")] == list(range(1, 11))
    assert (witness_dir / WITNESS_FILE_NAME).exists()
    assert log.verify("t1").ok


def test_a_rolled_back_checkpoint_never_reaches_the_witness_file(log: AuditLog, factory: sessionmaker[Session],
                                                                  witness_dir: Path) -> None:
    with factory() as session:
        for i in range(10):
            log.append_in(session, "t1", "system", "other", details={"i": i})
        session.rollback()
        session.commit()
    assert not (witness_dir / WITNESS_FILE_NAME).exists()
    log.append("t1", "a", "other")
    assert log.verify("t1").ok
