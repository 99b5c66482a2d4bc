"""The rendered policy says everything the declaration declares, marks sensitive PI, and escapes input."""

from __future__ import annotations

import copy
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from yinsi.cli.main import app
from yinsi.declarations import DeclarationError, load_declaration
from yinsi.domain.policy import RIGHT_ZH, Declaration, RightKind
from yinsi.domain.taxonomy import taxonomy
from yinsi.render import NOT_STATED, SENSITIVE_MARK, md_escape, render_html, render_lists, render_markdown
from yinsi.render.labels import days_zh

ROOT = Path(__file__).resolve().parents[1]
MINIMAL = ROOT / "tests" / "fixtures" / "minimal.yaml"
POLICIES = sorted((ROOT / "policies").glob("*.yaml"))

# --- declarations under test -----------------------------------------------------------------------


def _minimal_raw() -> dict[str, Any]:
    raw = yaml.safe_load(MINIMAL.read_text(encoding="utf-8"))
    assert isinstance(raw, dict)
    return raw


def _src(quote: str) -> dict[str, str]:
    return {"section": "测试", "quote": quote}


def rich_raw() -> dict[str, Any]:
    """The minimal fixture plus one of every list element, so every branch of the templates renders."""
    raw = _minimal_raw()
    raw["controller"]["protection_officer"] = {
        "department": "个人信息保护部", "name": "张三", "contact": "privacy@example.cn", "source": _src("保护部"),
    }
    raw["controller"]["contacts"].append({"kind": "email", "value": "privacy@example.cn", "source": _src("邮箱")})
    raw["features"][0]["sdks"] = ["push"]
    raw["features"][0]["refusal_impact"] = "无法注册"
    raw["features"][0]["collections"].append(
        {"item": "location.precise", "required": False, "method": "device_permission", "source": _src("位置")}
    )
    raw["features"][0]["permissions"] = [{"permission": "location", "purpose": "推荐附近房源", "source": _src("定位")}]
    raw["features"][0]["personalized"] = True
    raw["features"][0]["opt_out"] = {"kind": "in_app", "value": "我的-设置-个性化推荐", "source": _src("关闭")}
    raw["sdks"] = [{
        "id": "push", "name": "示例推送SDK", "provider": "示例推送科技有限公司", "purpose": "消息推送",
        "scenario": "接收新消息", "items": ["device.identifiers", "online.ip_address"], "collection_method": "SDK自动采集",
        "policy_url": "https://push.example.cn/privacy?a=1&b=2", "source": _src("推送"),
    }, {
        "id": "map", "name": "示例地图SDK", "provider": None, "purpose": None, "scenario": None, "items": [],
        "collection_method": None, "policy_url": "javascript:alert(1)", "source": _src("地图"),
    }]
    raw["features"][1]["sdks"] = ["map"]
    raw["recipients"] = [{
        "id": "pay", "name": "示例支付机构", "kind": "payment_institution", "action": "provide",
        "items": ["transaction.order_number", "biometric.face"], "purpose": "完成支付", "method": "接口传输",
        "contact": "400-111-2222", "separate_consent": True, "source": _src("支付"),
    }, {
        "id": "cloud", "name": "示例云服务商", "kind": "entrusted_processor", "action": "entrust",
        "items": ["contact.mobile"], "purpose": "存储", "contract": True, "source": _src("云"),
    }]
    raw["retention"].append({
        "items": ["transaction.order_number"], "period_days": 1095, "determination": "自交易完成之日起",
        "trigger": "交易完成", "action": "delete_or_anonymise",
        "legal_hold": {"basis": "电子商务法第三十一条", "min_days": 1095, "source": _src("三年")},
        "source": _src("三年"),
    })
    raw["security_measures"] = [
        {"measure": "encryption", "items": ["biometric.face"], "description": "加密存储", "source": _src("加密")}
    ]
    raw["rights"].append({
        "right": "cancel_account",
        "channels": [{"kind": "in_app", "value": "我的-设置-注销账号", "source": _src("注销")}],
        "reply_time": {"days": 15, "unit": "working", "source": _src("15个工作日")},
        "source": _src("注销"),
    })
    raw["account_cancellation"] = {
        "channels": [{"kind": "customer_service", "value": "在线客服", "source": _src("客服")}],
        "prerequisites": [{"description": "账号内无未完成的交易", "source": _src("交易")}],
        "effects": "注销后删除或匿名化处理您的个人信息", "source": _src("注销"),
    }
    raw["automated_decisions"] = [{"purpose": "个性化推荐房源", "source": _src("推荐")}]
    raw["disputes"] = [{"kind": "court", "value": "被告住所地人民法院", "source": _src("法院")}]
    raw["consent_exceptions"]["collection"] = [{"text": "与国家安全有关的", "source": _src("国家安全")}]
    raw["incident_notice"]["contents"] = ["事件的基本情况", "处置措施"]
    raw["policy_changes"]["archive_old_versions"] = True
    raw["policy_changes"]["continued_use_is_acceptance"] = True
    return raw


