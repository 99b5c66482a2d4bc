"""One name per database, however it is reached (数据库位置的规范化).

The witness store remembers which database each chain lives in, so that a chain deleted and recreated
under the same tenant is noticed. A database reached through a relative path, a symlink, ``localhost``
instead of ``127.0.0.1``, another driver or other credentials is still the same database, and must get
the same name: otherwise an alias would escape the witness.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import URL, make_url

_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]", ""}


def canonical_database(url: URL | str) -> str:
    """``sqlite:///<resolved absolute path>`` for SQLite (symlinks resolved, relative to the working
    directory), ``<backend>://<host>:<port>/<database>`` for servers (driver, user, password and query
    dropped; MariaDB counts as MySQL; local addresses as ``localhost``)."""
    u = make_url(url) if isinstance(url, str) else url
    backend = u.get_backend_name()
    if backend == "sqlite":
        db = u.database or ""
        if db in ("", ":memory:") or (db.startswith("file:") and "mode=memory" in db):
            return "sqlite:///:memory:"
        if db.startswith("file:"):
            db = db[5:].split("?", 1)[0]
        return f"sqlite:///{Path(os.path.realpath(Path(db).expanduser())).as_posix()}"
    if backend == "mariadb":
        backend = "mysql"
    host = (u.host or "").lower()
    if host in _LOCAL_HOSTS:
        host = "localhost"
    port = u.port or _DEFAULT_PORTS.get(backend, 0)
    return f"{backend}://{host}:{port}/{u.database or ''}"


def sqlite_file(url: URL | str) -> Path | None:
    """The resolved file of a SQLite database, else ``None``."""
    name = canonical_database(url)
    if not name.startswith("sqlite:///") or name.endswith(":memory:"):
        return None
    return Path(name[len("sqlite:///"):])


def inside(path: Path, directory: Path) -> bool:
    """Whether ``path`` is ``directory`` or lies under it, after resolving symlinks on both."""
    p, d = Path(os.path.realpath(path)), Path(os.path.realpath(directory))
    return p == d or d in p.parents
