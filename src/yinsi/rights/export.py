"""The packages of access, copy and portability requests (查阅、复制、转移).

A package is a zip with three files:

- ``personal_information.json``: machine-readable (format ``yinsi.copy/1``; for portability
  ``yinsi.portability/1``, the package for another processor, R2): metadata, then one entry per value with
  its PI item, Chinese name, whether it is sensitive, where it was found and the value;
- ``personal_information.csv``: the same, one row per value (UTF-8 with BOM, so Excel opens it);
- ``personal_information.html``: a readable Chinese page grouped by PI item, sensitive items marked.

The zip is PI. At rest it is kept only encrypted with the tenant's data key (field ``rights.export``) in
``<data dir>/exports/<tenant>/<request>.zip.enc`` (mode 0600); ``yinsi request export`` decrypts it for
handing over to the person. ``yinsi keys rotate`` re-encrypts the tenant's packages under the new data-key
version (:func:`package_files` lists them for the rotation registry).

In the CSV, a value that a spreadsheet would read as a formula (it starts with ``= + - @``, a tab or a
carriage return) is prefixed with an apostrophe (:func:`yinsi.csv_safe.safe_cell`).
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from yinsi.csv_safe import safe_row

EXPORT_FIELD = "rights.export"


def _text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def build_package(meta: Mapping[str, Any], found: Sequence[Mapping[str, Any]], *,
                  excluded: Sequence[Mapping[str, Any]] = ()) -> bytes:
    """The zip (bytes) of one package; ``excluded`` lists PI items left out, with the reason (portability)."""
    data = {"meta": dict(meta), "data": list(found), "excluded": list(excluded)}
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["个人信息项", "名称", "敏感个人信息", "来源位置", "记录", "值"])
    for f in found:
        w.writerow(safe_row([f["item"], f["name"], "是" if f["sensitive"] else "否", f["location"], f["source"],
                             _text(f["value"])]))
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for f in found:
        groups.setdefault(f["item"], []).append(f)
    sections = []
    for item, values in groups.items():
        name = html.escape(values[0]["name"])
        mark = '<span class="s">【敏感个人信息】</span>' if values[0]["sensitive"] else ""
        rows = "".join(f"<tr><td>{html.escape(_text(v['value']))}</td><td>{html.escape(v['location'])}</td></tr>"
                       for v in values)
        sections.append(f"<h2>{name}{mark} <small>{html.escape(item)}</small></h2>"
                        f"<table><tr><th>内容</th><th>来源</th></tr>{rows}</table>")
    left_out = "".join(f"<li>{html.escape(str(e['name']))}：{html.escape(str(e['reason']))}</li>" for e in excluded)
    title = "个人信息转移包" if meta.get("type") == "portability" else "个人信息副本"
    page = (
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>"
        f"<title>{title}</title><style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}"
        "table{border-collapse:collapse;width:100%}td,th{border:1px solid #999;padding:4px;text-align:left}"
        ".s{color:#b00;font-weight:bold}</style></head><body>"
        f"<h1>{html.escape(str(meta.get('app', '')))}：您的{title}</h1>"
        f"<p>个人信息处理者：{html.escape(str(meta.get('controller') or ''))}；"
        f"隐私政策版本：{html.escape(str(meta.get('policy')))}；"
        f"生成时间：{html.escape(str(meta.get('generated_at')))}；请求编号：{html.escape(str(meta.get('request')))}</p>"
        f"<p>共 {len(found)} 项数据，涉及 {len(groups)} 类个人信息。标为【敏感个人信息】的内容请妥善保管。</p>"
        + "".join(sections)
        + (f"<h2>未纳入的个人信息</h2><ul>{left_out}</ul>" if excluded else "")
        + "</body></html>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("personal_information.json", json.dumps(data, ensure_ascii=False, indent=2, default=str))
        z.writestr("personal_information.csv", "\ufeff" + buf.getvalue())
        z.writestr("personal_information.html", page)
    return out.getvalue()


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600 (directories 0700), atomically (temporary file + rename)."""
    from yinsi.config import make_private_dir

    make_private_dir(path.parent)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def package_files(engine: Any, tenant: str) -> Iterator[Path]:
    """The tenant's encrypted packages: those its requests point to, and any under the default exports
    directory (``<data dir>/exports/<tenant>``), for the key rotation."""
    from sqlalchemy import inspect, select

    from yinsi.config import data_dir
    from yinsi.storage.rights_tables import RightsRequest

    with engine.connect() as conn:
        results: list[str] = []
        if inspect(conn).has_table(RightsRequest.__tablename__):  # not in a database without the rights tables
            results = list(conn.execute(select(RightsRequest.result).where(
                RightsRequest.tenant_id == tenant, RightsRequest.result.is_not(None))).scalars())
    for text in results:
        try:
            package = json.loads(text).get("package")
        except (ValueError, AttributeError):
            continue
        if isinstance(package, str) and package.endswith(".zip.enc"):
            yield Path(package)
    default = data_dir() / "exports" / tenant
    if default.is_dir():
        yield from default.glob("*.zip.enc")
