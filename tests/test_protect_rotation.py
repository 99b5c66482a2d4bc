"""Key rotation: re-encryption of every registered ciphertext, resumable after a real SIGKILL."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, LargeBinary, MetaData, String, Table, Text, func, insert, select
from typer.testing import CliRunner

from yinsi.cli.main import app
from yinsi.protect.crypto import Algorithm, FieldCipher, read_header
from yinsi.protect.errors import RotationError
from yinsi.protect.identifiers import reveal_identifier, store_identifier
from yinsi.protect.keys import MASTER_KEY_ENV, KeyRing, MasterKey
from yinsi.protect.rotation import (
    ColumnProgress,
    EncryptedColumn,
    RotationTarget,
    registered_columns,
    rotate_data_key,
    running_rotation,
)
from yinsi.storage import Tenant, make_engine, make_session_factory, upgrade
from yinsi.storage.keys_tables import KeyRotationColumnRow, KeyRotationRow

from .conftest import scratch_database

pytestmark = pytest.mark.usefixtures("isolated_env")

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def app_users_table(metadata: MetaData) -> Table:
    """An app's table with a bytes-token column and a text-token column, rows of two tenants."""
    return Table(
        "app_users", metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("tenant_id", String(64), nullable=False),
        Column("phone", LargeBinary, nullable=True),
        Column("email", Text, nullable=True),
    )


def phone_of(i: int) -> str:
    return f"138{i:08d}"


def seed(url: str, data_url: str, master: MasterKey, n: int) -> None:
    """Yinsi schema and keys at ``url``; ``app_users`` with ``n`` rows of t1 (and 5 of t2) at ``data_url``."""
    upgrade(url)
    engine = make_engine(url)
    with make_session_factory(engine)() as session, session.begin():
        session.add_all([Tenant(id="t1", name="一", created_at=T0), Tenant(id="t2", name="二", created_at=T0)])
    engine.dispose()
    data = make_engine(data_url)
    table = app_users_table(MetaData())
    table.create(data)
    with KeyRing.open(url, master) as ring:
        ring.provision("t1")
        ring.provision("t2")
        rows = []
        for i in range(n):
            rows.append({"id": i, "tenant_id": "t1",
                         "phone": None if i == 3 else ring.cipher("t1").encrypt("app_users.phone", phone_of(i)),
                         "email": ring.cipher("t1").encrypt_text("app_users.email", f"user{i}@example.com")})
        for i in range(n, n + 5):
            rows.append({"id": i, "tenant_id": "t2", "phone": ring.cipher("t2").encrypt("app_users.phone", phone_of(i)),
                         "email": None})
        with data.begin() as conn:
            conn.execute(insert(table), rows)
        for i in range(4):
            store_identifier(ring, "t1", f"u{i}", "phone", phone_of(i))
    data.dispose()


def check_all_rotated(url: str, data_url: str, master: MasterKey, n: int, version: int = 2) -> None:
    """Every t1 ciphertext is at ``version`` and decrypts to its original (so none was encrypted twice);
    t2's rows are untouched."""
    data = make_engine(data_url)
    table = app_users_table(MetaData())
    with data.connect() as conn:
        rows = conn.execute(select(table).order_by(table.c.id)).all()
    data.dispose()
    with KeyRing.open(url, master) as ring:
        for row in rows:
            if row.tenant_id == "t1":
                if row.id == 3:
                    assert row.phone is None
                else:
                    assert read_header(row.phone).key_version == version
                    assert ring.cipher("t1").decrypt("app_users.phone", row.phone) == phone_of(row.id)
                assert ring.cipher("t1").decrypt_text("app_users.email", row.email) == f"user{row.id}@example.com"
                assert read_header(base64.b64decode(row.email)).key_version == version
            else:
                assert read_header(row.phone).key_version == 1
                assert ring.cipher("t2").decrypt("app_users.phone", row.phone) == phone_of(row.id)
        for i in range(4):
            assert reveal_identifier(ring, "t1", f"u{i}", "phone") == phone_of(i)
        versions = {(k.version, k.status) for k in ring.list_keys("t1") if k.purpose == "data"}
        assert versions == {(1, "retired"), (2, "active")}
        assert {(k.version, k.status) for k in ring.list_keys("t2") if k.purpose == "data"} == {(1, "active")}
        assert running_rotation(ring, "t1") is None


def targets(ring: KeyRing, data_url: str | None = None) -> list[RotationTarget]:
    data = make_engine(data_url) if data_url else ring.engine
    return [RotationTarget(ring.engine, c) for c in registered_columns()] + [
        RotationTarget(data, EncryptedColumn("app_users", "phone")),
        RotationTarget(data, EncryptedColumn("app_users", "email")),
    ]


