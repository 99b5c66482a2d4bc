"""Keys fail safe: a lost master key file is never silently replaced, a wrong master key is refused at
start (key check value), and key rotation re-encrypts the packages of rights requests too."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from yinsi.cli.main import app
from yinsi.protect.crypto import read_header
from yinsi.protect.errors import MasterKeyError
from yinsi.protect.keys import KeyRing, MasterKey, create_master_key_file, load_master_key
from yinsi.protect.rotation import RotationTarget, registered_columns, registered_files, rotate_data_key
from yinsi.rights.export import EXPORT_FIELD, write_private
from yinsi.services.audit_trail import AuditTrail, master_key
from yinsi.storage import Tenant, make_engine, make_session_factory, upgrade
from yinsi.storage.keys_tables import DataKeyRow
from yinsi.storage.rights_tables import RightsRequest

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _tenants(url: str, *ids: str) -> None:
    engine = make_engine(url)
    with make_session_factory(engine)() as session, session.begin():
        for tid in ids:
            session.add(Tenant(id=tid, name=f"{tid} 应用", created_at=T0))
    engine.dispose()


@pytest.fixture
def default_db(isolated_env: Path) -> str:
    """The default embedded database with tenant t1's keys wrapped by a master key file in the data dir."""
    url = f"sqlite:///{(isolated_env / 'yinsi.db').as_posix()}"
    upgrade(url)
    _tenants(url, "t1", "t2")
    create_master_key_file()
    with KeyRing.open(url) as ring:
        ring.provision("t1")
    return url


def _fingerprints(url: str) -> set[str]:
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        found = set(session.scalars(select(DataKeyRow.master_key_id)).all())
    engine.dispose()
    return found


def test_a_lost_master_key_file_is_not_replaced_by_a_new_one(default_db: str, isolated_env: Path) -> None:
    key_file = isolated_env / "master.key"
    before = _fingerprints(default_db)
    key_file.unlink()
    with pytest.raises(MasterKeyError, match=r"不会新建主密钥.*YINSI_MASTER_KEY_FILE"):
        master_key()  # what every audited command asks first
    engine = make_engine(default_db)
    with pytest.raises(MasterKeyError, match="不会新建主密钥"):
        _ = AuditTrail(make_session_factory(engine)).ring
    engine.dispose()
    result = CliRunner().invoke(app, ["keys", "init"])
    assert result.exit_code != 0 and "不会新建主密钥" in result.stderr and "Traceback" not in result.output
    assert not key_file.exists() and _fingerprints(default_db) == before


def test_a_new_installation_still_gets_its_master_key(isolated_env: Path) -> None:
    url = f"sqlite:///{(isolated_env / 'yinsi.db').as_posix()}"
    upgrade(url)  # a database without keys
    key = master_key()
    assert (isolated_env / "master.key").exists() and load_master_key() == key
    assert stat.S_IMODE((isolated_env / "master.key").stat().st_mode) == 0o600


def test_a_wrong_master_key_is_refused_at_start_and_wraps_nothing(default_db: str, isolated_env: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    before = _fingerprints(default_db)
    other = isolated_env / "other.key"
    create_master_key_file(other)
    monkeypatch.setenv("YINSI_MASTER_KEY_FILE", str(other))
    with pytest.raises(MasterKeyError, match="主密钥不对") as caught:
        KeyRing.open(default_db)
    message = str(caught.value)
    assert "YINSI_MASTER_KEY_FILE" in message and next(iter(before)) in message
    engine = make_engine(default_db)
    ring = KeyRing(make_session_factory(engine), load_master_key())
    with pytest.raises(MasterKeyError, match="主密钥不对"):
        ring.provision("t2")  # a second master key's keys beside the first's would be a mess
    engine.dispose()
    assert _fingerprints(default_db) == before
    result = CliRunner().invoke(app, ["keys", "list", "--url", default_db])
    assert result.exit_code == 1 and "主密钥不对" in result.stderr and "Traceback" not in result.output


def _request_with_package(url: str, ring: KeyRing, tenant: str, rid: str, path: Path, content: bytes) -> None:
    write_private(path, ring.cipher(tenant).encrypt_bytes(EXPORT_FIELD, content))
    with ring.session() as session, session.begin():
        session.add(RightsRequest(
            id=rid, tenant_id=tenant, subject_kind="user", subject_id="u1", type="copy", state="done",
            channel="app", requester="self", identity_encrypted=None, policy_label="v1", received_at=T0,
            due_date=date(2024, 3, 20), deadline_rule="R1", deadline_explanation="", deadline_provisional=False,
            details_encrypted=None, plan_encrypted=None, confirmed_at=None, lease_owner=None, lease_until=None,
            refusal_ground=None, refusal_detail=None, result=json.dumps({"package": str(path)}), updated_at=T0))


def test_rotation_re_encrypts_the_packages_of_rights_requests(tmp_path: Path, isolated_env: Path) -> None:
    url = f"sqlite:///{(tmp_path / 'y.db').as_posix()}"
    upgrade(url)
    _tenants(url, "t1", "t2")
    master = MasterKey(os.urandom(32), "test")
    elsewhere = tmp_path / "api-exports" / "t1" / "r1.zip.enc"  # a server's own exports directory
    default = isolated_env / "exports" / "t1" / "r2.zip.enc"  # the default one, not in any request row
    theirs = isolated_env / "exports" / "t2" / "r3.zip.enc"
    with KeyRing.open(url, master) as ring:
        for t in ("t1", "t2"):
            ring.provision(t)
        _request_with_package(url, ring, "t1", "r1", elsewhere, b"PK package one")
        write_private(default, ring.cipher("t1").encrypt_bytes(EXPORT_FIELD, b"PK package two"))
        write_private(theirs, ring.cipher("t2").encrypt_bytes(EXPORT_FIELD, b"PK other tenant"))
        theirs_before = theirs.read_bytes()
        assert any(f.field == EXPORT_FIELD for f in registered_files())
        result = rotate_data_key(ring, "t1", [RotationTarget(ring.engine, c) for c in registered_columns()])
        assert result.to_version == 2 and result.retired_versions == [1]
        assert any(c.label.endswith("rights.export") and c.total_reencrypted == 2 for c in result.files)
        for path, content in ((elsewhere, b"PK package one"), (default, b"PK package two")):
            token = path.read_bytes()
            assert read_header(token).key_version == 2
            assert ring.cipher("t1").decrypt_bytes(EXPORT_FIELD, token) == content
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert theirs.read_bytes() == theirs_before  # another tenant's package is not touched
        again = rotate_data_key(ring, "t1", [RotationTarget(ring.engine, c) for c in registered_columns()])
        assert any(c.label.endswith("rights.export") and c.total_reencrypted == 2 for c in again.files)