def _declarations() -> list[Any]:
    params: list[Any] = [
        pytest.param(lambda: load_declaration(MINIMAL), id="minimal"),
        pytest.param(lambda: Declaration.model_validate(rich_raw()), id="rich"),
    ]
    for p in POLICIES:
        params.append(pytest.param(lambda p=p: _load_policy(p), id=p.stem))
    return params


def _load_policy(path: Path) -> Declaration:
    try:
        return load_declaration(path)
    except DeclarationError as exc:  # being written by another helper; `policy validate` reports it
        pytest.skip(f"{path.name} does not validate yet: {exc.problems[0]}")


@pytest.fixture(params=_declarations())
def decl(request: pytest.FixtureRequest) -> Declaration:
    loaded: Declaration = request.param()
    return loaded


# --- HTML helpers -----------------------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Page(HTMLParser):
    """Parses a page, checks that tags nest, and collects text and ``data-item`` elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []
        self.items: list[tuple[str, str, str]] = []  # (data-item, tag, class)
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        a = dict(attrs)
        if a.get("data-item"):
            self.items.append((a["data-item"] or "", tag, a.get("class") or ""))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}>, open: {self.stack[-3:]}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def page_text(page: Page) -> str:
    return "".join(page.text)


# --- what must appear -------------------------------------------------------------------------------


def expected(decl: Declaration) -> list[tuple[str, str]]:
    """(what, text) pairs that every rendering of ``decl`` must contain."""
    tax = taxonomy()
    out: list[tuple[str, str]] = [("app", decl.app.name)]
    if decl.controller.legal_name.value:
        out.append(("controller", decl.controller.legal_name.value))
    for f in decl.features:
        out.append(("feature", f.name))
        out += [("purpose", p) for p in f.purposes]
        for p in f.permissions:
            out.append(("permission", tax.permission(p.permission).name))
    for i, _ in [(i, loc) for loc, i in decl.iter_item_refs() if i != "*"]:
        out.append(("item", tax.item(i).name))
    out += [("sdk", s.name) for s in decl.sdks]
    out += [("recipient", r.name) for r in decl.recipients]
    out += [("right", RIGHT_ZH[r.right]) for r in decl.rights]
    channels = list(decl.controller.contacts)
    for r in decl.rights:
        channels += r.channels
    if decl.account_cancellation:
        channels += decl.account_cancellation.channels
        out += [("prerequisite", p.description) for p in decl.account_cancellation.prerequisites]
    out += [("channel", c.value) for c in channels if c.value]
    for rule in decl.retention:
        if rule.period_days:
            out.append(("retention period", days_zh(rule.period_days)))
        if rule.determination:
            out.append(("retention determination", rule.determination))
    out += [("dispute", d.value) for d in decl.disputes]
    if decl.storage.location:
        out.append(("storage", decl.storage.location))
    return out


def test_markdown_contains_every_declared_element(decl: Declaration) -> None:
    md = render_markdown(decl)
    missing = [(what, text) for what, text in expected(decl) if md_escape(text) not in md]
    assert not missing


def test_html_contains_every_declared_element(decl: Declaration) -> None:
    text = page_text(parse(render_html(decl)))
    missing = [(what, t) for what, t in expected(decl) if " ".join(t.split()) not in " ".join(text.split())]
    assert not missing


def test_rights_and_cancellation_are_rendered(decl: Declaration) -> None:
    md = render_markdown(decl)
    assert RIGHT_ZH[RightKind.CANCEL_ACCOUNT] in md
    for r in decl.rights:
        assert decl.reply_time_for(r.right).describe() in md


def test_markdown_marks_sensitive_items_and_only_them(decl: Declaration) -> None:
    md = render_markdown(decl)
    for loc, i in decl.iter_item_refs():
        if i == "*":
            continue
        item = taxonomy().item(i)
        marked = f"**{md_escape(item.name)}**{SENSITIVE_MARK}"
        if item.sensitive:
            assert marked in md, (loc, i)
        else:
            assert marked not in md, (loc, i)


def test_html_marks_sensitive_items_and_only_them(decl: Declaration) -> None:
    html = render_html(decl)
    page = parse(html)
    assert page.items, "PI items carry data-item attributes"
    for item_id, tag, cls in page.items:
        if item_id == "*":
            continue
        if taxonomy().is_sensitive(item_id):
            assert (tag, cls) == ("strong", "sensitive"), item_id
        else:
            assert "sensitive" not in cls and tag != "strong", item_id
    assert "strong.sensitive {" in html and "underline" in html


def test_html_is_a_well_formed_standalone_page(decl: Declaration) -> None:
    html = render_html(decl)
    assert html.lstrip().startswith("<!DOCTYPE html>")
    assert '<html lang="zh-CN">' in html and '<meta charset="utf-8">' in html
    page = parse(html)
    assert not page.errors
    assert not page.stack
    assert "script" not in page.tags
    for anchor in ("intro", "collect", "share", "store", "rights", "list-sdk", "list-collected"):
        assert f'id="{anchor}"' in html and f'href="#{anchor}"' in html


def test_rendering_is_deterministic(decl: Declaration) -> None:
    assert render_markdown(decl) == render_markdown(decl)
    assert render_html(decl) == render_html(decl)


def test_lists_are_derived_from_the_declaration(decl: Declaration) -> None:
    lists = render_lists(decl)
    json.dumps(lists, ensure_ascii=False)  # JSON-ready
    assert [s["id"] for s in lists["sdks"]] == [s.id for s in decl.sdks]
    assert [r["item"]["id"] for r in lists["collected"]] == decl.collected_items()
    assert [r["id"] for r in lists["shared"]] == [r.id for r in decl.recipients]
    assert len(lists["permissions"]) == sum(len(f.permissions) for f in decl.features)


# --- specific behaviour -----------------------------------------------------------------------------


def test_null_dates_and_version_render_as_not_stated() -> None:
    raw = _minimal_raw()
    raw["version"]["updated_date"] = {"value": None, "source": {"silent": True, "note": "未写更新日期"}}
    raw["version"]["effective_date"] = {"value": None, "source": {"silent": True, "note": "生效日期空白"}}
    decl = Declaration.model_validate(raw)
    md = render_markdown(decl)
    assert f"更新日期：{NOT_STATED}" in md and f"生效日期：{NOT_STATED}" in md
    assert f"版本：{NOT_STATED}" in md
    text = page_text(parse(render_html(decl)))
    assert f"更新日期：{NOT_STATED}" in text and f"生效日期：{NOT_STATED}" in text
    assert render_lists(decl)["version"]["effective_date"] is None


def test_dates_render_in_chinese() -> None:
    md = render_markdown(load_declaration(MINIMAL))
    assert "更新日期：2023年12月20日" in md and "生效日期：2024年1月1日" in md


def test_injected_markup_is_escaped() -> None:
    raw = rich_raw()
    evil = "<script>alert(1)</script>"
    raw["features"][0]["name"] = evil
    raw["sdks"][0]["name"] = "A|B **粗** [链](x)"
    decl = Declaration.model_validate(raw)
    html = render_html(decl)
    page = parse(html)
    assert "script" not in page.tags and not page.errors
    assert evil in page_text(page)
    assert "&lt;script&gt;" in html
    md = render_markdown(decl)
    assert "<script>" not in md and r"\<script\>" in md
    assert r"A\|B \*\*粗\*\* \[链\](x)" in md


def test_only_http_links_become_links() -> None:
    decl = Declaration.model_validate(rich_raw())
    html = render_html(decl)
    assert 'href="https://push.example.cn/privacy?a=1&amp;b=2"' in html
    assert 'href="javascript' not in html
    md = render_markdown(decl)
    assert "<https://push.example.cn/privacy?a=1&b=2>" in md
    assert "](javascript" not in md and "<javascript" not in md


def test_sdk_list_has_the_n6_columns_and_not_stated_for_nulls() -> None:
    md = render_markdown(Declaration.model_validate(rich_raw()))
    header = "| SDK名称 | 提供方 | 目的 | 使用场景 | 关联功能 | 收集的个人信息 | 收集方式 | 隐私政策链接 |"
    assert header in md
    row = next(line for line in md.splitlines() if line.startswith("| 示例地图SDK"))
    assert row.count(NOT_STATED) >= 5


def test_sensitive_notice_and_separate_consent_are_stated() -> None:
    md = render_markdown(load_declaration(MINIMAL))
    assert "必要性：核验是本人" in md and "泄露可能导致身份被冒用" in md
    assert "单独同意" in md


def test_no_raw_ids_are_shown_to_readers() -> None:
    decl = Declaration.model_validate(rich_raw())
    md = render_markdown(decl)
    text = page_text(parse(render_html(decl)))
    for raw_id in ("contact.mobile", "biometric.face", "payment_institution", "cancel_account", "consent"):
        assert raw_id not in md
        assert raw_id not in text


def test_cancellation_is_one_subsection_when_also_a_right() -> None:
    md = render_markdown(Declaration.model_validate(rich_raw()))
    assert md.count(f"）{RIGHT_ZH[RightKind.CANCEL_ACCOUNT]}\n") == 1
    assert "账号内无未完成的交易" in md and "15个工作日内" in md


# --- CLI --------------------------------------------------------------------------------------------

runner = CliRunner()


def test_cli_renders_markdown_to_stdout() -> None:
    result = runner.invoke(app, ["policy", "render", str(MINIMAL)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# 示例应用隐私政策")


def test_cli_writes_html_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "out" / "policy.html"
    result = runner.invoke(app, ["policy", "render", str(MINIMAL), "--format", "html", "--output", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert "<title>示例应用隐私政策</title>" in html


def test_cli_json_prints_the_lists() -> None:
    result = runner.invoke(app, ["policy", "render", str(MINIMAL), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data == json.loads(json.dumps(render_lists(load_declaration(MINIMAL))))


def test_cli_reports_validation_errors_in_chinese_with_line(tmp_path: Path) -> None:
    raw = copy.deepcopy(MINIMAL.read_text(encoding="utf-8"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(raw.replace("item: contact.mobile", "item: contact.nope"), encoding="utf-8")
    result = runner.invoke(app, ["policy", "render", str(bad)])
    assert result.exit_code == 1
    line = next(n for n, t in enumerate(raw.splitlines(), 1) if "item: contact.mobile" in t)
    assert f"bad.yaml:{line}" in result.output
    assert "声明文件校验失败" in result.output and "未知的个人信息项 contact.nope" in result.output
    assert "Traceback" not in result.output


def test_cli_reports_a_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["policy", "render", str(tmp_path / "none.yaml")])
    assert result.exit_code == 1
    assert "文件不存在" in result.output
