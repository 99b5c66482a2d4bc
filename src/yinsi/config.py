"""Settings from the environment (环境变量配置).

``YINSI_DATA_DIR``
    Where Yinsi keeps its local files. Default: ``./.yinsi`` under the current working directory, so a
    project's data stays next to the project (like ``.git``) and nothing is written to the home directory
    behind the user's back.
``YINSI_DATABASE_URL``
    The SQLAlchemy URL of Yinsi's own database. Default: ``sqlite:///<data dir>/yinsi.db``; the data
    directory is created (0700) when the default is used, and the database file (0600). Examples of other values:
    ``postgresql+psycopg://user:pass@host:5432/yinsi`` or
    ``mysql+pymysql://user:pass@host:3306/yinsi?charset=utf8mb4``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

DATA_DIR_ENV = "YINSI_DATA_DIR"
DATABASE_URL_ENV = "YINSI_DATABASE_URL"
DEFAULT_DATA_DIR_NAME = ".yinsi"
DEFAULT_DB_FILE = "yinsi.db"


def data_dir() -> Path:
    """The data directory (not created here)."""
    configured = os.environ.get(DATA_DIR_ENV, "").strip()
    base = Path(configured).expanduser() if configured else Path.cwd() / DEFAULT_DATA_DIR_NAME
    return base.resolve()


def default_database_url() -> str:
    """The embedded SQLite database in the data directory (the directory is not created here)."""
    return f"sqlite:///{(data_dir() / DEFAULT_DB_FILE).as_posix()}"


def database_url() -> str:
    """The configured database URL; for the default SQLite database the data directory is created."""
    configured = os.environ.get(DATABASE_URL_ENV, "").strip()
    if configured:
        return configured
    make_private_dir(data_dir())
    return default_database_url()


def is_default_database(url: str) -> bool:
    """Whether ``url`` is the default embedded database, which Yinsi creates and migrates by itself."""
    return url == default_database_url()


def make_private_dir(path: Path) -> None:
    """Create ``path`` and its missing parents with mode 0700 (``mkdir -p`` would give parents 0755).
    Existing directories are left as they are."""
    missing: list[Path] = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)
