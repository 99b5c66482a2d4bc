"""No PI in what the CLI prints when it fails: every error path below gets phone numbers, id numbers and
e-mail addresses as input, and the project's own PI scanner reads everything printed.

Also: no traceback, a non-zero exit code, database errors described by kind and code only (on SQLite,
PostgreSQL and MariaDB, whose messages quote the values), and the safety net of the entry point.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from tests.helpers import POLICIES
from tests.staff_login import make_team
from yinsi.cli.errors import db_error_message, safety_net
from yinsi.cli.main import app
from yinsi.scan import scan_text
from yinsi.storage import make_engine

PHONE = "13800138000"
ID_NUMBER = "11010519491231002X"
EMAIL = "zhang.san@example.com"
PI_TYPES = {"mobile_phone", "id_card", "email"}


def pi_found(text: str) -> list[str]:
    return sorted({f"{r.type}:{r.text}" for r in scan_text(text) if r.type in PI_TYPES})


STAFF_TOKEN: dict[str, str] = {}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data directory with the default database, the 2022 微聊客 policy published as tenant weiliaoke, and
    a logged-in customer-service member of its staff for the commands that act as staff."""
    data = tmp_path_factory.mktemp("pi-errors")
    mp = pytest.MonkeyPatch()
    mp.setenv("YINSI_DATA_DIR", str(data))
    mp.setenv("XDG_CONFIG_HOME", str(data / "config"))
    mp.delenv("YINSI_DATABASE_URL", raising=False)
    mp.delenv("YINSI_DEBUG", raising=False)
    mp.delenv("YINSI_STAFF_TOKEN", raising=False)
    published = CliRunner().invoke(app, ["policy", "publish", str(POLICIES / "weiliaoke-2022.yaml")])
    assert published.exit_code == 0, published.output
    STAFF_TOKEN.update(make_team(None, _tenant(), {"cs1": ["customer_service"]}).env("cs1"))
    yield data
    mp.undo()


def _bad_declaration(home: Path) -> Path:
    path = home / "bad.yaml"
    path.write_text(
        f"tenant: {PHONE}\napp:\n  name: {EMAIL}\ncontroller:\n  legal_name: {ID_NUMBER}\n"
        f"features:\n  - id: {PHONE}\n    collections: [{{item: {EMAIL}}}]\n", encoding="utf-8")
    return path


def _tenant() -> str:
    return "weiliaoke"


UNREACHABLE = "postgresql+psycopg://yinsi:secret@127.0.0.1:1/yinsi"

ERROR_PATHS: dict[str, list[str]] = {
    "bad declaration: validate": ["policy", "validate", "{bad}"],
    "bad declaration: lint": ["policy", "lint", "{bad}"],
    "unreachable store: consent": ["consent", "show", _tenant(), PHONE, "--url", UNREACHABLE],
    "unreachable store: gate": ["gate", "check", _tenant(), PHONE, "collect", "--item", "contact.phone",
                                "--url", UNREACHABLE],
    "unknown tenant": ["consent", "record", "no-such-tenant", PHONE, "policy"],
    "wrong request id": ["request", "show", _tenant(), PHONE],
    "wrong request id (id number)": ["request", "show", _tenant(), ID_NUMBER],
    "impossible birth date": ["subject", "register", _tenant(), PHONE, "--birth-date", "2024-02-30"],
    "impossible received date": ["request", "submit", _tenant(), PHONE, "copy", "--received", "2024-02-30"],
    "malformed change": ["request", "submit", _tenant(), EMAIL, "correction", "--change", PHONE],
    "unknown scope": ["consent", "record", _tenant(), EMAIL, f"feature:{PHONE}"],
    "bad time": ["consent", "record", _tenant(), PHONE, "policy", "--at", "2024-13-01T00:00:00+08:00"],
    "deeply nested argument": ["consent", "record", _tenant(), PHONE, "[" * 20_000 + PHONE + "]" * 20_000],
    "huge argument": ["subject", "report", _tenant(), PHONE * 10_000],
    "deeply nested JSON argument": ["audit", "record", "--tenant", _tenant(), "--action", "other",
                                    "--details", "[" * 30_000 + f'"{EMAIL}"' + "]" * 30_000],
    "PI in an audit entry": ["audit", "record", "--tenant", _tenant(), "--action", "other", "--subject", PHONE],
    "PI in an audit entry's reason": ["audit", "record", "--tenant", _tenant(), "--action", "other",
                                      "--reason", f"{EMAIL} 来电"],
    "a typed name as the actor": ["audit", "record", "--tenant", _tenant(), "--actor", PHONE, "--action", "other"],
}