@pytest.fixture
def master() -> MasterKey:
    return MasterKey(os.urandom(32), "test")


# --- in-process -------------------------------------------------------------------------------------


def test_rotation_reencrypts_every_registered_column(migrated_url: str, master: MasterKey) -> None:
    seed(migrated_url, migrated_url, master, 23)
    seen: list[ColumnProgress] = []
    with KeyRing.open(migrated_url, master) as ring:
        result = rotate_data_key(ring, "t1", targets(ring), batch_size=5, on_progress=seen.append)
    assert result.to_version == 2 and not result.resumed and result.retired_versions == [1]
    done = {c.label: c.total_reencrypted for c in result.columns}
    assert done == {"subject_identifiers.ciphertext": 4, "app_users.phone": 22, "app_users.email": 23,
                    # registered by the rights engine and the outbox; empty in this database
                    "legal_holds.payload_encrypted": 0, "outbox.payload": 0, "rights_requests.details_encrypted": 0,
                    "rights_requests.identity_encrypted": 0, "rights_requests.plan_encrypted": 0,
                    "staff.totp_secret_encrypted": 0, "app_link_keys.secret_encrypted": 0,
                    "login_challenges.subject_encrypted": 0, "subject_sessions.subject_encrypted": 0,
                    # the subject directory: a row per subject with an identifier (issue 11)
                    "subjects.subject_encrypted": 4, "subjects.birth_date_encrypted": 0}
    # a second pass found nothing left (an empty column is finished after its first pass)
    assert all(c.pass_no == (2 if c.total_reencrypted else 1) for c in result.columns)
    assert any(p.seen == 5 and not p.finished for p in seen)
    check_all_rotated(migrated_url, migrated_url, master, 23)


def test_interrupted_rotation_resumes_without_a_new_version(tmp_path: Path, master: MasterKey) -> None:
    url = f"sqlite:///{tmp_path / 'y.db'}"
    seed(url, url, master, 40)
    batches = 0

    def interrupt(p: ColumnProgress) -> None:
        nonlocal batches
        batches += p.seen > 0
        if batches == 4:
            raise KeyboardInterrupt

    with KeyRing.open(url, master) as ring:
        with pytest.raises(KeyboardInterrupt):
            rotate_data_key(ring, "t1", targets(ring), batch_size=6, on_progress=interrupt)
        running = running_rotation(ring, "t1")
        assert running is not None and running.to_version == 2
        result = rotate_data_key(ring, "t1", targets(ring), batch_size=6)
    assert result.resumed and result.to_version == 2
    check_all_rotated(url, url, master, 40)


def test_rows_written_with_the_old_key_during_rotation_are_caught(tmp_path: Path, master: MasterKey) -> None:
    """A process whose cached active key is stale writes version-1 tokens behind the cursor; the
    verification pass re-encrypts them before version 1 is retired."""
    url = f"sqlite:///{tmp_path / 'y.db'}"
    seed(url, url, master, 12)
    engine = make_engine(url)
    table = app_users_table(MetaData())
    stale_ring = KeyRing.open(url, master, active_ttl=3600)
    stale = FieldCipher("t1", stale_ring)
    stale.encrypt("app_users.phone", "warm the cache")
    late = {"done": False}

    def write_behind(p: ColumnProgress) -> None:
        if p.label == "app_users.phone" and p.seen >= 8 and not late["done"]:
            late["done"] = True
            with engine.begin() as conn:
                conn.execute(table.update().where(table.c.id == 0)
                             .values(phone=stale.encrypt("app_users.phone", phone_of(0))))

    with KeyRing.open(url, master) as ring:
        result = rotate_data_key(ring, "t1", targets(ring), batch_size=4, on_progress=write_behind)
    assert late["done"]
    phone = next(c for c in result.columns if c.label == "app_users.phone")
    assert phone.pass_no == 3 and phone.total_reencrypted == 12  # 11 + the late row
    stale_ring.close()
    engine.dispose()
    check_all_rotated(url, url, master, 12)


def test_rotation_can_switch_to_sm4(tmp_path: Path, master: MasterKey) -> None:
    url = f"sqlite:///{tmp_path / 'y.db'}"
    seed(url, url, master, 5)
    with KeyRing.open(url, master) as ring:
        result = rotate_data_key(ring, "t1", targets(ring), algorithm=Algorithm.SM4_GCM)
        assert result.algorithm == "sm4-gcm"
        data = make_engine(url)
        table = app_users_table(MetaData())
        with data.connect() as conn:
            token = conn.execute(select(table.c.phone).where(table.c.id == 0)).scalar_one()
        data.dispose()
        assert read_header(token).algorithm is Algorithm.SM4_GCM
        assert ring.cipher("t1").decrypt("app_users.phone", token) == phone_of(0)


