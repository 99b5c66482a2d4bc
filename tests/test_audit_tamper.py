"""Every kind of tampering with the stored log is detected, and the first bad entry is named.

Each test builds a chain of 35 entries with a checkpoint every 10 (checkpoints #1–#3 cover 1–10, 1–20,
1–30), tampers with it through raw SQL as someone with write access to the database would, and checks
``verify``. Runs on SQLite, PostgreSQL and MariaDB (``migrated_url``).
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, Table, select, text

from yinsi.audit import AuditError, AuditLog, VerifyResult
from yinsi.audit.hashing import hash_fn
from yinsi.audit.merkle import Frontier, leaf_hash
from yinsi.audit.model import canonical_json, checkpoint_payload, entry_payload
from yinsi.audit.signing import generate
from yinsi.audit.store import CHECKPOINTS, ENTRIES
from yinsi.storage import make_engine, make_session_factory

pytestmark = pytest.mark.usefixtures("isolated_env")

T = "acme"
H = hash_fn("sha256")
T0 = datetime(2026, 5, 1, 9, 0, 0, 250000, tzinfo=UTC)


@dataclass
class Chain:
    engine: Engine
    log: AuditLog
    tmp: Path

    def sql(self, statement: str, **params: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(statement), params)

    def rows(self, statement: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(statement), params).all())

    def entry(self, seq: int) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(select(ENTRIES).where(ENTRIES.c.tenant_id == T, ENTRIES.c.seq == seq)).one()

    def typed(self, table: Table) -> list[Any]:
        """All of ``T``'s rows of an audit table, with typed (timezone-aware) values."""
        key = ENTRIES.c.seq if table is ENTRIES else CHECKPOINTS.c.checkpoint_no
        with self.engine.connect() as conn:
            return list(conn.execute(select(table).where(table.c.tenant_id == T).order_by(key)).all())

    def verify(self, **kwargs: Any) -> VerifyResult:
        return self.log.verify(T, **kwargs)


@pytest.fixture
def chain(migrated_url: str, tmp_path: Path) -> Iterator[Chain]:
    engine = make_engine(migrated_url)
    ticks = iter(range(10_000))
    log = AuditLog(make_session_factory(engine), checkpoint_every=10, checkpoint_seconds=0,
                   witness_file=tmp_path / "witness.json", clock=lambda: T0 + timedelta(seconds=next(ticks)))
    for i in range(35):
        log.append(T, f"staff-{i % 3}", "pi_access", target_subject=f"psn_{i:04d}", items=["contact.mobile"],
                   reason="核实订单", details={"ticket": f"T-{i}"})
    log.append("other", "staff-9", "export")  # another tenant's chain is never affected
    try:
        c = Chain(engine, log, tmp_path)
        assert c.verify().ok
        yield c
        assert log.verify("other").ok
    finally:
        engine.dispose()


def first(result: VerifyResult) -> tuple[int | None, str]:
    assert not result.ok
    p = result.first_problem
    assert p is not None
    return p.seq, p.kind


def _entry_hash(row: Any, seq: int | None = None) -> str:
    payload = entry_payload(row.tenant_id, seq or row.seq, row.recorded_at, row.actor, row.action, row.subject,
                            json.loads(row.items), row.reason, json.loads(row.details), row.prev_hash)
    return H(canonical_json(payload)).hex()


def _edit(row: Any, **changes: Any) -> SimpleNamespace:
    """A copy of an entry row with ``changes``, for re-hashing."""
    return SimpleNamespace(**{**row._mapping, **changes})


# --- entries ---------------------------------------------------------------------------------------


def test_a_modified_field_is_detected_at_its_entry(chain: Chain) -> None:
    chain.sql("UPDATE audit_entries SET reason = '例行检查' WHERE tenant_id = :t AND seq = 7", t=T)
    assert first(chain.verify()) == (7, "modified")


@pytest.mark.parametrize("column, value", [
    ("actor", "staff-x"), ("action", "other"), ("subject", "psn_9999"), ("items", '["basic.name"]'),
    ("details", '{"ticket":"T-0"}'), ("prev_hash", "1" * 64),
])
def test_every_field_is_covered_by_the_hash(chain: Chain, column: str, value: str) -> None:
    chain.sql(f"UPDATE audit_entries SET {column} = :v WHERE tenant_id = :t AND seq = 23", v=value, t=T)
    assert first(chain.verify())[0] == 23


