"""Publishing, history and archived versions (service and CLI), on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from yinsi.cli.main import app
from yinsi.declarations import DeclarationError, load_declaration, text_hash
from yinsi.render import render_markdown
from yinsi.services.publishing import (
    PublishError,
    VersionConflict,
    VersionNotFound,
    get_version,
    history,
    latest_version,
    publish,
)
from yinsi.storage import SchemaNotCurrent, current, head, upgrade

from .helpers import MINIMAL, minimal_text

pytestmark = pytest.mark.usefixtures("isolated_env")

LABEL_1 = "2024-01-01"
LABEL_2 = "2025-01-01"
T0 = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
NEXT_VERSION = (('label: "2024-01-01"', f'label: "{LABEL_2}"'), ("value: 2024-01-01", "value: 2025-01-01"),
                ("purposes: [注册账号]", "purposes: [注册账号, 找回密码]"))
OTHER_TENANT = (("tenant: demo", "tenant: other"), ("name: 示例应用", "name: 另一个应用"))


def write_decl(directory: Path, name: str, *edits: tuple[str, str], text: str | None = None) -> Path:
    """The minimal fixture with textual (old, new) replacements, written to ``directory/name``."""
    body = minimal_text() if text is None else text
    for old, new in edits:
        assert old in body, f"edit target not in fixture: {old!r}"
        body = body.replace(old, new, 1)
    path = directory / name
    path.write_bytes(body.encode("utf-8"))
    return path


# --- the service --------------------------------------------------------------------------------


def test_publish_history_show_round_trip(migrated_url: str, tmp_path: Path) -> None:
    v1 = publish(MINIMAL, migrated_url, by="张三", now=T0)
    assert v1.created and v1.tenant == "demo" and v1.label == LABEL_1
    assert v1.app_name == "示例应用" and v1.controller_name == "示例科技有限公司"
    assert v1.effective_date == date(2024, 1, 1) and v1.updated_date == date(2023, 12, 20)
    assert v1.declaration_hash == text_hash(MINIMAL.read_text(encoding="utf-8"))
    assert v1.published_at == T0 and v1.published_by == "张三"
    assert v1.lint_errors >= 0 and v1.lint_warnings >= 0

    second = write_decl(tmp_path, "v2.yaml", *NEXT_VERSION)
    v2 = publish(second, migrated_url, now=T0 + timedelta(days=1))
    assert v2.created and v2.label == LABEL_2 and v2.published_by is None

    hist = history("demo", migrated_url)
    assert [v.label for v in hist] == [LABEL_1, LABEL_2]
    assert hist[0].published_at == T0 and hist[0].published_by == "张三"
    assert not any(v.created for v in hist)
    latest = latest_version("demo", migrated_url)
    assert latest is not None and latest.label == LABEL_2

    # the old version stays readable exactly as published
    old = get_version("demo", LABEL_1, migrated_url)
    assert old.declaration_yaml == MINIMAL.read_text(encoding="utf-8")
    assert old.rendered_markdown == render_markdown(load_declaration(MINIMAL))
    assert text_hash(old.rendered_markdown) == old.version.rendered_hash
    new = get_version("demo", LABEL_2, migrated_url)
    assert "找回密码" in new.declaration_yaml and new.declaration_yaml == second.read_text(encoding="utf-8")


def test_history_is_ordered_by_effective_date(migrated_url: str, tmp_path: Path) -> None:
    later = write_decl(tmp_path, "v2.yaml", *NEXT_VERSION)
    publish(later, migrated_url, now=T0)
    publish(MINIMAL, migrated_url, now=T0 + timedelta(hours=1))  # published later, effective earlier
    assert [v.label for v in history("demo", migrated_url)] == [LABEL_1, LABEL_2]


def test_republishing_the_same_text_is_idempotent(migrated_url: str) -> None:
    first = publish(MINIMAL, migrated_url, by="张三", now=T0)
    again = publish(MINIMAL, migrated_url, by="李四", now=T0 + timedelta(days=3))
    assert first.created and not again.created
    assert again.published_at == T0 and again.published_by == "张三"
    assert again.declaration_hash == first.declaration_hash
    assert len(history("demo", migrated_url)) == 1


def test_republishing_a_label_with_other_content_is_refused(migrated_url: str, tmp_path: Path) -> None:
    publish(MINIMAL, migrated_url, now=T0)
    changed = write_decl(tmp_path, "changed.yaml", ("purposes: [注册账号]", "purposes: [注册账号, 推送广告]"))
    with pytest.raises(VersionConflict) as info:
        publish(changed, migrated_url)
    assert str(info.value) == f"版本 {LABEL_1} 已发布且内容不同；请使用新的版本标签"
    archived = get_version("demo", LABEL_1, migrated_url)
    assert "推送广告" not in archived.declaration_yaml
    assert len(history("demo", migrated_url)) == 1


def test_concurrent_publish_of_the_same_label_is_resolved(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process inserts the label between our check and our commit: the unique constraint
    fires, the transaction is rolled back, and the second look finds the identical version."""
    from yinsi.storage.repository import PolicyVersionRepository

    publish(MINIMAL, migrated_url, now=T0)
    real_get = PolicyVersionRepository.get
    calls: list[str] = []

    def stale_get(self: PolicyVersionRepository, tenant_id: str, label: str) -> object:
        calls.append(label)
        return None if len(calls) == 1 else real_get(self, tenant_id, label)

    monkeypatch.setattr(PolicyVersionRepository, "get", stale_get)
    again = publish(MINIMAL, migrated_url, now=T0 + timedelta(days=1))
    assert len(calls) == 2 and not again.created and again.published_at == T0
    assert len(history("demo", migrated_url)) == 1


