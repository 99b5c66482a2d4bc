"""The master key, wrapped tenant keys in Yinsi's database, blind indexes, pseudonyms and protected
identifiers — on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from yinsi.protect.crypto import Algorithm, Header, read_header
from yinsi.protect.errors import InvalidCiphertext, InvalidIdentifier, KeyNotFound, MasterKeyError, UnknownTenant
from yinsi.protect.identifiers import find_subjects, forget_identifiers, reveal_identifier, store_identifier
from yinsi.protect.keys import (
    MASTER_KEY_ENV,
    MASTER_KEY_FILE_ENV,
    KeyRing,
    MasterKey,
    Suite,
    create_master_key_file,
    load_master_key,
    master_key_path,
)
from yinsi.protect.pseudonyms import is_pseudonym
from yinsi.storage import Tenant, make_engine, make_session_factory
from yinsi.storage.keys_tables import DataKeyRow, SubjectIdentifierRow

pytestmark = pytest.mark.usefixtures("isolated_env")

T0 = datetime(2024, 3, 1, tzinfo=UTC)
PHONES = ["13800138000", "13912345678", "18600001111", "15011112222", "17722223333"]


def add_tenants(url: str, *ids: str) -> None:
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session, session.begin():
            for tid in ids:
                session.add(Tenant(id=tid, name=f"{tid} 应用", created_at=T0))
    finally:
        engine.dispose()


@pytest.fixture
def master() -> MasterKey:
    return MasterKey(os.urandom(32), "test")


def _ring(url: str, master: MasterKey) -> Iterator[KeyRing]:
    add_tenants(url, "t1", "t2", "gm")
    with KeyRing.open(url, master) as r:
        r.provision("t1")
        r.provision("t2")
        r.provision("gm", Suite.SM)
        yield r


@pytest.fixture
def ring(migrated_url: str, master: MasterKey) -> Iterator[KeyRing]:
    """Tenants t1, t2 (standard suite) and gm (SM suite), on each backend."""
    yield from _ring(migrated_url, master)


@pytest.fixture
def sring(tmp_path: Path, master: MasterKey) -> Iterator[KeyRing]:
    """As ``ring``, on SQLite only (for what does not depend on the backend)."""
    from yinsi.storage import upgrade

    url = f"sqlite:///{tmp_path / 'k.db'}"
    upgrade(url)
    yield from _ring(url, master)


# --- the master key ---------------------------------------------------------------------------------


def test_keys_init_file_is_0600_and_never_overwritten(isolated_env: Path) -> None:
    key = create_master_key_file()
    path = isolated_env / "master.key"
    assert key.source == str(path) and master_key_path() == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(base64.b64decode(path.read_text().strip())) == 32
    assert load_master_key() == key
    with pytest.raises(MasterKeyError, match="不会覆盖"):
        create_master_key_file()
    assert load_master_key() == key


def test_master_key_file_readable_by_others_is_refused(isolated_env: Path) -> None:
    create_master_key_file()
    (isolated_env / "master.key").chmod(0o644)
    with pytest.raises(MasterKeyError, match="chmod 600"):
        load_master_key()


def test_master_key_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    raw = os.urandom(32)
    monkeypatch.setenv(MASTER_KEY_ENV, base64.b64encode(raw).decode())
    assert load_master_key().material == raw
    monkeypatch.setenv(MASTER_KEY_ENV, base64.b64encode(os.urandom(16)).decode())
    with pytest.raises(MasterKeyError, match="32 字节"):
        load_master_key()
    monkeypatch.setenv(MASTER_KEY_ENV, "not base64!!")
    with pytest.raises(MasterKeyError, match="base64"):
        load_master_key()
    monkeypatch.setenv(MASTER_KEY_ENV, base64.b64encode(raw).decode())
    monkeypatch.setenv(MASTER_KEY_FILE_ENV, str(tmp_path / "k"))
    with pytest.raises(MasterKeyError, match="只能设置其中一个"):
        load_master_key()


def test_master_key_file_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(MASTER_KEY_FILE_ENV, str(tmp_path / "keys" / "yinsi.key"))
    with pytest.raises(MasterKeyError, match="yinsi keys init"):
        load_master_key()
    key = create_master_key_file()
    assert key.source == str(tmp_path / "keys" / "yinsi.key")
    assert load_master_key() == key


def test_master_key_is_never_printed(master: MasterKey) -> None:
    assert master.material.hex() not in repr(master) and str(master.material) not in repr(master)
    assert len(master.fingerprint) == 16


# --- tenant keys in the database --------------------------------------------------------------------


def test_tenant_keys_are_stored_wrapped(ring: KeyRing, migrated_url: str) -> None:
    rows = ring.list_keys()
    assert {(k.tenant, k.purpose, k.version, k.algorithm, k.status) for k in rows} == {
        ("t1", "data", 1, "aes-256-gcm", "active"), ("t1", "index", 1, "hmac-sha256", "active"),
        ("t1", "pseudonym", 1, "hmac-sha256", "active"),
        ("t2", "data", 1, "aes-256-gcm", "active"), ("t2", "index", 1, "hmac-sha256", "active"),
        ("t2", "pseudonym", 1, "hmac-sha256", "active"),
        ("gm", "data", 1, "sm4-gcm", "active"), ("gm", "index", 1, "hmac-sm3", "active"),
        ("gm", "pseudonym", 1, "hmac-sm3", "active"),
    }
    assert {k.master_key_id for k in rows} == {ring.master_key.fingerprint}
    key = ring.active_data_key("t1").material
    with ring.session() as session:
        wrapped = [bytes(w) for w in session.scalars(select(DataKeyRow.wrapped_key))]
    assert all(key not in w for w in wrapped)
    assert ring.suite("gm") is Suite.SM and ring.suite("t1") is Suite.STANDARD
    assert ring.provision("t1", Suite.SM) is False  # idempotent; the suite does not change


def test_field_cipher_from_the_ring(ring: KeyRing) -> None:
    token = ring.cipher("t1").encrypt("users.phone", "13800138000")
    assert read_header(token) == Header(Algorithm.AES_256_GCM, 1)
    assert ring.cipher("t1").decrypt("users.phone", token) == "13800138000"
    gm = ring.cipher("gm").encrypt("users.phone", "13800138000")
    assert read_header(gm) == Header(Algorithm.SM4_GCM, 1)
    assert ring.cipher("gm").decrypt("users.phone", gm) == "13800138000"
    with pytest.raises(InvalidCiphertext, match="t2"):
        ring.cipher("t2").decrypt("users.phone", token)


def test_keys_survive_a_new_process_with_the_same_master_key(sring: KeyRing, tmp_path: Path,
                                                             master: MasterKey) -> None:
    token = sring.cipher("t1").encrypt("f", "𠮷野家")
    with KeyRing.open(f"sqlite:///{tmp_path / 'k.db'}", MasterKey(master.material, "again")) as again:
        assert again.cipher("t1").decrypt("f", token) == "𠮷野家"
        assert again.blind_index("t1", "phone", "13800138000") == sring.blind_index("t1", "phone", "13800138000")


def test_wrong_master_key_fails_loudly(ring: KeyRing, migrated_url: str) -> None:
    token = ring.cipher("t1").encrypt("f", "x")
    with pytest.raises(MasterKeyError, match=r"主密钥不对.*YINSI_MASTER_KEY_FILE"):  # at start, saying what to do
        KeyRing.open(migrated_url, MasterKey(os.urandom(32), "another"))
    wrong = KeyRing(ring._sessions, MasterKey(os.urandom(32), "another"))  # built without open(): checked on use
    with pytest.raises(MasterKeyError, match="主密钥不对"):
        wrong.cipher("t1").decrypt("f", token)
    with pytest.raises(MasterKeyError):
        wrong.blind_index("t1", "phone", "13800138000")


def test_wrapped_key_moved_to_another_tenant_fails(ring: KeyRing, migrated_url: str, master: MasterKey) -> None:
    """Copying t2's wrapped data key over t1's does not make t1 decrypt with t2's key: unwrapping fails."""
    with ring.session() as session, session.begin():
        theirs = session.get(DataKeyRow, ("t2", "data", 1))
        assert theirs is not None
        session.execute(update(DataKeyRow).where(DataKeyRow.tenant_id == "t1", DataKeyRow.purpose == "data")
                        .values(wrapped_key=bytes(theirs.wrapped_key)))
    with KeyRing.open(migrated_url, master) as fresh, pytest.raises(InvalidCiphertext, match="无法解封"):
        fresh.cipher("t1").encrypt("f", "x")


