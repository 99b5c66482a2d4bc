"""``yinsi scan text|db`` and ``yinsi mask text`` as a user runs them: exit codes, JSON, masks, no tracebacks."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from yinsi.cli.main import app

runner = CliRunner()
TEXT = ("客户手机１３８－００１３－８０００，身份证11010519491231002X，邮箱zhang@example.com。\n"
        "第二行：银行卡6222 0200 0000 0000 000\n")


def write(tmp_path: Path, text: str = TEXT, encoding: str = "utf-8") -> Path:
    f = tmp_path / "input.txt"
    f.write_bytes(text.encode(encoding))
    return f


def test_scan_text_json_gives_character_offsets_and_masked_values_by_default(tmp_path: Path) -> None:
    result = runner.invoke(app, ["scan", "text", "--json", "--type", "mobile_phone", "--type", "id_card",
                                 "--type", "email", "--type", "bank_card", str(write(tmp_path))])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["type"] for r in rows] == ["mobile_phone", "id_card", "email", "bank_card"]
    assert all(set(r) == {"type", "start", "end", "text", "score"} for r in rows)
    assert TEXT[rows[0]["start"]:rows[0]["end"]] == "１３８－００１３－８０００"
    assert TEXT[rows[3]["start"]:rows[3]["end"]] == "6222 0200 0000 0000 000"
    assert rows[0]["text"] == "138****8000" and rows[1]["text"] == "110105********002X"
    assert "11010519491231002X" not in result.stdout


def test_scan_text_show_values_reveals_the_original(tmp_path: Path) -> None:
    result = runner.invoke(app, ["scan", "text", "--json", "--show-values", "--type", "id_card", str(write(tmp_path))])
    assert json.loads(result.stdout)[0]["text"] == "11010519491231002X"


def test_scan_text_table_for_people_is_chinese_and_masked(tmp_path: Path) -> None:
    result = runner.invoke(app, ["scan", "text", str(write(tmp_path, encoding="gb18030"))])
    assert result.exit_code == 0, result.output
    assert "身份证号码" in result.stdout and "110105********002X" in result.stdout
    assert "11010519491231002X" not in result.stdout


def test_mask_text_prints_the_masked_text_and_reads_stdin(tmp_path: Path) -> None:
    result = runner.invoke(app, ["mask", "text", "--type", "mobile_phone", "--type", "id_card", str(write(tmp_path))])
    assert result.exit_code == 0
    assert result.stdout.startswith("客户手机138****8000，身份证110105********002X，")
    piped = runner.invoke(app, ["mask", "text", "-"], input="我的QQ：123456789")
    assert piped.exit_code == 0 and piped.stdout == "我的QQ：12*****89"


def test_bad_input_gives_a_chinese_message_and_exit_code_without_traceback(tmp_path: Path) -> None:
    cases = [
        (["scan", "text", str(tmp_path / "missing.txt")], 2, "文件不存在"),
        (["mask", "text", str(tmp_path)], 2, "不是文件"),
        (["scan", "text", "--type", "ssn", str(write(tmp_path))], 2, "未知的个人信息类型"),
        (["scan", "db", f"sqlite:///{tmp_path / 'none.db'}"], 2, "不存在"),
        (["scan", "db", "postgresql+psycopg://nobody@127.0.0.1:1/x?connect_timeout=2"], 1, "无法连接数据库"),
        (["scan", "db", "nosuchdb://x"], 2, "不支持"),
    ]
    for args, code, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == code, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_scan_db_lists_proposals_with_masked_samples_only(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE members (id INTEGER, mobile TEXT, id_no TEXT, note TEXT)")
    conn.execute("INSERT INTO members VALUES (1, '13800138000', '11010519491231002X', '常客')")
    conn.commit()
    conn.close()
    url = f"sqlite:///{path}"
    table = runner.invoke(app, ["scan", "db", url])
    assert table.exit_code == 0, table.output
    assert "contact.mobile" in table.stdout and "138****8000" in table.stdout
    as_json = runner.invoke(app, ["scan", "db", "--json", url])
    rows = {r["column"]: r for r in json.loads(as_json.stdout)}
    assert rows["id_no"]["pi_item"] == "identity.id_card_number"
    assert rows["note"]["pi_item"] == "not_pi"
    for out in (table.stdout, as_json.stdout):
        assert "13800138000" not in out and "11010519491231002X" not in out