def test_a_value_that_is_not_a_token_stops_the_rotation_loudly(tmp_path: Path, master: MasterKey) -> None:
    url = f"sqlite:///{tmp_path / 'y.db'}"
    seed(url, url, master, 5)
    data = make_engine(url)
    table = app_users_table(MetaData())
    with data.begin() as conn:
        conn.execute(table.update().where(table.c.id == 2).values(phone=b"13800000002"))
    data.dispose()
    with KeyRing.open(url, master) as ring, pytest.raises(RotationError) as info:
        rotate_data_key(ring, "t1", targets(ring))
    assert "app_users.phone" in str(info.value) and "主键 2" in str(info.value)
    assert "13800000002" not in str(info.value)


def test_unknown_table_or_column_is_refused(tmp_path: Path, master: MasterKey) -> None:
    url = f"sqlite:///{tmp_path / 'y.db'}"
    seed(url, url, master, 1)
    with KeyRing.open(url, master) as ring:
        with pytest.raises(RotationError, match="没有表 nope"):
            rotate_data_key(ring, "t1", [RotationTarget(ring.engine, EncryptedColumn("nope", "x"))])
        with pytest.raises(RotationError, match="没有列 nope"):
            rotate_data_key(ring, "t1", [RotationTarget(ring.engine, EncryptedColumn("app_users", "nope"))])


def test_without_columns_the_old_version_is_not_retired(tmp_path: Path, master: MasterKey) -> None:
    url = f"sqlite:///{tmp_path / 'y.db'}"
    seed(url, url, master, 1)
    with KeyRing.open(url, master) as ring:
        result = rotate_data_key(ring, "t1", [])
        assert result.retired_versions == []
        assert {(k.version, k.status) for k in ring.list_keys("t1") if k.purpose == "data"} == {
            (1, "retiring"), (2, "active")}


def test_registry_rejects_a_conflicting_registration() -> None:
    from yinsi.protect.rotation import register_encrypted_column

    assert any(c.table == "subject_identifiers" for c in registered_columns())
    with pytest.raises(ValueError, match="already registered"):
        register_encrypted_column(EncryptedColumn("subject_identifiers", "ciphertext", field="other"))


# --- a real kill ------------------------------------------------------------------------------------


def _rotate_cmd(url: str, data_url: str, *extra: str) -> list[str]:
    return ["keys", "rotate", "t1", "--url", url, "--data-url", data_url, "--table", "app_users",
            "--column", "phone", "--column", "app_users.email", *extra]


def _progress(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.coalesce(func.sum(KeyRotationColumnRow.total_reencrypted), 0)))
                       .scalar_one())
    finally:
        engine.dispose()


def kill_and_resume(url: str, data_url: str, master: MasterKey, n: int, batch: int) -> None:
    env = {**os.environ, MASTER_KEY_ENV: base64.b64encode(master.material).decode()}
    env.pop("YINSI_DATABASE_URL", None)
    cmd = [sys.executable, "-c", "from yinsi.cli.main import app; app()",
           *_rotate_cmd(url, data_url, "--batch-size", str(batch), "--pause", "0.3")]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while _progress(url) < 3 * batch:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "rotation made no progress"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    # Killed half-way: the rotation is recorded as running, some rows are done and some are not.
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(select(KeyRotationRow.status)).scalars().all() == ["running"]
    engine.dispose()
    data = make_engine(data_url)
    table = app_users_table(MetaData())
    with data.connect() as conn:
        versions = [read_header(p).key_version for p in conn.execute(
            select(table.c.phone).where(table.c.tenant_id == "t1", table.c.phone.is_not(None))).scalars()]
    data.dispose()
    assert 1 in versions and 2 in versions
    # Run again: it finishes the same rotation.
    result = CliRunner().invoke(app, _rotate_cmd(url, data_url, "--batch-size", str(batch), "--json"), env=env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["resumed"] is True and summary["to_version"] == 2 and summary["retired_versions"] == [1]
    check_all_rotated(url, data_url, master, n)


def test_rotation_survives_sigkill_and_resumes_sqlite(tmp_path: Path, master: MasterKey) -> None:
    url = f"sqlite:///{tmp_path / 'yinsi.db'}"
    data_url = f"sqlite:///{tmp_path / 'app.db'}"
    seed(url, data_url, master, 120)
    kill_and_resume(url, data_url, master, 120, batch=10)


@pytest.mark.postgres
def test_rotation_survives_sigkill_and_resumes_postgresql(master: MasterKey) -> None:
    with scratch_database("postgresql") as url:
        seed(url, url, master, 120)
        kill_and_resume(url, url, master, 120, batch=10)


@pytest.fixture
def cli_db(tmp_path: Path, master: MasterKey, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'yinsi.db'}"
    seed(url, url, master, 8)
    monkeypatch.setenv(MASTER_KEY_ENV, base64.b64encode(master.material).decode())
    yield url


def test_cli_rotate_reports_and_retires(cli_db: str, master: MasterKey) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["keys", "rotate", "t1", "--url", cli_db, "--column", "app_users.phone",
                                 "--column", "app_users.email=app_users.email", "--batch-size", "3"])
    assert result.exit_code == 0, result.output
    assert "已完成租户 t1 的密钥轮换：当前版本 2" in result.stdout
    assert "app_users.phone：重新加密 7 行" in result.stdout and "已停用旧版本：1" in result.stdout
    check_all_rotated(cli_db, cli_db, master, 8)