def test_a_modified_time_is_detected(chain: Chain) -> None:
    chain.sql("UPDATE audit_entries SET recorded_at = :ts WHERE tenant_id = :t AND seq = 3",
              ts=datetime(2020, 1, 1, 0, 0, 0), t=T)
    assert first(chain.verify()) == (3, "modified")


def test_a_modified_entry_with_a_recomputed_hash_breaks_the_link_to_the_next(chain: Chain) -> None:
    row = chain.entry(12)
    forged = _edit(row, reason="无事由")
    chain.sql("UPDATE audit_entries SET reason = '无事由', entry_hash = :h WHERE tenant_id = :t AND seq = 12",
              h=_entry_hash(forged), t=T)
    assert first(chain.verify()) == (12, "rewritten")


def test_a_deleted_entry_is_detected(chain: Chain) -> None:
    chain.sql("DELETE FROM audit_entries WHERE tenant_id = :t AND seq = 12", t=T)
    result = chain.verify()
    assert first(result) == (12, "deleted")
    assert "第 12 条" in result.describe()


def test_a_deleted_entry_with_the_rest_renumbered_is_detected(chain: Chain) -> None:
    chain.sql("DELETE FROM audit_entries WHERE tenant_id = :t AND seq = 12", t=T)
    chain.sql("UPDATE audit_entries SET seq = seq + 1000 WHERE tenant_id = :t AND seq > 12", t=T)
    chain.sql("UPDATE audit_entries SET seq = seq - 1001 WHERE tenant_id = :t AND seq > 1000", t=T)
    assert first(chain.verify()) == (12, "deleted")


def test_two_swapped_entries_are_detected(chain: Chain) -> None:
    chain.sql("UPDATE audit_entries SET seq = -1 WHERE tenant_id = :t AND seq = 5", t=T)
    chain.sql("UPDATE audit_entries SET seq = 5 WHERE tenant_id = :t AND seq = 9", t=T)
    chain.sql("UPDATE audit_entries SET seq = 9 WHERE tenant_id = :t AND seq = -1", t=T)
    result = chain.verify()
    assert first(result) == (5, "reordered")
    assert "原为第 9 条" in result.problems[0].message


def test_two_adjacent_swapped_entries_are_detected(chain: Chain) -> None:
    chain.sql("UPDATE audit_entries SET seq = -1 WHERE tenant_id = :t AND seq = 5", t=T)
    chain.sql("UPDATE audit_entries SET seq = 5 WHERE tenant_id = :t AND seq = 6", t=T)
    chain.sql("UPDATE audit_entries SET seq = 6 WHERE tenant_id = :t AND seq = -1", t=T)
    result = chain.verify()
    assert first(result) == (5, "reordered")
    assert [p.kind for p in result.problems].count("reordered") == 1


def test_an_inserted_forged_entry_is_detected(chain: Chain) -> None:
    """The forger shifts entries 15… up and inserts a well-formed entry, correctly hashed and linked, at 15."""
    prev = chain.rows("SELECT entry_hash FROM audit_entries WHERE tenant_id = :t AND seq = 14", t=T)[0][0]
    chain.sql("UPDATE audit_entries SET seq = seq + 1000 WHERE tenant_id = :t AND seq >= 15", t=T)
    chain.sql("UPDATE audit_entries SET seq = seq - 999 WHERE tenant_id = :t AND seq >= 1000", t=T)
    ts = T0 + timedelta(seconds=15, microseconds=1)
    payload = entry_payload(T, 15, ts, "staff-0", "other", None, [], "补录", {}, prev)
    chain.sql("INSERT INTO audit_entries (tenant_id, seq, recorded_at, actor, action, subject, items, reason, details,"
              " prev_hash, entry_hash) VALUES (:t, 15, :ts, 'staff-0', 'other', NULL, '[]', '补录', '{}', :p, :h)",
              t=T, ts=ts.replace(tzinfo=None), p=prev, h=H(canonical_json(payload)).hex())
    assert first(chain.verify()) == (15, "inserted")


def test_an_entry_appended_behind_the_logs_back_is_detected(chain: Chain) -> None:
    last = chain.rows("SELECT entry_hash FROM audit_entries WHERE tenant_id = :t AND seq = 35", t=T)[0][0]
    ts = T0 + timedelta(hours=1)
    payload = entry_payload(T, 36, ts, "staff-0", "other", None, [], None, {}, last)
    chain.sql("INSERT INTO audit_entries (tenant_id, seq, recorded_at, actor, action, subject, items, reason, details,"
              " prev_hash, entry_hash) VALUES (:t, 36, :ts, 'staff-0', 'other', NULL, '[]', NULL, '{}', :p, :h)",
              t=T, ts=ts.replace(tzinfo=None), p=last, h=H(canonical_json(payload)).hex())
    assert first(chain.verify()) == (36, "inserted")


