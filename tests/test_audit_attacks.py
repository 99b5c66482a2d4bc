"""Attacks on the audit log by someone who owns Yinsi's database (and may read its data directory).

Each test is an attack from issue 11 played as a database owner would: through the ``yinsi`` commands an
operator runs and raw writes to the tables, recomputing hashes wherever the format is public. The
defences: checkpoints at the end of every command and by time, a witness outside the data directory,
database locations compared canonically, and a signing key the database owner cannot read.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, insert, select, update
from typer.testing import CliRunner

from tests.test_audit_cli import MASTER_ENV, StaffTemplate, staff_template, use_template
from yinsi.audit import AuditError, AuditKeyError, AuditLog
from yinsi.audit.hashing import hash_fn
from yinsi.audit.location import canonical_database
from yinsi.audit.merkle import Frontier, leaf_hash, root_of
from yinsi.audit.model import canonical_json, checkpoint_payload, entry_payload
from yinsi.audit.signing import generate, parse_private
from yinsi.audit.store import CHAINS, CHECKPOINTS, ENTRIES, KEYS
from yinsi.cli.main import app
from yinsi.storage import make_engine, make_session_factory, upgrade

pytestmark = pytest.mark.usefixtures("isolated_env")

runner = CliRunner()
H = hash_fn("sha256")
T = "acme"


# --- the operator's side ---------------------------------------------------------------------------


@pytest.fixture
def witness_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The witness on "another mount": a directory outside the data directory."""
    d = tmp_path / "witness-mount"
    d.mkdir()
    monkeypatch.setenv("YINSI_AUDIT_WITNESS", str(d))
    return d


@pytest.fixture
def master_key_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """The master key is given in the environment (a secrets manager), not stored in the data directory."""
    monkeypatch.setenv("YINSI_MASTER_KEY", MASTER_ENV)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> StaffTemplate:
    """Tenant ``acme`` and its staff, made once (Argon2id is slow), with an empty audit log."""
    return staff_template(tmp_path_factory.mktemp("audit-attacks"), [T], {"cs1": ["customer_service"]})


@pytest.fixture
def staffed(template: StaffTemplate, isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default database holds the tenant's staff; commands act as its customer-service member ``cs1``."""
    use_template(template, isolated_env, monkeypatch)
    monkeypatch.setenv("YINSI_STAFF_TOKEN", template.teams[T].tokens["cs1"])


def yinsi(*args: str) -> Any:
    return runner.invoke(app, list(args))


def record(n: int, tenant: str = T) -> None:
    """``n`` staff actions, each recorded by its own command (as a logged-in member of staff does)."""
    for i in range(n):
        result = yinsi("audit", "record", "--tenant", tenant, "--action", "pi_access",
                       "--subject", f"psn_{i:04d}", "--item", "contact.mobile", "--reason", "核实订单")
        assert result.exit_code == 0, result.output


def verify(*args: str) -> tuple[int, dict[str, Any]]:
    result = yinsi("audit", "verify", "--json", *args)
    return result.exit_code, json.loads(result.stdout)


def kinds(report: dict[str, Any]) -> set[str]:
    return {p["kind"] for c in report["chains"] for p in c["problems"]}


def warnings(report: dict[str, Any]) -> set[str]:
    return {w["kind"] for c in report["chains"] for w in c["warnings"]}


@pytest.fixture
def db(isolated_env: Path, staffed: None) -> Iterator[Engine]:
    """Yinsi's default database, as its owner reaches it."""
    engine = make_engine(f"sqlite:///{(isolated_env / 'yinsi.db').as_posix()}")
    yield engine
    engine.dispose()


# --- the attacker's tools: the formats are public, so hashes and roots can be recomputed --------------


def entries(engine: Engine, tenant: str = T) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(ENTRIES).where(ENTRIES.c.tenant_id == tenant).order_by(ENTRIES.c.seq)).all())


