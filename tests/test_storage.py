"""Yinsi's own database: migrations, types, repositories and the unit of work, on all three backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from yinsi import config
from yinsi.storage import (
    Base,
    DatabaseUnavailable,
    InvalidDatabaseUrl,
    PolicyVersion,
    SchemaNotCurrent,
    StorageError,
    Tenant,
    UnitOfWork,
    current,
    display_url,
    downgrade,
    ensure_current,
    head,
    make_engine,
    make_session_factory,
    parse_url,
    upgrade,
)
from yinsi.storage import migrate as _migrate_module
from yinsi.storage.migrate import VERSION_TABLE

from .conftest import scratch_database

pytestmark = pytest.mark.usefixtures("isolated_env")

T0 = datetime(2024, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:
    eng = make_engine(migrated_url)
    try:
        yield eng
    finally:
        eng.dispose()


def _version(tenant: Tenant, label: str, *, effective: date | None, at: datetime = T0) -> PolicyVersion:
    return PolicyVersion(
        tenant=tenant, label=label, app_name="示例应用", controller_name="示例科技有限公司",
        effective_date=effective, updated_date=None, declaration_yaml="tenant: x\n", declaration_hash="0" * 64,
        rendered_markdown="# 政策\n", rendered_hash="1" * 64, lint_errors=0, lint_warnings=1,
        published_at=at, published_by=None,
    )


MIGRATIONS = Path(_migrate_module.__file__).parent / "migrations" / "versions"


# --- migrations ---------------------------------------------------------------------------------


def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    assert current(db_url) is None
    upgrade(db_url)
    assert current(db_url) == head()
    # every migration in versions/ is part of one linear chain ending at the head (numbers are reserved per
    # issue, so the head need not be the highest number)
    from alembic.script import ScriptDirectory

    from yinsi.storage.migrate import alembic_config

    chain = [r.revision for r in ScriptDirectory.from_config(alembic_config(db_url)).walk_revisions()]
    assert chain[0] == head()
    assert sorted(chain) == sorted(p.stem.split("_")[0] for p in MIGRATIONS.glob("0*.py"))
    eng = make_engine(db_url)
    try:
        tables = set(inspect(eng).get_table_names())
        assert {"tenants", "policy_versions", VERSION_TABLE} <= tables
        columns = {c["name"] for c in inspect(eng).get_columns("policy_versions")}
        assert {"tenant_id", "label", "declaration_yaml", "declaration_hash", "rendered_markdown",
                "rendered_hash", "lint_errors", "lint_warnings", "published_at", "published_by"} <= columns
        uniques = inspect(eng).get_unique_constraints("policy_versions")
        assert any(set(u["column_names"]) == {"tenant_id", "label"} for u in uniques)

        downgrade(db_url)
        assert current(db_url) is None
        inspect(eng).clear_cache()
        assert not {"tenants", "policy_versions"} & set(inspect(eng).get_table_names())

        upgrade(db_url)
        assert current(db_url) == head()
        upgrade(db_url)  # already at head: a no-op
        assert current(db_url) == head()
    finally:
        eng.dispose()


def test_models_match_migrations(engine: Engine) -> None:
    """The ORM tables and the migrated schema agree (a forgotten migration shows up here)."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE, "compare_type": True})
        diffs = compare_metadata(ctx, Base.metadata)
    assert diffs == []


@pytest.mark.mariadb
def test_mariadb_tables_are_utf8mb4() -> None:
    """Even in a database whose default charset is latin1 (see ``scratch_database``)."""
    with scratch_database("mariadb") as url:
        upgrade(url)
        engine = make_engine(url)
        try:
            _check_mariadb_tables(engine)
        finally:
            engine.dispose()


