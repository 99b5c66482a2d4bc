"""yinsi policy analyze on texts of our own: offsets, formats, Traditional text, the draft, --against, the CLI."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as stn
from typer.testing import CliRunner

from yinsi.analyze import analyze_text, read_policy
from yinsi.analyze.draft import draft_declaration, dump_yaml
from yinsi.analyze.service import analyze_file
from yinsi.cli.main import app
from yinsi.declarations import load_declaration, parse_declaration
from yinsi.faithfulness import check_quotes

runner = CliRunner()
KEYS = {"file", "rule", "kind", "severity", "line", "start", "end", "quote", "message", "suggestion"}

SYNTHETIC = """# 小鹿记账隐私政策

更新日期：2025年3月1日
生效日期：2025年3月8日

小鹿记账由杭州小鹿网络科技有限公司（以下简称“我们”）运营，注册地址为杭州市西湖区文三路100号。
本隐私政策将帮助您了解以下内容：

- 一、我们如何收集和使用您的个人信息
- 二、我们如何共享您的个人信息
- 三、您的权利
- 四、如何联系我们

## 一、我们如何收集和使用您的个人信息

### （一）注册登录

当您注册账号时，我们需要收集您的手机号码和短信验证码，用于创建账号和验证身份。

### （二）记账提醒

当您开启记账提醒时，我们会申请通知权限，用于按时提醒您记账。

### （三）附近网点

当您使用附近网点功能时，我们会收集您的精准定位信息，用于展示附近的网点。您可以在系统设置中关闭位置权限。

## 二、我们如何共享您的个人信息

我们不会与任何第三方共享您的个人信息。为完成支付，我们会将您的订单号和交易金额提供给支付宝（中国）网络技术有限公司。

若您在本政策更新后继续使用我们的服务，即视为您同意更新后的政策。

## 三、您的权利

您可以查阅、复制、更正、补充、删除您的个人信息，可以撤回同意、注销账号（详见第七章）。

对您的投诉与举报，我们会在三十天内答复。

## 五、如何联系我们