def test_tenants_are_isolated(migrated_url: str, tmp_path: Path) -> None:
    other = write_decl(tmp_path, "other.yaml", *OTHER_TENANT)  # same label, different tenant
    publish(MINIMAL, migrated_url, now=T0)
    publish(other, migrated_url, now=T0)
    publish(write_decl(tmp_path, "other2.yaml", *OTHER_TENANT, *NEXT_VERSION), migrated_url, now=T0)

    assert [(v.tenant, v.label) for v in history("demo", migrated_url)] == [("demo", LABEL_1)]
    assert [(v.tenant, v.label) for v in history("other", migrated_url)] == [
        ("other", LABEL_1), ("other", LABEL_2)]
    assert get_version("other", LABEL_1, migrated_url).version.app_name == "另一个应用"
    assert get_version("demo", LABEL_1, migrated_url).version.app_name == "示例应用"
    with pytest.raises(VersionNotFound, match="租户 demo 没有已发布的版本 2025-01-01"):
        get_version("demo", LABEL_2, migrated_url)
    assert history("nobody", migrated_url) == []


def test_four_byte_chinese_round_trips(migrated_url: str, tmp_path: Path) -> None:
    """𠮷 (U+20BB7) is outside the BMP: MariaDB keeps it only with utf8mb4 end to end."""
    path = write_decl(
        tmp_path, "jiye.yaml",
        ("# A minimal", "# 𠮷野家测试：四字节汉字 𠮷 与 emoji 🔒\n# A minimal"),
        ("name: 示例应用", "name: 𠮷野示例应用"),
        ("value: 示例科技有限公司", "value: 𠮷野科技有限公司"),
    )
    text = path.read_text(encoding="utf-8")
    v = publish(path, migrated_url, by="𠮷田", now=T0)
    archived = get_version("demo", LABEL_1, migrated_url)
    assert archived.declaration_yaml == text
    assert text_hash(archived.declaration_yaml) == v.declaration_hash
    assert "𠮷野示例应用" in archived.rendered_markdown
    assert text_hash(archived.rendered_markdown) == archived.version.rendered_hash
    assert archived.version.app_name == "𠮷野示例应用"
    assert archived.version.controller_name == "𠮷野科技有限公司"
    assert archived.version.published_by == "𠮷田"


