"""Schema migrations (Alembic), configured programmatically so they work from any directory.

The migration scripts are package data (``yinsi/storage/migrations``); Alembic's version table is named
``yinsi_alembic_version`` so that Yinsi can share a database with an application that has its own
Alembic history.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection
from sqlalchemy.engine import URL

from yinsi.storage.engine import display_url, make_engine, parse_url, ping
from yinsi.storage.errors import SchemaNotCurrent, StorageError

PACKAGE_DIR = Path(__file__).resolve().parent
MIGRATIONS_DIR = PACKAGE_DIR / "migrations"
ALEMBIC_INI = PACKAGE_DIR / "alembic.ini"
VERSION_TABLE = "yinsi_alembic_version"


def alembic_config(url: str | URL | None = None, connection: Connection | None = None) -> Config:
    """An Alembic ``Config`` pointing at the packaged migrations.

    With ``connection`` the migrations run on it (inside the caller's transaction); otherwise
    ``env.py`` connects to ``url`` (or, without one, to ``yinsi.config.database_url()``).
    """
    cfg = Config(str(ALEMBIC_INI))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if url is not None:
        rendered = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
        cfg.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    cfg.attributes["connection"] = connection
    cfg.attributes["configure_logger"] = False
    return cfg


def head() -> str:
    """The newest revision this version of Yinsi knows."""
    rev = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if rev is None:  # pragma: no cover - the package always ships migrations
        raise StorageError("找不到数据库迁移脚本（安装包不完整）")
    return rev


def _known(rev: str) -> bool:
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(rev) is not None
    except CommandError:
        return False


def _newer_error(url: str | URL, rev: str) -> StorageError:
    return StorageError(
        f"数据库 {display_url(url)} 的结构版本 {rev} 不是本程序已知的版本（可能由更新版本的 Yinsi 创建）；"
        "请升级 Yinsi"
    )


def current(url: str | URL) -> str | None:
    """The database's revision, or ``None`` if it has never been migrated.

    A SQLite file that does not exist is reported as ``None`` without being created.
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:" \
            and not parsed.database.startswith("file:") and not Path(parsed.database).expanduser().exists():
        return None
    engine = make_engine(parsed)
    try:
        ping(engine)
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
            return ctx.get_current_revision()
    finally:
        engine.dispose()


def _run(url: str | URL, revision: str, *, up: bool) -> None:
    engine = make_engine(url)
    try:
        ping(engine)
        with engine.begin() as conn:
            cfg = alembic_config(url, conn)
            if up:
                command.upgrade(cfg, revision)
            else:
                command.downgrade(cfg, revision)
    except CommandError as exc:
        rev = current(url)
        if rev is not None and not _known(rev):
            raise _newer_error(url, rev) from None
        raise StorageError(f"数据库迁移失败：{exc}") from None
    finally:
        engine.dispose()


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Create the schema in an empty database, or migrate it to ``revision`` (default: the newest)."""
    _run(url, revision, up=True)


def downgrade(url: str | URL, revision: str = "base") -> None:
    """Migrate down to ``revision``; ``base`` drops every Yinsi table (and its data)."""
    _run(url, revision, up=False)


def ensure_current(url: str | URL, *, auto_upgrade: bool = False) -> None:
    """Make sure the schema is at head: migrate if ``auto_upgrade``, else raise ``SchemaNotCurrent``."""
    rev = current(url)
    target = head()
    if rev == target:
        return
    if rev is not None and not _known(rev):
        raise _newer_error(url, rev)
    if not auto_upgrade:
        raise SchemaNotCurrent(display_url(url), rev, target)
    upgrade(url)