def test_unknown_tenant_and_missing_keys(sring: KeyRing) -> None:
    with pytest.raises(UnknownTenant, match="nobody"):
        sring.provision("nobody")
    with pytest.raises(KeyNotFound, match="yinsi keys create"):
        sring.cipher("nobody").encrypt("f", "x")
    token = sring.cipher("t1").encrypt("f", "x")
    bad = bytearray(token)
    bad[4:8] = (99).to_bytes(4, "big")
    with pytest.raises(InvalidCiphertext, match="没有密钥版本 99"):
        sring.cipher("t1").decrypt("f", bytes(bad))


def test_new_version_is_used_and_old_versions_still_decrypt(ring: KeyRing) -> None:
    old = ring.cipher("t1").encrypt("f", "13800138000")
    key = ring.add_data_key_version("t1", Algorithm.SM4_GCM)
    assert key.version == 2
    new = ring.cipher("t1").encrypt("f", "13800138000")
    assert read_header(new) == Header(Algorithm.SM4_GCM, 2)
    assert ring.cipher("t1").decrypt("f", old) == ring.cipher("t1").decrypt("f", new) == "13800138000"
    statuses = {(k.version, k.status) for k in ring.list_keys("t1") if k.purpose == "data"}
    assert statuses == {(1, "retiring"), (2, "active")}


