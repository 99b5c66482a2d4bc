"""Shared fixtures: ``db_url`` runs a test on SQLite, PostgreSQL and MariaDB.

Server databases: each test gets a freshly created, uniquely named database that is dropped afterwards,
so tests never collide and never leave data behind. A server that cannot be reached skips its tests
(``PostgreSQL 不可用: ...``) unless ``YINSI_REQUIRE_SERVICES=1``, in which case they fail.

Server URLs can be changed with ``YINSI_TEST_POSTGRES_URL`` and ``YINSI_TEST_MARIADB_URL``; the user in
them must be allowed to create and drop databases.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError


@dataclass(frozen=True)
class Service:
    """A database server the tests can use."""

    name: str  # as shown to people, e.g. "PostgreSQL"
    url: str  # an existing database the test user can connect to (used to create and drop others)


SERVICES: dict[str, Service] = {
    "postgresql": Service(
        "PostgreSQL",
        os.environ.get("YINSI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    ),
    "mariadb": Service(
        "MariaDB",
        os.environ.get("YINSI_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4"),
    ),
}

_probed: dict[str, str | None] = {}


def probe_service(url: str, timeout: int = 3) -> str | None:
    """``None`` if the server at ``url`` answers a query, else the reason it does not (one line)."""
    if url not in _probed:
        try:
            engine = create_engine(url, connect_args={"connect_timeout": timeout})
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
            finally:
                engine.dispose()
            _probed[url] = None
        except (SQLAlchemyError, ImportError, OSError) as exc:
            orig = getattr(exc, "orig", None) or exc
            _probed[url] = (str(orig).strip().splitlines() or [type(exc).__name__])[0]
    return _probed[url]


def require_service(kind: str) -> Service:
    """The service, or skip the test (fail it if ``YINSI_REQUIRE_SERVICES=1``) when it is unreachable."""
    service = SERVICES[kind]
    reason = probe_service(service.url)
    if reason is not None:
        message = f"{service.name} 不可用: {reason}"
        if os.environ.get("YINSI_REQUIRE_SERVICES") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return service


@contextmanager
def scratch_database(kind: str) -> Iterator[str]:
    """Create a uniquely named database on the server, yield its URL, and drop it afterwards.

    MariaDB databases are created with the ``latin1`` default charset on purpose: Yinsi's tables must
    declare ``utf8mb4`` themselves, so 4-byte characters survive on a badly configured server too.
    """
    service = require_service(kind)
    name = f"yinsi_t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(service.url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if kind == "postgresql":
                conn.execute(text(f'CREATE DATABASE "{name}" ENCODING \'UTF8\' TEMPLATE template0'))
            else:
                conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET latin1"))
        try:
            yield make_url(service.url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                if kind == "postgresql":
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                else:
                    conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    finally:
        admin.dispose()


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
        pytest.param("mariadb", id="mariadb", marks=pytest.mark.mariadb),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no schema) on each backend."""
    kind: str = request.param
    if kind == "sqlite":
        yield f"sqlite:///{(tmp_path / 'db' / 'yinsi.db').as_posix()}"
        return
    with scratch_database(kind) as url:
        yield url


@pytest.fixture
def migrated_url(db_url: str) -> str:
    """``db_url`` with Yinsi's schema at head."""
    from yinsi.storage import upgrade

    upgrade(db_url)
    return db_url


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No ambient ``YINSI_DATABASE_URL``; ``YINSI_DATA_DIR`` is a fresh directory (returned), so a test
    never touches a developer's ``./.yinsi``. Database tests use it via ``pytestmark``."""
    monkeypatch.delenv("YINSI_DATABASE_URL", raising=False)
    data = tmp_path / "yinsi-data"
    monkeypatch.setenv("YINSI_DATA_DIR", str(data))
    return data


@pytest.fixture(autouse=True, scope="session")
def _session_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every test session writes Yinsi's data directory (master key, audit signing key and witness) to a
    temporary directory, never to the developer's ``./.yinsi``; ``isolated_env`` narrows it per test."""
    old = os.environ.get("YINSI_DATA_DIR")
    os.environ["YINSI_DATA_DIR"] = str(tmp_path_factory.mktemp("yinsi-session-data"))
    yield
    if old is None:
        os.environ.pop("YINSI_DATA_DIR", None)
    else:
        os.environ["YINSI_DATA_DIR"] = old
