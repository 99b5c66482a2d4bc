"""The schema check every command and service runs at start gives Alembic's answers without loading Alembic."""

from __future__ import annotations

import subprocess
import sys

import pytest
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from yinsi.storage import current, downgrade, ensure_current, head, make_engine, upgrade
from yinsi.storage.errors import SchemaNotCurrent
from yinsi.storage.migrate import VERSION_TABLE, alembic_config


def _alembic_current(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()
    finally:
        engine.dispose()


def test_head_is_alembics_head() -> None:
    assert head() == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_current_is_alembics_current_on_every_backend(db_url: str) -> None:
    assert current(db_url) is None
    upgrade(db_url, "0003")
    assert current(db_url) == _alembic_current(db_url) == "0003"
    with pytest.raises(SchemaNotCurrent):
        ensure_current(db_url)
    upgrade(db_url)
    assert current(db_url) == _alembic_current(db_url) == head()
    ensure_current(db_url)
    downgrade(db_url)
    assert current(db_url) is None and _alembic_current(db_url) is None


def test_a_current_database_is_checked_without_importing_alembic(migrated_url: str) -> None:
    code = (f"import sys\nfrom yinsi.storage import ensure_current\nensure_current({migrated_url!r})\n"
            "print('alembic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