def test_other_processes_pick_up_a_new_version_after_the_ttl(sring: KeyRing, tmp_path: Path,
                                                             master: MasterKey) -> None:
    with KeyRing.open(f"sqlite:///{tmp_path / 'k.db'}", master, active_ttl=0.0) as other:
        assert read_header(other.cipher("t1").encrypt("f", "x")).key_version == 1
        sring.add_data_key_version("t1")
        assert read_header(other.cipher("t1").encrypt("f", "x")).key_version == 2


# --- blind indexes and pseudonyms -------------------------------------------------------------------


def test_blind_index_is_equal_for_formatted_variants_of_one_phone(sring: KeyRing) -> None:
    variants = ["13800138000", "+86 138 0013 8000", "+86-138-0013-8000", "0086 13800138000", "8613800138000",
                "１３８００１３８０００", "(+86) 138-0013-8000", "138 0013 8000"]
    indexes = {sring.blind_index("t1", "mobile_phone", v) for v in variants}
    assert len(indexes) == 1
    index = indexes.pop()
    assert len(index) == 32 and int(index, 16) >= 0  # 16 bytes, hex
    assert sring.blind_index("t1", "phone", "13800138000") == index  # alias
    assert sring.blind_index("t1", "mobile_phone", "13800138001") != index


def test_blind_index_differs_across_tenants_kinds_and_suites(sring: KeyRing) -> None:
    t1 = sring.blind_index("t1", "mobile_phone", "13800138000")
    assert sring.blind_index("t2", "mobile_phone", "13800138000") != t1
    assert sring.blind_index("gm", "mobile_phone", "13800138000") != t1
    assert sring.blind_index("t1", "text", "13800138000") != t1


def test_blind_index_of_id_numbers_and_emails(sring: KeyRing) -> None:
    assert sring.blind_index("t1", "id_card", "11010519491231002x") == sring.blind_index("t1", "id", "11010519491231002X")
    # the 15-digit form of an ID number is the same person as its 18-digit form
    assert sring.blind_index("t1", "id_card", "110105491231002") == sring.blind_index("t1", "id_card", "11010519491231002X")
    email = sring.blind_index("t1", "email", "zhang.san@example.com")
    assert sring.blind_index("t1", "email", " Zhang.San@Example.COM ") == email
    with pytest.raises(InvalidIdentifier) as info:
        sring.blind_index("t1", "mobile_phone", "12345")
    assert "12345" not in str(info.value)
    with pytest.raises(ValueError, match="unknown blind-index kind"):
        sring.blind_index("t1", "shoe_size", "42")


def test_blind_index_is_stable_across_data_key_rotation(sring: KeyRing) -> None:
    before = sring.blind_index("t1", "mobile_phone", "13800138000")
    sring.add_data_key_version("t1")
    sring.forget()
    assert sring.blind_index("t1", "mobile_phone", "13800138000") == before