def _check_mariadb_tables(engine: Engine) -> None:
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT TABLE_NAME, TABLE_COLLATION, ENGINE FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('tenants', 'policy_versions')"
        )).all()
        assert {r[1] for r in rows} == {"utf8mb4_bin"} and {r[2] for r in rows} == {"InnoDB"}
        types = dict(conn.execute(text(
            "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'policy_versions'"
        )).all())
    assert types["declaration_yaml"] == "longtext" and types["rendered_markdown"] == "longtext"


def test_ensure_current(db_url: str) -> None:
    with pytest.raises(SchemaNotCurrent, match="yinsi db upgrade"):
        ensure_current(db_url)
    ensure_current(db_url, auto_upgrade=True)
    assert current(db_url) == head()
    ensure_current(db_url)


def test_unknown_newer_revision_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    upgrade(url)
    eng = make_engine(url)
    with eng.begin() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    eng.dispose()
    with pytest.raises(StorageError, match="9999"):
        ensure_current(url)
    with pytest.raises(StorageError, match="9999"):
        upgrade(url)


def test_current_does_not_create_a_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "absent" / "x.db"
    assert current(f"sqlite:///{path}") is None
    assert not path.exists()


def test_upgrade_works_from_any_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    upgrade(f"sqlite:///{tmp_path / 'cwd.db'}")
    assert current(f"sqlite:///{tmp_path / 'cwd.db'}") == head()


# --- engine and URLs ----------------------------------------------------------------------------


def test_mysql_urls_get_utf8mb4() -> None:
    assert parse_url("mysql+pymysql://u@h/db").query["charset"] == "utf8mb4"
    assert parse_url("mysql+pymysql://u@h/db?charset=utf8mb4").query["charset"] == "utf8mb4"
    assert parse_url("mariadb+pymysql://u@h/db").query["charset"] == "utf8mb4"
    with pytest.raises(InvalidDatabaseUrl, match="utf8mb4"):
        parse_url("mysql+pymysql://u@h/db?charset=utf8")
    assert "charset" not in parse_url("postgresql+psycopg://u@h/db").query


def test_bad_urls() -> None:
    with pytest.raises(InvalidDatabaseUrl, match="数据库地址无效"):
        make_engine("not a url")
    with pytest.raises(InvalidDatabaseUrl, match="不支持的数据库类型"):
        make_engine("nosuchdb://h/db")


def test_display_url_hides_password() -> None:
    shown = display_url("postgresql+psycopg://yinsi:s3cret@db:5432/yinsi")
    assert shown == "postgresql+psycopg://yinsi:***@db:5432/yinsi"


def test_unreachable_server_is_a_chinese_error() -> None:
    url = "postgresql+psycopg://nobody:pw@127.0.0.1:1/none"
    with pytest.raises(DatabaseUnavailable, match="无法连接数据库") as info:
        current(url)
    assert "pw" not in str(info.value).replace("psycopg", "")
    with pytest.raises(DatabaseUnavailable):
        upgrade(url)


# --- config -------------------------------------------------------------------------------------


def test_config_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("YINSI_DATA_DIR")
    monkeypatch.chdir(tmp_path)
    url = config.database_url()
    assert url == f"sqlite:///{(tmp_path / '.yinsi' / 'yinsi.db').resolve().as_posix()}"
    assert (tmp_path / ".yinsi").is_dir()
    assert config.is_default_database(url)

    monkeypatch.setenv("YINSI_DATA_DIR", str(tmp_path / "elsewhere"))
    assert config.database_url().endswith("/elsewhere/yinsi.db")
    assert not config.is_default_database(url)

    monkeypatch.setenv("YINSI_DATABASE_URL", "postgresql+psycopg://u@h/db")
    assert config.database_url() == "postgresql+psycopg://u@h/db"
    assert not config.is_default_database(config.database_url())


# --- types, repositories, unit of work ----------------------------------------------------------


def test_timestamps_are_utc_with_microseconds(engine: Engine) -> None:
    factory = make_session_factory(engine)
    beijing = T0.astimezone(timezone(timedelta(hours=8)))
    with UnitOfWork(factory) as uow:
        uow.tenants.add(Tenant(id="a", name="甲", created_at=beijing))
        uow.commit()
    with UnitOfWork(factory) as uow:
        tenant = uow.tenants.get("a")
        assert tenant is not None
        assert tenant.created_at == T0 and tenant.created_at.utcoffset() == timedelta(0)