# --- truncation ------------------------------------------------------------------------------------


def test_a_truncated_tail_after_the_last_checkpoint_is_detected(chain: Chain) -> None:
    chain.sql("DELETE FROM audit_entries WHERE tenant_id = :t AND seq > 32", t=T)
    assert first(chain.verify()) == (33, "truncated")


def test_truncation_across_a_checkpoint_is_detected(chain: Chain) -> None:
    chain.sql("DELETE FROM audit_entries WHERE tenant_id = :t AND seq > 25", t=T)
    result = chain.verify()
    assert first(result) == (26, "truncated")
    assert "检查点 #3" in result.problems[0].message


def _hide_truncation(chain: Chain, keep: int) -> None:
    """The careful attacker: delete entries after ``keep`` and every checkpoint beyond them, and rewrite the
    head row so that it agrees with what is left."""
    chain.sql("DELETE FROM audit_entries WHERE tenant_id = :t AND seq > :k", t=T, k=keep)
    chain.sql("DELETE FROM audit_checkpoints WHERE tenant_id = :t AND upto_seq > :k", t=T, k=keep)
    hashes = [r[0] for r in chain.rows("SELECT entry_hash FROM audit_entries WHERE tenant_id = :t ORDER BY seq", t=T)]
    frontier = Frontier(H)
    for x in hashes:
        frontier.append(leaf_hash(H, bytes.fromhex(x)))
    last_cp = chain.rows("SELECT checkpoint_no, upto_seq, checkpoint_hash FROM audit_checkpoints WHERE tenant_id = :t "
                         "ORDER BY checkpoint_no DESC", t=T)[0]
    chain.sql("UPDATE audit_chains SET last_seq = :k, last_hash = :h, frontier = :f, last_checkpoint_no = :n, "
              "last_checkpoint_seq = :s, last_checkpoint_hash = :ch WHERE tenant_id = :t",
              k=keep, h=hashes[-1], f=frontier.to_text(), n=last_cp[0], s=last_cp[1], ch=last_cp[2], t=T)


def test_truncation_before_the_last_checkpoint_with_a_rewritten_head_is_caught_by_the_witness(chain: Chain) -> None:
    _hide_truncation(chain, 25)
    result = chain.verify()
    assert result.witness == "checked"
    seq, kind = first(result)
    assert kind == "truncated" and seq is not None and seq <= 26
    assert "外部见证的检查点 #3" in result.problems[0].message
    # Without the witness nothing inside the database contradicts the shortened log: this is why the
    # witness file (and off-site copies of checkpoints) exist.
    blind = AuditLog(make_session_factory(chain.engine), use_witness=False)
    assert blind.verify(T).ok


def test_deleting_the_whole_chain_is_caught_by_the_witness(chain: Chain) -> None:
    for table in ("audit_entries", "audit_checkpoints", "audit_chains"):
        chain.sql(f"DELETE FROM {table} WHERE tenant_id = :t", t=T)
    assert T in chain.log.tenants()
    assert first(chain.verify()) == (1, "chain_missing")


def test_a_deleted_head_row_is_detected_and_stops_appends(chain: Chain) -> None:
    chain.sql("DELETE FROM audit_chains WHERE tenant_id = :t", t=T)
    result = chain.verify()
    assert not result.ok and {p.kind for p in result.problems} >= {"head_missing"}
    # appending would restart the chain at seq 1, which exists: refused loudly instead of forking the log
    with pytest.raises(AuditError, match="与链头记录不符"):
        AuditLog(make_session_factory(chain.engine), witness_file=chain.tmp / "witness.json").append(T, "system", "other")


# --- checkpoints -----------------------------------------------------------------------------------


def test_a_forged_checkpoint_signature_is_detected(chain: Chain) -> None:
    sig = chain.rows("SELECT signature FROM audit_checkpoints WHERE tenant_id = :t AND checkpoint_no = 2", t=T)[0][0]
    forged = ("0" if sig[0] != "0" else "1") + sig[1:]
    chain.sql("UPDATE audit_checkpoints SET signature = :s WHERE tenant_id = :t AND checkpoint_no = 2", s=forged, t=T)
    result = chain.verify()
    assert first(result) == (11, "bad_signature")
    assert result.problems[0].checkpoint == 2