def test_pseudonyms_are_stable_per_tenant_and_unlinkable_across_tenants(sring: KeyRing) -> None:
    p1 = sring.pseudonymise("t1", "user-42")
    assert is_pseudonym(p1) and len(p1) == 28 and p1.startswith("p_")
    assert sring.pseudonymise("t1", "user-42") == p1
    sring.add_data_key_version("t1")
    assert sring.pseudonymise("t1", "user-42") == p1
    assert sring.pseudonymise("t2", "user-42") != p1
    assert sring.pseudonymise("gm", "user-42") not in (p1, sring.pseudonymise("t2", "user-42"))
    assert sring.pseudonymise("t1", "user-43") != p1
    assert "user-42" not in p1


# --- protected identifiers --------------------------------------------------------------------------


def test_identifiers_are_found_by_blind_index_and_revealed_by_decryption(ring: KeyRing) -> None:
    store_identifier(ring, "t1", "u1", "phone", "+86 138-0013-8000")
    store_identifier(ring, "t1", "u2", "mobile_phone", "13912345678")
    store_identifier(ring, "t2", "u9", "mobile_phone", "13800138000")
    assert find_subjects(ring, "t1", "mobile_phone", "138 0013 8000") == ["u1"]
    assert find_subjects(ring, "t2", "phone", "13800138000") == ["u9"]
    assert find_subjects(ring, "t1", "phone", "18600001111") == []
    assert reveal_identifier(ring, "t1", "u1", "phone") == "13800138000"
    assert reveal_identifier(ring, "t1", "u1", "email") is None
    store_identifier(ring, "t1", "u1", "phone", "18600001111")  # replaced
    assert find_subjects(ring, "t1", "phone", "18600001111") == ["u1"]
    assert find_subjects(ring, "t1", "phone", "13800138000") == []
    assert forget_identifiers(ring, "t1", "u1") == 1
    assert reveal_identifier(ring, "t1", "u1", "phone") is None


def test_identifier_rows_cannot_be_swapped_between_tenants(sring: KeyRing) -> None:
    store_identifier(sring, "t1", "u1", "phone", "13800138000")
    store_identifier(sring, "t2", "u1", "phone", "13912345678")
    with sring.session() as session, session.begin():
        # rows are keyed by each tenant's pseudonym of the subject id (issue 11)
        mine = session.get(SubjectIdentifierRow, ("t1", sring.pseudonymise("t1", "u1"), "mobile_phone"))
        theirs = session.get(SubjectIdentifierRow, ("t2", sring.pseudonymise("t2", "u1"), "mobile_phone"))
        assert mine is not None and theirs is not None
        theirs.ciphertext = bytes(mine.ciphertext)
    with pytest.raises(InvalidCiphertext):
        reveal_identifier(sring, "t2", "u1", "phone")


def test_yinsi_database_file_holds_no_plaintext_identifiers(tmp_path: Path, master: MasterKey) -> None:
    """Seeded phone numbers, ID numbers and e-mails go in through the API; the raw SQLite file (and its
    WAL/journal, if any) contains none of them in any common form."""
    from yinsi.storage import upgrade

    db = tmp_path / "yinsi.db"
    url = f"sqlite:///{db}"
    upgrade(url)
    add_tenants(url, "t1", "gm")
    values = {"mobile_phone": PHONES, "id_card": ["11010519491231002X", "440305199001011234"],
              "email": ["zhang.san@example.com", "li.si@example.cn"]}
    with KeyRing.open(url, master) as ring:
        ring.provision("t1")
        ring.provision("gm", Suite.SM)
        for tenant in ("t1", "gm"):
            for kind, items in values.items():
                for i, value in enumerate(items):
                    store_identifier(ring, tenant, f"{kind}-{i}", kind, value)
            assert find_subjects(ring, tenant, "phone", PHONES[2]) == ["mobile_phone-2"]
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM subject_identifiers")).scalar_one() == 18
    engine.dispose()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("yinsi.db"))
    assert len(raw) > 0
    for items in values.values():
        for value in items:
            for form in {value, value[:3] + " " + value[3:7] + " " + value[7:], value.lower()}:
                assert form.encode("utf-8") not in raw, form
                assert form.encode("utf-16-le") not in raw, form
    assert b"13800138000" not in raw and master.material not in raw