def test_archive_is_byte_exact_and_may_be_large(migrated_url: str, tmp_path: Path) -> None:
    """CRLF line ends are kept (the hash is of the file as it is), and texts over 64 KiB fit (MariaDB
    TEXT would not)."""
    padding = "".join(f"# 填充注释第{i}行：个人信息保护法要求逐字存档。\r\n" for i in range(3000))
    body = padding + minimal_text().replace("\n", "\r\n")
    assert len(body.encode("utf-8")) > 3 * 65536
    path = write_decl(tmp_path, "big.yaml", text=body)
    v = publish(path, migrated_url, now=T0)
    archived = get_version("demo", LABEL_1, migrated_url)
    assert archived.declaration_yaml == body
    assert v.declaration_hash == text_hash(body)
    # republishing the identical bytes is idempotent; the same text with LF line ends is different content
    assert not publish(path, migrated_url).created
    with pytest.raises(VersionConflict):
        publish(write_decl(tmp_path, "lf.yaml", text=body.replace("\r\n", "\n")), migrated_url)


def test_invalid_declaration_stores_nothing(migrated_url: str, tmp_path: Path) -> None:
    bad = write_decl(tmp_path, "bad.yaml", ("item: contact.mobile", "item: contact.no_such_item"))
    with pytest.raises(DeclarationError, match="no_such_item"):
        publish(bad, migrated_url)
    with pytest.raises(DeclarationError, match="file not found"):
        publish(tmp_path / "missing.yaml", migrated_url)
    assert history("demo", migrated_url) == []


def test_overlong_label_is_refused(migrated_url: str, tmp_path: Path) -> None:
    path = write_decl(tmp_path, "long.yaml", ('label: "2024-01-01"', f'label: "{"v" * 65}"'))
    with pytest.raises(PublishError, match="版本标签过长"):
        publish(path, migrated_url)


def test_naive_clock_is_refused(migrated_url: str) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        publish(MINIMAL, migrated_url, now=datetime(2024, 1, 1))


def test_default_sqlite_database_is_migrated_automatically(isolated_env: Path) -> None:
    assert not isolated_env.exists()
    v = publish(MINIMAL)
    assert v.created
    assert (isolated_env / "yinsi.db").is_file()
    assert [x.label for x in history("demo")] == [LABEL_1]
    assert get_version("demo", LABEL_1).declaration_yaml == MINIMAL.read_text(encoding="utf-8")


def test_other_databases_must_be_upgraded_explicitly(db_url: str) -> None:
    with pytest.raises(SchemaNotCurrent, match="yinsi db upgrade"):
        publish(MINIMAL, db_url)
    with pytest.raises(SchemaNotCurrent):
        history("demo", db_url)
    upgrade(db_url)
    assert publish(MINIMAL, db_url).created


def test_missing_renderer_fails_loudly(migrated_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "yinsi.render", None)  # makes `import yinsi.render` raise ImportError
    with pytest.raises(PublishError, match="渲染"):
        publish(MINIMAL, migrated_url)
    monkeypatch.undo()
    assert history("demo", migrated_url) == []


# --- the CLI ------------------------------------------------------------------------------------

runner = CliRunner()