def entry_hash(row: dict[str, Any]) -> str:
    payload = entry_payload(row["tenant_id"], row["seq"], row["recorded_at"], row["actor"], row["action"],
                            row["subject"], json.loads(row["items"]), row["reason"], json.loads(row["details"]),
                            row["prev_hash"])
    return H(canonical_json(payload)).hex()


def rewrite_chain(engine: Engine, change: Callable[[dict[str, Any]], None], *, start: int = 1,
                  extra: int = 0, tenant: str = T) -> list[dict[str, Any]]:
    """Apply ``change`` to every entry from ``start`` on (and append ``extra`` forged ones), recompute every
    hash and link, and fix the head row to match: a careful forger's rewrite of the entries."""
    rows = [dict(r._mapping) for r in entries(engine, tenant)]
    for i in range(extra):
        last = rows[-1]
        rows.append({**last, "seq": last["seq"] + 1, "actor": f"ghost-{i}", "recorded_at": last["recorded_at"]})
    prev = rows[start - 2]["entry_hash"] if start > 1 else "0" * 64
    for row in rows[start - 1:]:
        change(row)
        row["prev_hash"] = prev
        row["entry_hash"] = prev = entry_hash(row)
    frontier = Frontier(H)
    for row in rows:
        frontier.append(leaf_hash(H, bytes.fromhex(row["entry_hash"])))
    with engine.begin() as conn:
        conn.execute(delete(ENTRIES).where(ENTRIES.c.tenant_id == tenant, ENTRIES.c.seq >= start))
        conn.execute(insert(ENTRIES), rows[start - 1:])
        conn.execute(update(CHAINS).where(CHAINS.c.tenant_id == tenant).values(
            last_seq=rows[-1]["seq"], last_hash=rows[-1]["entry_hash"], frontier=frontier.to_text()))
    return rows


def resign_checkpoints(engine: Engine, rows: list[dict[str, Any]], tenant: str = T) -> str:
    """Re-sign every checkpoint over the rewritten entries with the forger's own key, registered in
    ``audit_keys``; returns the forger's key id."""
    forger = generate("ed25519")
    leaves = [leaf_hash(H, bytes.fromhex(r["entry_hash"])) for r in rows]
    with engine.begin() as conn:
        conn.execute(insert(KEYS).values(key_id=forger.key_id, algorithm="ed25519", public_key=forger.public_key,
                                         created_at=datetime.now(UTC), endorsed_by=None, endorsement=None))
        cps = list(conn.execute(select(CHECKPOINTS).where(CHECKPOINTS.c.tenant_id == tenant)
                                .order_by(CHECKPOINTS.c.checkpoint_no)).all())
        prev = None
        for cp in cps:
            root = root_of(H, leaves[:cp.upto_seq]).hex()
            tip = rows[cp.upto_seq - 1]["entry_hash"]
            data = canonical_json(checkpoint_payload(tenant, cp.chain_uid, cp.checkpoint_no, cp.upto_seq, root, tip,
                                                     prev, "sha256", "ed25519", forger.key_id, cp.created_at))
            digest = H(data).hex()
            conn.execute(update(CHECKPOINTS).where(CHECKPOINTS.c.tenant_id == tenant,
                                                   CHECKPOINTS.c.checkpoint_no == cp.checkpoint_no).values(
                root=root, tip_hash=tip, prev_checkpoint_hash=prev, key_id=forger.key_id,
                signature=forger.sign(data), checkpoint_hash=digest))
            prev = digest
        conn.execute(update(CHAINS).where(CHAINS.c.tenant_id == tenant).values(last_checkpoint_hash=prev))
    return forger.key_id


def replace_whole_chain(engine: Engine, tenant: str = T) -> None:
    """Delete the tenant's chain (entries, checkpoints, head) and write a fresh, fully consistent one in its
    place, through Yinsi's own code but without any witness: it verifies on its own."""
    with engine.begin() as conn:
        for table in (ENTRIES, CHECKPOINTS, CHAINS):
            conn.execute(delete(table).where(table.c.tenant_id == tenant))
    forged = AuditLog(make_session_factory(engine), use_witness=False, checkpoint_every=0)
    forged.append(tenant, "staff-0", "other", reason="例行维护")