def test_cli_rotate_errors_are_chinese_and_exit_non_zero(cli_db: str) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["keys", "rotate", "t1", "--url", cli_db, "--column", "phone"])
    assert result.exit_code == 1 and "未指明所在的表" in result.stderr
    result = runner.invoke(app, ["keys", "rotate", "nobody", "--url", cli_db])
    assert result.exit_code == 1 and "yinsi keys create nobody" in result.stderr


def test_a_resumed_rotation_must_cover_the_columns_it_started_with(tmp_path: Path, master: MasterKey) -> None:
    url = f"sqlite:///{tmp_path / 'y.db'}"
    seed(url, url, master, 10)

    def stop(p: ColumnProgress) -> None:
        if p.label == "app_users.phone" and p.seen:
            raise KeyboardInterrupt

    with KeyRing.open(url, master) as ring:
        with pytest.raises(KeyboardInterrupt):
            rotate_data_key(ring, "t1", targets(ring), batch_size=3, on_progress=stop)
        only_registry = [RotationTarget(ring.engine, c) for c in registered_columns()]
        with pytest.raises(RotationError, match=r"app_users\.phone"):
            rotate_data_key(ring, "t1", only_registry)
        assert {(k.version, k.status) for k in ring.list_keys("t1") if k.purpose == "data"} == {
            (1, "retiring"), (2, "active")}
        rotate_data_key(ring, "t1", targets(ring))
    check_all_rotated(url, url, master, 10)


def test_ctrl_c_stops_with_a_message_and_the_next_run_finishes(tmp_path: Path, master: MasterKey) -> None:
    url = f"sqlite:///{tmp_path / 'yinsi.db'}"
    seed(url, url, master, 60)
    env = {**os.environ, MASTER_KEY_ENV: base64.b64encode(master.material).decode()}
    cmd = [sys.executable, "-c", "from yinsi.cli.main import app; app()",
           *_rotate_cmd(url, url, "--batch-size", "10", "--pause", "0.3")]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while _progress(url) < 20:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "再次运行同一命令即可从中断处继续" in err and "Traceback" not in err
    result = CliRunner().invoke(app, _rotate_cmd(url, url), env=env)
    assert result.exit_code == 0 and "已继续完成" in result.stdout
    check_all_rotated(url, url, master, 60)


def test_endless_old_version_writers_make_the_rotation_give_up_then_resume(
        tmp_path: Path, master: MasterKey, monkeypatch: pytest.MonkeyPatch) -> None:
    from yinsi.protect import rotation

    monkeypatch.setattr(rotation, "MAX_PASSES", 2)
    url = f"sqlite:///{tmp_path / 'y.db'}"
    seed(url, url, master, 6)
    engine = make_engine(url)
    table = app_users_table(MetaData())
    stale_ring = KeyRing.open(url, master, active_ttl=3600)
    stale = FieldCipher("t1", stale_ring)
    stale.encrypt("app_users.phone", "warm the cache")

    def keep_writing(p: ColumnProgress) -> None:
        if p.label == "app_users.phone" and p.seen:
            with engine.begin() as conn:
                conn.execute(table.update().where(table.c.id == 0)
                             .values(phone=stale.encrypt("app_users.phone", phone_of(0))))

    with KeyRing.open(url, master) as ring:
        with pytest.raises(RotationError, match="经过 2 遍"):
            rotate_data_key(ring, "t1", targets(ring), batch_size=4, on_progress=keep_writing)
        assert running_rotation(ring, "t1") is not None
        result = rotate_data_key(ring, "t1", targets(ring), batch_size=4)  # the writer has stopped
    assert result.resumed and result.retired_versions == [1]
    stale_ring.close()
    engine.dispose()
    check_all_rotated(url, url, master, 6)
