"""Schema migrations (Alembic), configured programmatically so they work from any directory.

The migration scripts are package data (``yinsi/storage/migrations``); Alembic's version table is named
``yinsi_alembic_version`` so that Yinsi can share a database with an application that has its own
Alembic history.

Alembic is imported only to migrate: checking that a database is current (what every command and service
does on start) reads the version table and the scripts' revision lines directly, which saves loading
Alembic and every migration script in each process; anything unusual falls back to Alembic.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import URL

from yinsi.storage.engine import display_url, make_engine, parse_url, ping
from yinsi.storage.errors import SchemaNotCurrent, StorageError

PACKAGE_DIR = Path(__file__).resolve().parent
MIGRATIONS_DIR = PACKAGE_DIR / "migrations"
ALEMBIC_INI = PACKAGE_DIR / "alembic.ini"
VERSION_TABLE = "yinsi_alembic_version"

if TYPE_CHECKING:
    from alembic.config import Config


def alembic_config(url: str | URL | None = None, connection: Connection | None = None) -> Config:
    """An Alembic ``Config`` pointing at the packaged migrations.

    With ``connection`` the migrations run on it (inside the caller's transaction); otherwise
    ``env.py`` connects to ``url`` (or, without one, to ``yinsi.config.database_url()``).
    """
    from alembic.config import Config

    cfg = Config(str(ALEMBIC_INI))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if url is not None:
        rendered = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
        cfg.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    cfg.attributes["connection"] = connection
    cfg.attributes["configure_logger"] = False
    return cfg


_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*(?::[^=]*)?=\s*(?:\"([^\"]*)\"|'([^']*)'|None)\s*$", re.MULTILINE)


@cache
def _script_revisions() -> dict[str, str | None] | None:
    """revision → down_revision of the packaged scripts, read from their text; None if a script is not a
    plain ``revision = "…"`` / ``down_revision = "…" | None`` pair (then Alembic is asked)."""
    out: dict[str, str | None] = {}
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        found = {m.group(1): m.group(2) or m.group(3) for m in _REVISION_LINE.finditer(path.read_text(encoding="utf-8"))}
        if set(found) != {"revision", "down_revision"} or not found["revision"]:
            return None
        out[str(found["revision"])] = found["down_revision"]
    return out or None


def head() -> str:
    """The newest revision this version of Yinsi knows."""
    revisions = _script_revisions()
    if revisions is not None:
        heads = set(revisions) - {down for down in revisions.values() if down}
        if len(heads) == 1:
            return heads.pop()
    from alembic.script import ScriptDirectory

    rev = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if rev is None:  # pragma: no cover - the package always ships migrations
        raise StorageError("找不到数据库迁移脚本（安装包不完整）")
    return rev


def _known(rev: str) -> bool:
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

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
            if not inspect(conn).has_table(VERSION_TABLE):
                return None
            rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
            if len(rows) <= 1:
                return str(rows[0]) if rows else None
            from alembic.runtime.migration import MigrationContext  # several heads: let Alembic say so

            return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()
    finally:
        engine.dispose()


def _run(url: str | URL, revision: str, *, up: bool) -> None:
    from alembic import command
    from alembic.util.exc import CommandError

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