# --- the attacks -----------------------------------------------------------------------------------


def test_rewriting_the_tail_together_with_the_head_row_is_detected(db: Engine) -> None:
    """Entries after the last checkpoint used to be protected by the head row only: rewrite both and
    ``verify`` said ok. Now every command ends with a checkpoint, so there is no such tail."""
    record(3)
    rewrite_chain(db, lambda r: r.update(reason="例行巡检") if r["seq"] == 3 else None, start=3)
    code, report = verify()
    assert code == 1 and "checkpoint_mismatch" in kinds(report)


def test_checkpoints_by_time_bound_the_unsigned_tail(tmp_path: Path) -> None:
    url = f"sqlite:///{(tmp_path / 'a.db').as_posix()}"
    upgrade(url)
    engine = make_engine(url)
    now = [datetime(2026, 5, 1, 9, 0, tzinfo=UTC)]
    log = AuditLog(make_session_factory(engine), checkpoint_every=1000, checkpoint_seconds=30, use_witness=False,
                   clock=lambda: now[0])
    for step in (0, 10, 10, 15):  # the tail starts at 0 s; the append at 35 s is due
        now[0] += timedelta(seconds=step)
        log.append(T, "staff-1", "other")
    assert [(c.number, c.upto_seq) for c in log.checkpoints(T)] == [(1, 4)]
    now[0] += timedelta(seconds=5)
    log.append(T, "staff-1", "other")  # a new tail starts here
    assert len(log.checkpoints(T)) == 1
    rewrite_chain(engine, lambda r: r.update(actor="staff-9") if r["seq"] == 2 else None, start=2)
    result = log.verify(T)
    assert not result.ok and result.first_problem is not None and result.first_problem.kind == "checkpoint_mismatch"
    engine.dispose()


def test_the_time_limit_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YINSI_AUDIT_CHECKPOINT_SECONDS", "5")
    monkeypatch.setenv("YINSI_AUDIT_CHECKPOINT_EVERY", "3")
    url = f"sqlite:///{(tmp_path / 'a.db').as_posix()}"
    upgrade(url)
    log = AuditLog(make_session_factory(make_engine(url)), use_witness=False)
    assert (log.checkpoint_seconds, log.checkpoint_every) == (5, 3)
    monkeypatch.setenv("YINSI_AUDIT_CHECKPOINT_SECONDS", "soon")
    with pytest.raises(AuditError, match="YINSI_AUDIT_CHECKPOINT_SECONDS"):
        AuditLog(make_session_factory(make_engine(url)))


def test_entries_appended_behind_yinsis_back_are_flagged(db: Engine, witness_dir: Path) -> None:
    """A forged entry appended after the last checkpoint, with the head row fixed, hashes and links
    correctly. Yinsi itself signs every entry within the time limit, so an old unsigned tail is flagged and
    ``--strict`` fails."""
    record(2)
    backdated = datetime.now(UTC) - timedelta(minutes=30)
    rewrite_chain(db, lambda r: r.update(recorded_at=backdated, reason="补录") if r["seq"] == 3 else None,
                  start=3, extra=1)
    code, report = verify()
    assert code == 0 and "unchecked_tail" in warnings(report) and report["confirmed"] is False
    strict = yinsi("audit", "verify", "--strict")
    assert strict.exit_code == 3 and "末尾记录长时间没有检查点" in strict.output and "第 3 条" in strict.output