def test_a_modified_checkpoint_root_is_detected(chain: Chain) -> None:
    chain.sql("UPDATE audit_checkpoints SET root = :r WHERE tenant_id = :t AND checkpoint_no = 1", r="ab" * 32, t=T)
    assert first(chain.verify()) == (1, "bad_signature")


def test_a_deleted_checkpoint_is_detected(chain: Chain) -> None:
    chain.sql("DELETE FROM audit_checkpoints WHERE tenant_id = :t AND checkpoint_no = 2", t=T)
    result = chain.verify()
    assert first(result) == (11, "checkpoint_missing")


def _rewrite_history(chain: Chain, seq: int, reason: str) -> str:
    """The strongest attacker with database access: change entry ``seq``, recompute every later hash, the
    Merkle roots and checkpoint links, re-sign the affected checkpoints with their own key (registered in
    the key table) and fix the head row. Returns the attacker's key id."""
    attacker = generate("ed25519")
    chain.sql("INSERT INTO audit_keys (key_id, algorithm, public_key, created_at, endorsed_by, endorsement) "
              "VALUES (:k, 'ed25519', :p, :c, NULL, NULL)", k=attacker.key_id, p=attacker.public_key,
              c=datetime(2026, 5, 1, 9, 0, 0))
    rows = chain.typed(ENTRIES)
    hashes: list[str] = []
    prev = "0" * 64
    for row in rows:
        r = _edit(row, prev_hash=prev, reason=reason if row.seq == seq else row.reason)
        h = _entry_hash(r) if row.seq >= seq else row.entry_hash
        if row.seq >= seq:
            chain.sql("UPDATE audit_entries SET reason = :r, prev_hash = :p, entry_hash = :h WHERE tenant_id = :t "
                      "AND seq = :s", r=r.reason, p=prev, h=h, t=T, s=row.seq)
        hashes.append(h)
        prev = h
    cps = chain.typed(CHECKPOINTS)
    prev_cp = None
    for cp in cps:
        if cp.upto_seq >= seq:
            frontier = Frontier(H)
            for x in hashes[:cp.upto_seq]:
                frontier.append(leaf_hash(H, bytes.fromhex(x)))
            payload = checkpoint_payload(T, cp.chain_uid, cp.checkpoint_no, cp.upto_seq, frontier.root().hex(),
                                         hashes[cp.upto_seq - 1], prev_cp, "sha256", "ed25519", attacker.key_id,
                                         cp.created_at)
            data = canonical_json(payload)
            chain.sql("UPDATE audit_checkpoints SET root = :r, tip_hash = :tip, prev_checkpoint_hash = :p, key_id = :k, "
                      "signature = :sig, checkpoint_hash = :h WHERE tenant_id = :t AND checkpoint_no = :n",
                      r=payload["root"], tip=payload["tip_hash"], p=prev_cp, k=attacker.key_id,
                      sig=attacker.sign(data), h=H(data).hex(), t=T, n=cp.checkpoint_no)
            prev_cp = H(data).hex()
        else:
            prev_cp = cp.checkpoint_hash
    frontier = Frontier(H)
    for x in hashes:
        frontier.append(leaf_hash(H, bytes.fromhex(x)))
    chain.sql("UPDATE audit_chains SET last_hash = :h, frontier = :f, last_checkpoint_hash = :c WHERE tenant_id = :t",
              h=hashes[-1], f=frontier.to_text(), c=prev_cp, t=T)
    return attacker.key_id


def test_history_rewritten_and_re_signed_with_an_attackers_key_is_detected(chain: Chain) -> None:
    attacker = _rewrite_history(chain, 15, "无")
    result = chain.verify()
    assert first(result) == (11, "untrusted_key")
    assert attacker in result.problems[0].message
    # An auditor's host without the key still catches it when told which key to trust.
    auditor = AuditLog(make_session_factory(chain.engine), key_file=chain.tmp / "absent.key", use_witness=False)
    trusted = chain.log.signer("ed25519").key_id
    assert first(auditor.verify(T, trusted_keys=[trusted])) == (11, "untrusted_key")


def test_history_rewritten_and_re_signed_is_caught_by_the_witness_even_without_a_trust_anchor(chain: Chain) -> None:
    _rewrite_history(chain, 15, "无")
    auditor = AuditLog(make_session_factory(chain.engine), key_file=chain.tmp / "absent.key",
                       witness_file=chain.tmp / "witness.json")
    result = auditor.verify(T)
    assert result.key_trust == "database"
    assert [p.kind for p in result.problems] == ["checkpoint_mismatch"]


