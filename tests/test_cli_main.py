"""The ``yinsi`` entry point: every command area is listed and reachable, and only what a command needs is imported."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import yinsi.cli
from yinsi.cli import apps
from yinsi.cli.main import AREAS, app, command_modules, load, registered_names, unlisted_modules

runner = CliRunner()
LISTED = {m for area in AREAS.values() for m in area.module_names}


def _first_paragraph(text: str | None) -> str:
    return (text or "").strip().split("\n\n")[0].strip()


@pytest.mark.parametrize("name", list(AREAS))
def test_every_area_in_the_table_is_registered_by_its_modules_with_the_same_help(name: str) -> None:
    area = AREAS[name]
    for module in area.module_names:
        assert module in command_modules(), f"{name}: no module yinsi/cli/{module}.py"
    cmd = load(name)
    assert cmd is not None and name in registered_names(), f"importing {area.module_names} does not register {name}"
    assert _first_paragraph(cmd.short_help or cmd.help) == area.help, f"the table's help for {name} is stale"


def test_help_lists_every_registered_command_without_importing_listed_modules() -> None:
    for module in command_modules():
        __import__(f"yinsi.cli.{module}")
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    missing = [n for n in registered_names() if n not in result.stdout]
    assert not missing, f"registered but not in yinsi --help: {missing} (add them to AREAS in cli/main.py)"


def _modules_after(args: list[str]) -> set[str]:
    code = ("import sys\nfrom yinsi.cli.main import app\n"
            f"try:\n    app({args!r})\nexcept SystemExit:\n    pass\n"
            "print('\\n' + '\\n'.join(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split("\n"))


def test_help_imports_no_command_module_of_the_table() -> None:
    loaded = _modules_after(["--help"])
    assert not {f"yinsi.cli.{m}" for m in LISTED} & loaded
    if not unlisted_modules():  # a module not yet in the table is imported by --help (slower, still correct)
        assert "sqlalchemy" not in loaded and "pydantic" not in loaded


def test_a_command_imports_only_its_own_modules() -> None:
    loaded = _modules_after(["rules", "N1"])
    assert "yinsi.cli.rules_cmds" in loaded
    assert not {f"yinsi.cli.{m}" for m in LISTED - {"rules_cmds"}} & loaded
    assert "sqlalchemy" not in loaded


def test_commands_without_a_database_do_not_load_the_database_stack(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    text = tmp_path / "t.txt"
    text.write_text("客服电话 13800138000\n", encoding="utf-8")
    for args in (["policy", "lint", str(root / "policies" / "weiliaoke-2022.yaml")], ["policy", "--help"],
                 ["scan", "text", str(text)], ["mask", "text", str(text)]):
        loaded = _modules_after(args)
        assert not {"sqlalchemy", "alembic", "yinsi.storage"} & loaded, args


def test_top_level_commands_and_sub_groups_run() -> None:
    assert runner.invoke(app, ["demo", "--help"]).exit_code == 0
    stats = runner.invoke(app, ["stats", "--help"])
    assert stats.exit_code == 0 and "按列分组计数" in stats.stdout
    policy = runner.invoke(app, ["policy", "--help"])
    assert policy.exit_code == 0
    for sub in ("validate", "lint", "render", "publish", "history"):  # registered by three modules
        assert sub in policy.stdout
    root = Path(__file__).resolve().parents[1]
    ok = runner.invoke(app, ["policy", "validate", str(root / "policies" / "weiliaoke-2022.yaml")])
    assert ok.exit_code == 0, ok.output


def test_no_arguments_prints_help_and_a_typo_gets_a_suggestion() -> None:
    bare = runner.invoke(app, [])
    assert "policy" in bare.output and "rules" in bare.output
    typo = runner.invoke(app, ["polcy"])
    assert typo.exit_code == 2 and "policy" in typo.output


@pytest.fixture
def extra_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A ``*_cmds`` module that the table does not know, placed on the package's path for the test."""
    (tmp_path / "zz_fallback_cmds.py").write_text(
        "import typer\nfrom yinsi.cli.apps import app\n\n"
        "extra_app = typer.Typer(help='测试用的命令组。', no_args_is_help=True)\n"
        "app.add_typer(extra_app, name='zz-extra')\n\n\n"
        "@app.command('zz-hello')\ndef hello() -> None:\n    '''测试用的命令。'''\n    print('你好')\n\n\n"
        "@extra_app.command('ping')\ndef ping() -> None:\n    print('pong')\n", encoding="utf-8")
    monkeypatch.setattr(yinsi.cli, "__path__", [*yinsi.cli.__path__, str(tmp_path)])
    commands, groups = list(apps.app.registered_commands), list(apps.app.registered_groups)
    yield "zz_fallback_cmds"
    apps.app.registered_commands[:] = commands
    apps.app.registered_groups[:] = groups
    sys.modules.pop("yinsi.cli.zz_fallback_cmds", None)


def test_a_module_missing_from_the_table_still_works(extra_module: str) -> None:
    assert extra_module in unlisted_modules()
    hello = runner.invoke(app, ["zz-hello"])
    assert hello.exit_code == 0 and "你好" in hello.stdout
    assert runner.invoke(app, ["zz-extra", "ping"]).stdout.strip() == "pong"
    listed = runner.invoke(app, ["--help"]).stdout
    assert "zz-hello" in listed and "zz-extra" in listed and "policy" in listed