如有疑问，请拨打客服电话 400-123-4567 或发送邮件至 privacy@xiaolu.example.cn，也可拨打4009876543。
"""


def kinds(findings):
    return {f.kind for f in findings}


# --- offsets -----------------------------------------------------------------------------------

_alphabet = stn.sampled_from(list("的我们收集个人信息（）()【】《》“”「」，。；\n\n #*-?、0123456789年月日"
                                  "继续使用视为同意去标识化無法識別繼續"))


@settings(max_examples=300, deadline=None)
@given(stn.text(alphabet=_alphabet, max_size=400), stn.sampled_from(["a.txt", "a.md", "a.html"]))
def test_every_quote_is_the_text_between_its_offsets(text, name):
    for f in analyze_text(text, name):
        assert f.quote == text[f.start:f.end]
        assert 0 <= f.start <= f.end <= len(text)
        assert f.line == text.count("\n", 0, f.start) + 1
        assert f.severity in ("error", "warning", "info")


@settings(max_examples=100, deadline=None)
@given(stn.text(max_size=300))
def test_offsets_hold_on_any_unicode(text):
    for f in analyze_text(text, "x.txt"):
        assert f.quote == text[f.start:f.end]


# --- findings on a synthetic policy ------------------------------------------------------------

def test_synthetic_policy_findings_are_located_and_explained():
    found = analyze_text(SYNTHETIC, "p.md")
    by_kind = {f.kind: f for f in found}
    assert by_kind["continued_use_acceptance"].rule == "C5"
    assert "继续使用" in by_kind["continued_use_acceptance"].quote
    assert "三十天" in by_kind["deadline_over_cap"].quote
    assert by_kind["contact_inconsistent"].quote == "4009876543"
    assert by_kind["summary_contradicts_body"].rule == "N1"
    assert by_kind["numbering_gap"].quote == "五"  # 三 is followed by 五
    assert "broken_cross_reference" in kinds(found)  # 详见第七章: there is no chapter 7
    for f in found:
        assert f.message and f.suggestion
        assert any("\u4e00" <= ch <= "\u9fff" for ch in f.message)


def test_text_defects():
    text = ("版本生效日期：2021年    月   日\t Comment by legal-x: 请填写日期。\n"
            "我们会收集您的的手机号码（用于登录。\n"
            "我们会收集收集您的信息。锟斤拷\n"
            "详情见[隐私设置](#)。</p>\n")
    found = analyze_text(text, "t.txt")
    k = kinds(found)
    assert {"blank_date", "reviewer_comment", "corrupted_characters", "unclosed_bracket", "duplicated_word",
            "placeholder_link", "wp_artefact"} <= k
    assert next(f for f in found if f.kind == "blank_date").rule == "N8"


def test_thirty_days_is_within_the_cap_for_rights_requests_only():
    ok = analyze_text("您可以申请查阅您的个人信息，我们将在三十天内答复您的请求。", "t.txt")
    late = analyze_text("如您有任何投诉或建议，我们将在三十天内答复。", "t.txt")
    assert "deadline_over_cap" not in kinds(ok)
    assert "deadline_over_cap" in kinds(late)


def test_conflicts_with_the_law():
    text = ("如果您不同意本政策，请立即停止使用我们的服务。未经您删除，将被视为持续授权同意我们使用。"
            "我们将通过去标识化处理使信息无法识别您的身份后与合作伙伴共享。"
            "我们会向您发送商业广告信息。")
    k = kinds(analyze_text(text, "t.txt"))
    assert {"take_it_or_leave_it", "deemed_consent", "deidentified_as_anonymous", "marketing_in_policy"} <= k


def test_missing_elements_are_reported_without_a_location():
    found = analyze_text("我们重视您的隐私。", "t.txt")
    missing = [f for f in found if f.kind.startswith("missing_")]
    assert {"missing_processor_name", "missing_retention", "missing_rights", "missing_minors",
            "missing_cross_border", "missing_reply_deadline", "missing_sdk_list", "missing_dual_lists"} <= kinds(missing)
    assert all(f.start == f.end == 0 and f.quote == "" for f in missing)


def test_traditional_text_is_read_as_simplified_with_original_offsets():
    text = "若您在本政策修訂後繼續使用本服務，即表示您已接受修訂後的本政策。對您的投訴，我們將在三十天內回復。"
    found = analyze_text(text, "t.txt")
    f = next(f for f in found if f.kind == "continued_use_acceptance")
    assert f.quote == text[f.start:f.end]
    assert f.quote.startswith("繼續使用")
    assert "deadline_over_cap" in kinds(found)


# --- formats ----------------------------------------------------------------------------------

def _docx(path: Path, paragraphs: list[str]) -> None:
    body = "".join(f'<w:p><w:r><w:t xml:space="preserve">{p}</w:t></w:r></w:p>' for p in paragraphs)
    xml = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
           '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
           f"<w:body>{body}</w:body></w:document>")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>')
        z.writestr("word/document.xml", xml)


def test_docx_html_md_and_txt(tmp_path):
    lines = SYNTHETIC.splitlines()
    (tmp_path / "p.txt").write_text(SYNTHETIC, encoding="utf-8")
    (tmp_path / "p.md").write_text(SYNTHETIC, encoding="utf-8")
    html = "<html><body>" + "".join(f"<p>{line}</p>\n" for line in lines) + "</body></html>"
    (tmp_path / "p.html").write_text(html, encoding="utf-8")
    _docx(tmp_path / "p.docx", lines)
    for name in ("p.txt", "p.md", "p.html", "p.docx"):
        result = analyze_file(tmp_path / name)
        assert result.text == read_policy(tmp_path / name)
        got = kinds(result.findings)
        assert "continued_use_acceptance" in got, name
        assert "contact_inconsistent" in got, name
        for f in result.findings:
            assert f.quote == result.text[f.start:f.end]
    assert "继续使用" in read_policy(tmp_path / "p.docx")


def test_gb18030_text_is_decoded(tmp_path):
    p = tmp_path / "gbk.txt"
    p.write_bytes(SYNTHETIC.encode("gb18030"))
    assert read_policy(p) == SYNTHETIC


# --- draft and --against ------------------------------------------------------------------------

def test_draft_of_a_synthetic_policy_validates_and_quotes_the_text():
    draft = draft_declaration(SYNTHETIC, "p.md", tenant="xiaolu")
    decl = parse_declaration(dump_yaml(draft), "draft.yaml")
    assert decl.controller.legal_name.value == "杭州小鹿网络科技有限公司"
    assert decl.version.effective_date.value.isoformat() == "2025-03-08"
    items = set(decl.collected_items())
    assert {"contact.mobile", "account.sms_code", "location.precise"} <= items
    perms = {p.permission for f in decl.features for p in f.permissions}
    assert {"notifications", "location"} <= perms
    assert decl.response_time.days == 30
    assert decl.policy_changes.continued_use_is_acceptance is True
    assert decl.version.stated_version.value is None and decl.version.stated_version.source.silent
    assert check_quotes(decl, {"p.md": SYNTHETIC}) == []


def test_against_reports_where_text_and_declaration_disagree(tmp_path):
    draft = draft_declaration(SYNTHETIC, "p.md", tenant="xiaolu")
    decl_file = tmp_path / "d.yaml"
    decl_file.write_text(dump_yaml(draft), encoding="utf-8")
    changed = SYNTHETIC.replace("400-123-4567", "400-555-0000").replace("三十天", "十五天").replace("精准定位信息", "")
    (tmp_path / "p.md").write_text(changed, encoding="utf-8")
    result = analyze_file(tmp_path / "p.md", against=load_declaration(decl_file))
    got = {f.kind for f in result.findings if f.kind.startswith("against_")}
    assert {"against_contact", "against_deadline"} <= got
    for f in result.findings:
        assert f.quote == result.text[f.start:f.end]


# --- command line -------------------------------------------------------------------------------

def test_cli_json_draft_validate(tmp_path):
    src = tmp_path / "p.md"
    src.write_text(SYNTHETIC, encoding="utf-8")
    out = tmp_path / "draft.yaml"
    r = runner.invoke(app, ["policy", "analyze", str(src), "--json", "--draft", str(out)])
    assert r.exit_code == 1, r.output  # the text has errors (C5, R10)
    data = json.loads(r.stdout[r.stdout.index("["):])
    assert data and all(set(d) == KEYS for d in data)
    text = src.read_text(encoding="utf-8")
    assert all(d["quote"] == text[d["start"]:d["end"]] for d in data)
    v = runner.invoke(app, ["policy", "validate", str(out)])
    assert v.exit_code == 0, v.output
    a = runner.invoke(app, ["policy", "analyze", str(src), "--against", str(out)])
    assert "继续使用" in a.stdout


def test_cli_refuses_unknown_types_in_chinese(tmp_path):
    p = tmp_path / "p.pdf"
    p.write_bytes(b"%PDF")
    r = runner.invoke(app, ["policy", "analyze", str(p)])
    assert r.exit_code == 2
    assert "不支持的文件类型" in r.output


@pytest.mark.parametrize("suffix", [".txt", ".md"])
def test_clean_text_exit_code_zero_when_no_errors(tmp_path, suffix):
    p = tmp_path / f"p{suffix}"
    p.write_text("我们重视您的隐私。", encoding="utf-8")
    r = runner.invoke(app, ["policy", "analyze", str(p)])
    assert r.exit_code == 1  # missing processor name and purposes are errors