def test_truncating_the_log_is_caught_by_the_witness(db: Engine, witness_dir: Path) -> None:
    record(3)
    with db.begin() as conn:  # delete the last entry and its checkpoint, and make the head agree
        conn.execute(delete(ENTRIES).where(ENTRIES.c.tenant_id == T, ENTRIES.c.seq == 3))
        conn.execute(delete(CHECKPOINTS).where(CHECKPOINTS.c.tenant_id == T, CHECKPOINTS.c.checkpoint_no == 3))
        cp2 = conn.execute(select(CHECKPOINTS).where(CHECKPOINTS.c.tenant_id == T,
                                                     CHECKPOINTS.c.checkpoint_no == 2)).one()
        frontier = Frontier(H)
        for r in entries(db)[:2]:
            frontier.append(leaf_hash(H, bytes.fromhex(r.entry_hash)))
        conn.execute(update(CHAINS).where(CHAINS.c.tenant_id == T).values(
            last_seq=2, last_hash=cp2.tip_hash, frontier=frontier.to_text(), last_checkpoint_no=2,
            last_checkpoint_seq=2, last_checkpoint_hash=cp2.checkpoint_hash))
    code, report = verify()
    assert code == 1 and report["chains"][0]["first_problem"]["kind"] == "truncated"
    assert "外部见证的检查点 #3" in report["chains"][0]["first_problem"]["message"]


def test_rewriting_a_whole_chain_is_caught(db: Engine, witness_dir: Path) -> None:
    """The demo used to leave no checkpoint at all, so a chain could be deleted and rewritten whole."""
    record(2)
    replace_whole_chain(db)
    code, report = verify()
    assert code == 1 and "chain_missing" in kinds(report)


def test_deleting_the_witness_is_loud_and_fails_strict_verification(db: Engine, witness_dir: Path) -> None:
    record(2)
    assert yinsi("audit", "verify", "--strict").exit_code == 0
    (witness_dir / "yinsi-audit-witness.json").unlink()
    code, report = verify()
    assert code == 0 and "witness_no_record" in warnings(report)
    strict = yinsi("audit", "verify", "--strict")
    assert strict.exit_code == 3 and "外部见证中没有该链的检查点" in strict.output
    shutil.rmtree(witness_dir)  # the whole share gone (or not mounted)
    gone = yinsi("audit", "verify")
    assert gone.exit_code == 0 and "外部见证不存在" in gone.output and "被删除或未挂载" in gone.output
    assert yinsi("audit", "verify", "--strict").exit_code == 3


def test_no_witness_configured_is_loud_and_fails_strict_verification(db: Engine) -> None:
    record(1)
    plain = yinsi("audit", "verify")
    assert plain.exit_code == 0 and "未配置外部见证" in plain.output and "YINSI_AUDIT_WITNESS" in plain.output
    assert yinsi("audit", "verify", "--strict").exit_code == 3