@pytest.mark.parametrize("name", list(ERROR_PATHS))
def test_error_paths_print_no_pi_and_no_traceback(home: Path, name: str) -> None:
    args = [a.replace("{bad}", str(_bad_declaration(home))) for a in ERROR_PATHS[name]]
    # commands that act as the logged-in member of staff run as one, so that they fail on the input
    as_staff = args[:2] in (["audit", "record"], ["request", "show"], ["request", "submit"])
    result = CliRunner().invoke(app, args, env=STAFF_TOKEN if as_staff else None)
    printed = result.output
    assert (result.exit_code == 2) if args[:2] == ["audit", "record"] else (result.exit_code != 0), printed
    if as_staff:
        assert "未登录" not in printed and "未获授权" not in printed, printed
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in printed
    assert pi_found(printed) == [], printed


def test_the_scanner_would_see_the_pi_in_these_inputs() -> None:
    """The test above is not vacuous: the scanner finds each kind of PI it is fed."""
    assert pi_found(f"手机 {PHONE}，身份证 {ID_NUMBER}，邮箱 {EMAIL}") == sorted(
        {f"mobile_phone:{PHONE}", f"id_card:{ID_NUMBER}", f"email:{EMAIL}"})


def test_database_errors_are_described_by_kind_without_the_values(db_url: str) -> None:
    """A unique-key violation with a phone number: MariaDB and PostgreSQL quote the value in the message."""
    engine = make_engine(db_url)
    table = Table("pi_errors_t", MetaData(), Column("id", Integer, primary_key=True),
                  Column("phone", String(20), unique=True))
    table.create(engine)
    try:
        with engine.begin() as conn:
            conn.execute(insert(table), {"id": 1, "phone": PHONE})
        with pytest.raises(IntegrityError) as caught, engine.begin() as conn:
            conn.execute(insert(table), {"id": 2, "phone": PHONE})
        message = db_error_message(caught.value)
        assert "约束" in message and PHONE not in message and pi_found(message) == []
    finally:
        table.drop(engine)
        engine.dispose()


def test_the_safety_net_prints_a_reference_but_not_the_exception_text(capsys: pytest.CaptureFixture[str]) -> None:
    code = safety_net(RuntimeError(f"用户 {PHONE} 的邮箱 {EMAIL} 出错"))
    err = capsys.readouterr().err
    assert code == 70 and "错误编号" in err and "YINSI_DEBUG=1" in err and pi_found(err) == []
    assert safety_net(ValueError(ID_NUMBER)) == 2


def test_unexpected_exceptions_in_commands_reach_the_safety_net(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import yinsi.cli.consent_cmds as consent_cmds

    def boom(*_args: object, **_kwargs: object) -> None:
        raise KeyError(PHONE)

    monkeypatch.setattr(consent_cmds, "_time", boom)
    result = CliRunner().invoke(app, ["consent", "record", _tenant(), PHONE, "policy"])
    assert result.exit_code == 2 and "错误编号" in result.output and pi_found(result.output) == []
    monkeypatch.setenv("YINSI_DEBUG", "1")  # a developer asks for the details
    result = CliRunner().invoke(app, ["consent", "record", _tenant(), PHONE, "policy"])
    assert isinstance(result.exception, KeyError)


def test_json_and_date_arguments_have_limits_and_chinese_errors() -> None:
    import typer

    from yinsi.cli.errors import date_argument, json_argument

    assert json_argument('{"a": [1, {"b": 2}]}', "--details") == {"a": [1, {"b": 2}]}
    for bad, reason in (("[" * 10_000 + "]" * 10_000, "嵌套过深"), ("{" + f'"p": "{PHONE}"', "不是有效的 JSON"),
                        ("1" * 70_000, "过长")):
        with pytest.raises(typer.BadParameter, match=reason) as caught:
            json_argument(bad, "--details")
        assert PHONE not in str(caught.value)
    assert str(date_argument("2024-02-29", "--today")) == "2024-02-29"
    with pytest.raises(typer.BadParameter, match="实际存在的日期"):
        date_argument("2023-02-29", "--today")