def test_a_replaced_public_key_is_detected(chain: Chain) -> None:
    chain.sql("UPDATE audit_keys SET public_key = :p", p=generate("ed25519").public_key)
    assert first(chain.verify()) == (1, "unknown_key")


def test_the_cli_exits_non_zero_and_names_the_first_bad_entry(chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from yinsi.cli.main import app

    chain.sql("DELETE FROM audit_entries WHERE tenant_id = :t AND seq = 12", t=T)
    monkeypatch.setenv("YINSI_AUDIT_WITNESS_FILE", str(chain.tmp / "witness.json"))
    url = chain.engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(app, ["audit", "verify", "--url", url, "--json"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    bad = next(c for c in data["chains"] if c["tenant"] == T)
    assert data["ok"] is False and bad["first_problem"]["seq"] == 12 and bad["first_problem"]["kind"] == "deleted"
    assert next(c for c in data["chains"] if c["tenant"] == "other")["ok"] is True
    human = CliRunner().invoke(app, ["audit", "verify", "--url", url, "--tenant", T])
    assert human.exit_code == 1 and "第 12 条" in human.output and "被篡改" in human.output


# --- any single tampering, at random (SQLite) ------------------------------------------------------

N = 30


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database holding a 30-entry chain (a checkpoint every 8), with its key and witness files."""
    from yinsi.storage import upgrade

    base = tmp_path_factory.mktemp("pristine")
    url = f"sqlite:///{(base / 'audit.db').as_posix()}"
    upgrade(url)
    engine = make_engine(url)
    log = AuditLog(make_session_factory(engine), checkpoint_every=8, key_file=base / "k.key",
                   witness_file=base / "w.json")
    for i in range(N):
        log.append(T, f"staff-{i % 4}", "pi_access", target_subject=f"psn_{i}", items=["contact.mobile"],
                   reason=f"工单 {i}", details={"i": i})
    engine.dispose()
    return base


TAMPERING = st.one_of(
    st.tuples(st.just("update"), st.integers(1, N), st.sampled_from(["actor", "reason", "subject", "details"]),
              st.text(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(1, N)),
    st.tuples(st.just("swap"), st.integers(1, N), st.integers(1, N)),
    st.tuples(st.just("truncate"), st.integers(0, N - 1)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tampering=TAMPERING)
def test_any_single_tampering_is_detected_at_the_right_entry(pristine: Path, tmp_path: Path,
                                                              tampering: tuple[Any, ...]) -> None:
    work = tmp_path / uuid.uuid4().hex
    shutil.copytree(pristine, work)
    engine = make_engine(f"sqlite:///{(work / 'audit.db').as_posix()}")
    try:
        with engine.begin() as conn:
            kind = tampering[0]
            if kind == "update":
                _, seq, column, value = tampering
                if column == "details":
                    value = json.dumps({"i": value}, ensure_ascii=False)
                old = conn.execute(text(f"SELECT {column} FROM audit_entries WHERE seq = :s"), {"s": seq}).scalar()
                assume(old != value)
                conn.execute(text(f"UPDATE audit_entries SET {column} = :v WHERE seq = :s"), {"v": value, "s": seq})
                expected = seq
            elif kind == "delete":
                conn.execute(text("DELETE FROM audit_entries WHERE seq = :s"), {"s": tampering[1]})
                expected = tampering[1]
            elif kind == "swap":
                a, b = sorted(tampering[1:])
                assume(a != b)
                conn.execute(text("UPDATE audit_entries SET seq = -1 WHERE seq = :a"), {"a": a})
                conn.execute(text("UPDATE audit_entries SET seq = :a WHERE seq = :b"), {"a": a, "b": b})
                conn.execute(text("UPDATE audit_entries SET seq = :b WHERE seq = -1"), {"b": b})
                expected = a
            else:
                conn.execute(text("DELETE FROM audit_entries WHERE seq > :k"), {"k": tampering[1]})
                expected = tampering[1] + 1
        log = AuditLog(make_session_factory(engine), key_file=work / "k.key", witness_file=work / "w.json")
        result = log.verify(T)
        assert not result.ok
        assert result.first_problem is not None and result.first_problem.seq == expected, result.problems
    finally:
        engine.dispose()