def test_an_alias_of_the_database_does_not_escape_the_witness(db: Engine, witness_dir: Path, isolated_env: Path,
                                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record(2)
    replace_whole_chain(db)
    link = tmp_path / "elsewhere" / "same.db"
    link.parent.mkdir()
    link.symlink_to(isolated_env / "yinsi.db")
    monkeypatch.chdir(isolated_env)
    for url in (f"sqlite:///{link.as_posix()}", "sqlite:///./yinsi.db", "sqlite:///../yinsi-data/yinsi.db"):
        code, report = verify("--url", url)
        assert code == 1 and "chain_missing" in kinds(report), url


def test_database_locations_are_compared_canonically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.db").touch()
    (tmp_path / "link").symlink_to(tmp_path / "d")
    monkeypatch.chdir(tmp_path)
    same = {canonical_database(u) for u in (f"sqlite:///{tmp_path}/d/x.db", "sqlite:///d/x.db", "sqlite:///./link/x.db",
                                            f"sqlite+pysqlite:///{tmp_path}/link/../d/x.db")}
    assert len(same) == 1
    servers = {canonical_database(u) for u in (
        "postgresql+psycopg://yinsi:secret@LOCALHOST/yinsi", "postgresql://other@127.0.0.1:5432/yinsi",
        "postgresql+psycopg://u@localhost:5432/yinsi?sslmode=require")}
    assert servers == {"postgresql://localhost:5432/yinsi"}
    assert canonical_database("mariadb+pymysql://root@127.0.0.1/yinsi") == canonical_database("mysql+pymysql://x@localhost:3306/yinsi")
    assert canonical_database("postgresql://h:5433/yinsi") != canonical_database("postgresql://h/yinsi")


@pytest.mark.usefixtures("staffed")
def test_a_witness_within_the_database_owners_reach_is_refused(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record(1)
    monkeypatch.setenv("YINSI_AUDIT_WITNESS", str(isolated_env / "witness"))
    inside = yinsi("audit", "verify")
    assert inside.exit_code == 2 and "数据目录" in inside.output
    monkeypatch.setenv("YINSI_AUDIT_WITNESS", f"sqlite:///{isolated_env.parent}/link-to-data/yinsi.db")
    (isolated_env.parent / "link-to-data").symlink_to(isolated_env)
    assert yinsi("audit", "verify").exit_code == 2  # through a symlink, still the data directory
    other = isolated_env.parent / "db-copy"
    other.mkdir()
    monkeypatch.setenv("YINSI_AUDIT_WITNESS", f"sqlite:///{other}/../yinsi-data/yinsi.db")
    assert yinsi("audit", "verify").exit_code == 2


def test_a_witness_database_works_like_a_witness_directory(db: Engine, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    witness_db = tmp_path / "witness-mount" / "witness.db"
    witness_db.parent.mkdir()
    monkeypatch.setenv("YINSI_AUDIT_WITNESS", f"sqlite:///{witness_db.as_posix()}")
    record(2)
    assert yinsi("audit", "verify", "--strict").exit_code == 0
    replace_whole_chain(db)
    code, report = verify()
    assert code == 1 and "chain_missing" in kinds(report)
    witness_db.unlink()
    code, report = verify()
    assert code == 0 and "witness_missing" in warnings(report)


def test_a_full_forgery_fails_when_the_signing_key_is_out_of_reach(db: Engine, witness_dir: Path, isolated_env: Path,
                                                                   master_key_elsewhere: None) -> None:
    """The signing key used to sit unencrypted beside the database: with both, a forged chain re-signed
    with the real key passed ``verify --trust-key``. Now the key file in the data directory is wrapped by
    the master key, which the database owner does not hold; a forgery must use another key."""
    record(3)
    key_file = isolated_env / "audit_signing.key"
    stolen = key_file.read_bytes()
    with pytest.raises(AuditKeyError):
        parse_private("ed25519", stolen, str(key_file))
    real_key = json.loads(yinsi("audit", "verify", "--json").stdout)["chains"][0]
    assert real_key["key_trust"] == "local"
    with db.connect() as conn:  # the real signer, as an auditor noted it from the signed checkpoints
        key_id = conn.execute(select(CHECKPOINTS.c.key_id).where(CHECKPOINTS.c.tenant_id == T)).scalars().first()
    rows = rewrite_chain(db, lambda r: r.update(reason="例行巡检"))
    forger = resign_checkpoints(db, rows)
    assert forger != key_id
    code, report = verify()  # on the host, trusting its own key
    assert code == 1 and "untrusted_key" in kinds(report) and "checkpoint_mismatch" in kinds(report)
    code, report = verify("--trust-key", key_id)  # an auditor elsewhere, trusting the real key
    assert code == 1 and "untrusted_key" in kinds(report)


def test_a_plaintext_key_in_the_data_directory_is_wrapped_in_place(isolated_env: Path, tmp_path: Path,
                                                                   master_key_elsewhere: None) -> None:
    isolated_env.mkdir(parents=True, exist_ok=True)
    key_file = isolated_env / "audit_signing.key"
    old = generate("ed25519")
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(old.private_bytes())
    url = f"sqlite:///{(tmp_path / 'a.db').as_posix()}"
    upgrade(url)
    log = AuditLog(make_session_factory(make_engine(url)), use_witness=False)
    assert log.signer("ed25519").key_id == old.key_id  # the same key, now wrapped
    assert key_file.read_bytes().startswith(b"YINSI-AUDIT-WRAPPED-KEY/1")
    assert AuditLog(make_session_factory(make_engine(url))).signer("ed25519").key_id == old.key_id
    outside = tmp_path / "keys" / "audit.key"  # a key holder's file outside the data directory stays as it is
    AuditLog(make_session_factory(make_engine(url)), key_file=outside).signer("ed25519")
    assert b"PRIVATE KEY" in outside.read_bytes()


def test_a_key_wrapped_by_another_master_key_is_refused_with_a_clear_message(isolated_env: Path, tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch,
                                                                             master_key_elsewhere: None) -> None:
    url = f"sqlite:///{(tmp_path / 'a.db').as_posix()}"
    upgrade(url)
    AuditLog(make_session_factory(make_engine(url))).signer("ed25519")
    monkeypatch.setenv("YINSI_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    with pytest.raises(AuditKeyError, match="另一个主密钥"):
        AuditLog(make_session_factory(make_engine(url))).signer("ed25519")


# --- proofs an outsider can check --------------------------------------------------------------------


def test_prove_prints_proofs_that_the_standalone_checker_accepts_and_forgeries_it_rejects(
        db: Engine, tmp_path: Path) -> None:
    record(5)
    inclusion = json.loads(yinsi("audit", "prove", T, "--entry", "2").stdout)
    consistency = json.loads(yinsi("audit", "prove", T, "--from-size", "2", "--to-size", "5").stdout)
    assert inclusion["checkpoint"]["upto_seq"] == 2 and consistency["second_checkpoint"]["checkpoint"] == 5
    # the checker is a single file that needs nothing but Python: copy it out and run it in isolation
    from yinsi.audit import proofcheck

    checker = tmp_path / "outside" / "proofcheck.py"
    checker.parent.mkdir()
    checker.write_text(Path(proofcheck.__file__).read_text(encoding="utf-8"), encoding="utf-8")

    def check(proof: dict[str, Any], *extra: str) -> bool:
        path = tmp_path / "outside" / "proof.json"
        path.write_text(json.dumps(proof, ensure_ascii=False), encoding="utf-8")
        done = subprocess.run([sys.executable, "-I", str(checker), str(path), *extra], capture_output=True,
                              text=True, cwd=checker.parent, check=False)
        return done.returncode == 0

    assert check(inclusion) and check(consistency)
    assert check(consistency, consistency["first_root"]) and not check(consistency, "0" * 64)
    forged_entry = json.loads(json.dumps(inclusion))
    forged_entry["entry"]["reason"] = "例行巡检"
    forged_path = json.loads(json.dumps(consistency))
    forged_path["path"][0] = "ab" * 32
    forged_root = json.loads(json.dumps(consistency))
    forged_root["first_root"] = inclusion["entry_hash"]
    assert not any(proofcheck.check(p) for p in (forged_entry, forged_path, forged_root))
    assert not check(forged_path)
    bad = yinsi("audit", "prove", T, "--from-size", "4", "--to-size", "9")
    assert bad.exit_code == 2 and "一致性证明" in bad.output
    assert yinsi("audit", "prove", T).exit_code == 2


def test_the_demo_ends_with_every_chain_checkpointed_and_witnessed(witness_dir: Path) -> None:
    result = yinsi("demo")
    assert result.exit_code == 0, result.output
    chains = json.loads(yinsi("audit", "chains", "--json").stdout)
    assert chains and all(c["last_checkpoint_seq"] == c["last_seq"] > 0 for c in chains)
    assert yinsi("audit", "verify", "--strict").exit_code == 0


def test_a_service_signs_its_tail_when_appends_stop(tmp_path: Path) -> None:
    """A long-running process whose appends stop still gets its tail signed: by the checkpoint timer, and
    at the latest when it stops."""
    from yinsi.audit import CheckpointTimer
    from yinsi.audit.log import forget_pending

    url = f"sqlite:///{(tmp_path / 'a.db').as_posix()}"
    upgrade(url)
    engine = make_engine(url)
    forget_pending()
    log = AuditLog(make_session_factory(engine), checkpoint_every=1000, checkpoint_seconds=3600, use_witness=False)
    timer = CheckpointTimer(seconds=3600).start()
    log.append(T, "staff-1", "other")
    log.append(T, "staff-1", "other")
    assert log.checkpoints(T) == []
    timer.stop()
    assert [c.upto_seq for c in log.checkpoints(T)] == [2]
    engine.dispose()
