"""Yinsi's files and directories are created private: the data directory 0700, ``yinsi.db`` and the master
key 0600, export packages 0600 in 0700 directories — whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers import POLICIES
from yinsi.cli.main import app
from yinsi.config import database_url, make_private_dir
from yinsi.rights.export import write_private
from yinsi.storage import make_engine


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o022)  # the common default, which would give 0755 directories and 0644 files
    yield
    os.umask(old)


@pytest.mark.usefixtures("loose_umask")
def test_the_default_database_and_master_key_are_private(isolated_env: Path) -> None:
    nested = isolated_env / "deeper"
    os.environ["YINSI_DATA_DIR"] = str(nested)  # isolated_env restores the variable afterwards
    result = CliRunner().invoke(app, ["policy", "publish", str(POLICIES / "weiliaoke-2022.yaml")])
    assert result.exit_code == 0, result.output
    assert mode(nested) == 0o700 and mode(isolated_env) == 0o700  # the parents it created too
    assert mode(nested / "yinsi.db") == 0o600
    assert mode(nested / "master.key") == 0o600  # made by the first audited command
    for path in nested.rglob("*"):  # nothing else readable by others either
        assert not mode(path) & 0o077 or path.name.endswith((".txt", ".md", ".html")), path


@pytest.mark.usefixtures("loose_umask")
def test_any_sqlite_database_yinsi_creates_is_private(tmp_path: Path) -> None:
    db = tmp_path / "a" / "b" / "y.db"
    engine = make_engine(f"sqlite:///{db}")
    with engine.connect():
        pass
    engine.dispose()
    assert mode(db) == 0o600 and mode(db.parent) == 0o700 and mode(db.parent.parent) == 0o700


@pytest.mark.usefixtures("loose_umask")
def test_export_packages_and_directories_are_private(tmp_path: Path) -> None:
    package = tmp_path / "exports" / "t1" / "r1.zip.enc"
    write_private(package, b"sealed")
    assert mode(package) == 0o600 and mode(package.parent) == 0o700 and mode(package.parent.parent) == 0o700
    make_private_dir(tmp_path / "x" / "y")
    assert mode(tmp_path / "x") == 0o700


def test_database_url_creates_the_data_dir_private(isolated_env: Path) -> None:
    database_url()
    assert mode(isolated_env) == 0o700