def test_naive_timestamps_are_refused(engine: Engine) -> None:
    with UnitOfWork(make_session_factory(engine)) as uow:
        uow.tenants.add(Tenant(id="a", name="甲", created_at=datetime(2024, 1, 1)))
        with pytest.raises(Exception, match="timezone-aware"):
            uow.commit()


def test_unit_of_work_rolls_back_without_commit(engine: Engine) -> None:
    factory = make_session_factory(engine)
    with UnitOfWork(factory) as uow:
        uow.tenants.add(Tenant(id="a", name="甲", created_at=T0))
    with pytest.raises(RuntimeError), UnitOfWork(factory) as uow:
        uow.tenants.add(Tenant(id="b", name="乙", created_at=T0))
        uow.flush()
        raise RuntimeError("boom")
    with UnitOfWork(factory) as uow:
        assert uow.tenants.get("a") is None and uow.tenants.get("b") is None


def test_repository_filters_by_tenant_and_orders(engine: Engine) -> None:
    factory = make_session_factory(engine)
    with UnitOfWork(factory) as uow:
        a, b = Tenant(id="a", name="甲", created_at=T0), Tenant(id="b", name="乙", created_at=T0)
        uow.tenants.add(a)
        uow.tenants.add(b)
        uow.versions.add(_version(a, "v2", effective=date(2024, 6, 1), at=T0))
        uow.versions.add(_version(a, "v1", effective=date(2023, 1, 1), at=T0 + timedelta(seconds=1)))
        # no effective date: placed by its publication date (2024-03-01)
        uow.versions.add(_version(a, "v-undated", effective=None, at=T0 + timedelta(seconds=2)))
        uow.versions.add(_version(b, "v1", effective=date(2030, 1, 1)))
        uow.commit()
    with UnitOfWork(factory) as uow:
        assert [v.label for v in uow.versions.list_for_tenant("a")] == ["v1", "v-undated", "v2"]
        assert [v.label for v in uow.versions.list_for_tenant("b")] == ["v1"]
        assert all(v.tenant_id == "a" for v in uow.versions.list_for_tenant("a"))
        latest = uow.versions.latest("a")
        assert latest is not None and latest.label == "v2"
        got = uow.versions.get("b", "v1")
        assert got is not None and got.tenant_id == "b" and got.effective_date == date(2030, 1, 1)
        assert uow.versions.get("b", "v2") is None
        assert uow.versions.list_for_tenant("c") == [] and uow.versions.latest("c") is None


def test_label_is_unique_per_tenant(engine: Engine) -> None:
    from sqlalchemy.exc import IntegrityError

    factory = make_session_factory(engine)
    with UnitOfWork(factory) as uow:
        a = Tenant(id="a", name="甲", created_at=T0)
        uow.versions.add(_version(a, "v1", effective=None))
        uow.commit()
    with UnitOfWork(factory) as uow:
        a2 = uow.tenants.get("a")
        assert a2 is not None
        uow.versions.add(_version(a2, "v1", effective=None))
        with pytest.raises(IntegrityError):
            uow.commit()


def test_labels_compare_exactly(engine: Engine) -> None:
    """Case and width matter on every backend (MariaDB uses the binary collation)."""
    factory = make_session_factory(engine)
    with UnitOfWork(factory) as uow:
        a = Tenant(id="a", name="甲", created_at=T0)
        uow.versions.add(_version(a, "V1", effective=None))
        uow.versions.add(_version(a, "v1", effective=None))
        uow.commit()
    with UnitOfWork(factory) as uow:
        got = uow.versions.get("a", "v1")
        assert got is not None and got.label == "v1"
        assert uow.versions.get("A", "v1") is None
