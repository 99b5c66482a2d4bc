"""Engine and session factories for SQLite, PostgreSQL and MariaDB/MySQL."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from yinsi.storage.errors import DatabaseUnavailable, InvalidDatabaseUrl

#: Seconds to wait for a database server before reporting it unreachable.
CONNECT_TIMEOUT = 10

_DRIVER_HINT = {
    "postgresql": "pip install 'yinsi[postgres]'（psycopg 3）",
    "mysql": "pip install 'yinsi[mysql]'（PyMySQL）",
    "mariadb": "pip install 'yinsi[mysql]'（PyMySQL）",
}


def parse_url(url: str | URL) -> URL:
    """Parse a database URL; for MySQL/MariaDB make sure the connection charset is ``utf8mb4``.

    A URL without ``charset`` gets ``charset=utf8mb4``; any other charset is refused, because MySQL's
    ``utf8`` (utf8mb3) cannot store 4-byte characters such as 𠮷 and would corrupt names and policy text.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise InvalidDatabaseUrl(f"数据库地址无效：{url}（{exc}）") from None
    if parsed.get_backend_name() in ("mysql", "mariadb"):
        charset = parsed.query.get("charset")
        if charset is None:
            parsed = parsed.update_query_dict({"charset": "utf8mb4"})
        elif charset != "utf8mb4":
            raise InvalidDatabaseUrl(
                f"MySQL/MariaDB 连接必须使用 charset=utf8mb4（地址中为 charset={charset}），"
                "否则无法保存“𠮷”等四字节汉字"
            )
    return parsed


def display_url(url: str | URL) -> str:
    """The URL with its password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return str(url)


def _create_private_file(path: Path) -> None:
    """Create a SQLite database file 0600 (its directory 0700) before SQLite would create it 0644: it holds
    PI (and SQLite gives its journal and WAL files the database file's permissions)."""
    from yinsi.config import make_private_dir

    make_private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine for ``url``.

    SQLite: the database file is created 0600 (its directory 0700) and foreign keys are enforced. Server databases:
    connections are checked before use and time out after ``CONNECT_TIMEOUT`` seconds. Errors never show
    the statement's parameters (``hide_parameters``), which may be personal information.
    """
    parsed = parse_url(url)
    backend = parsed.get_backend_name()
    connect_args: dict[str, Any] = dict(kwargs.pop("connect_args", {}))
    # A database error's text never carries the statement's parameters (they may be PI: phone numbers,
    # subject ids); the SQL itself is still shown.
    kwargs.setdefault("hide_parameters", True)
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
            _create_private_file(Path(parsed.database).expanduser())
    else:
        kwargs.setdefault("pool_pre_ping", True)
        if "connect_timeout" not in parsed.query:
            connect_args.setdefault("connect_timeout", CONNECT_TIMEOUT)
    try:
        engine = create_engine(parsed, connect_args=connect_args, **kwargs)
    except NoSuchModuleError:
        raise InvalidDatabaseUrl(
            f"不支持的数据库类型：{parsed.drivername}（支持 sqlite、postgresql+psycopg、mysql+pymysql）"
        ) from None
    except ModuleNotFoundError as exc:
        hint = _DRIVER_HINT.get(backend, "")
        raise InvalidDatabaseUrl(
            f"缺少数据库驱动 {exc.name}（{parsed.drivername}）" + (f"；请安装：{hint}" if hint else "")
        ) from None
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_foreign_keys)
    return engine


def ping(engine: Engine) -> None:
    """Open and close one connection; raise ``DatabaseUnavailable`` if the database cannot be reached."""
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        cause = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        raise DatabaseUnavailable(display_url(engine.url), cause) from None


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (they are handed to callers as results)."""
    return sessionmaker(bind=engine, expire_on_commit=False)