def test_cli_round_trip(db_url: str, tmp_path: Path) -> None:
    r = runner.invoke(app, ["db", "current", "--url", db_url])
    assert r.exit_code == 0, r.output
    assert "尚未初始化" in r.output

    r = runner.invoke(app, ["db", "upgrade", "--url", db_url])
    assert r.exit_code == 0, r.output
    assert "已创建" in r.output and head() in r.output
    assert current(db_url) == head()
    r = runner.invoke(app, ["db", "upgrade", "--url", db_url])
    assert r.exit_code == 0 and "已是最新" in r.output
    r = runner.invoke(app, ["db", "current", "--url", db_url])
    assert r.exit_code == 0 and "最新" in r.output

    r = runner.invoke(app, ["policy", "publish", str(MINIMAL), "--url", db_url, "--by", "张三", "--json"])
    assert r.exit_code == 0, r.output
    published = json.loads(r.stdout)
    assert published["tenant"] == "demo" and published["label"] == LABEL_1 and published["created"] is True
    assert published["published_by"] == "张三" and published["effective_date"] == "2024-01-01"

    r = runner.invoke(app, ["policy", "publish", str(MINIMAL), "--url", db_url])
    assert r.exit_code == 0 and "内容相同" in r.output

    second = write_decl(tmp_path, "v2.yaml", *NEXT_VERSION)
    r = runner.invoke(app, ["policy", "publish", str(second), "--url", db_url])
    assert r.exit_code == 0 and "已发布" in r.output

    r = runner.invoke(app, ["policy", "history", "demo", "--url", db_url, "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [row["label"] for row in rows] == [LABEL_1, LABEL_2]
    assert rows[0]["declaration_hash"] == text_hash(MINIMAL.read_text(encoding="utf-8"))

    wide = CliRunner(env={"COLUMNS": "200"})
    r = wide.invoke(app, ["policy", "history", "demo", "--url", db_url])
    assert r.exit_code == 0, r.output
    for heading in ("版本", "生效日期", "运营者", "发布时间", "哈希前12位", "错误/警告数"):
        assert heading in r.output
    assert LABEL_2 in r.output and rows[0]["declaration_hash"][:12] in r.output

    r = runner.invoke(app, ["policy", "show", "demo", LABEL_1, "--url", db_url, "--format", "yaml"])
    assert r.exit_code == 0 and r.stdout == MINIMAL.read_text(encoding="utf-8")
    r = runner.invoke(app, ["policy", "show", "demo", LABEL_1, "--url", db_url])
    assert r.exit_code == 0 and r.stdout == render_markdown(load_declaration(MINIMAL))

    r = runner.invoke(app, ["policy", "show", "demo", "nope", "--url", db_url])
    assert r.exit_code == 1 and "没有已发布的版本 nope" in r.stderr

    changed = write_decl(tmp_path, "changed.yaml", ("purposes: [注册账号]", "purposes: [注册账号, 推送广告]"))
    r = runner.invoke(app, ["policy", "publish", str(changed), "--url", db_url])
    assert r.exit_code == 1
    assert "版本 2024-01-01 已发布且内容不同；请使用新的版本标签" in r.stderr
    assert "Traceback" not in r.output


def test_cli_errors_are_chinese_without_traceback(tmp_path: Path) -> None:
    unreachable = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    for args in (["db", "upgrade", "--url", unreachable], ["db", "current", "--url", unreachable],
                 ["policy", "publish", str(MINIMAL), "--url", unreachable],
                 ["policy", "history", "demo", "--url", unreachable]):
        r = runner.invoke(app, args)
        assert r.exit_code == 1, (args, r.output)
        assert "无法连接数据库" in r.stderr and "Traceback" not in r.output
        assert isinstance(r.exception, SystemExit)  # a clean exit, not an uncaught error

    r = runner.invoke(app, ["db", "upgrade", "--url", "nosuchdb://x/y"])
    assert r.exit_code == 2 and "不支持的数据库类型" in r.stderr

    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    r = runner.invoke(app, ["policy", "publish", str(MINIMAL), "--url", fresh])
    assert r.exit_code == 1 and "yinsi db upgrade" in r.stderr

    bad = write_decl(tmp_path, "bad.yaml", ("item: contact.mobile", "item: contact.no_such_item"))
    r = runner.invoke(app, ["policy", "publish", str(bad), "--url", fresh])
    assert r.exit_code == 1 and "no_such_item" in r.stderr and "Traceback" not in r.output


def test_cli_installed_command_from_another_directory(tmp_path: Path) -> None:
    """The installed ``yinsi`` finds its packaged migrations wherever it runs; the default database
    lives in ./.yinsi and is created by ``publish``."""
    exe = Path(sys.executable).with_name("yinsi")
    if not exe.exists():
        pytest.skip("the yinsi command is not installed in this environment")
    env = {k: v for k, v in os.environ.items() if k not in ("YINSI_DATABASE_URL", "YINSI_DATA_DIR")}
    work = tmp_path / "elsewhere"
    work.mkdir()
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    done = subprocess.run([str(exe), "db", "upgrade", "--url", url], cwd=work, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"版本 {head()}" in done.stdout

    done = subprocess.run([str(exe), "policy", "publish", str(MINIMAL), "--json"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["label"] == LABEL_1
    assert (work / ".yinsi" / "yinsi.db").is_file()
    done = subprocess.run([str(exe), "policy", "history", "demo", "--json"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and [r["label"] for r in json.loads(done.stdout)] == [LABEL_1]
