"""Declaration checks against Chinese law (合规检查): each finding names a RULES.md rule id.

A finding must be true of the policy text the declaration encodes. The checks therefore only read what
the declaration states, or what it records as silent; they never guess at what the app does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from yinsi.domain.policy import (
    REQUIRED_RIGHTS,
    RIGHT_ZH,
    DayUnit,
    Declaration,
    RetentionRule,
    RightKind,
)
from yinsi.domain.retention import shortfalls
from yinsi.domain.taxonomy import LegalBasis, taxonomy

Severity = Literal["error", "warning", "info"]
SEVERITY_ZH: dict[str, str] = {"error": "错误", "warning": "警告", "info": "提示"}


@dataclass(frozen=True, order=True)
class Finding:
    """One lint finding: rule id, severity, element path, Chinese message."""

    rule: str
    severity: Severity
    path: str
    message: str


Check = Callable[[Declaration], Iterator[Finding]]
CHECKS: list[Check] = []


def check(fn: Check) -> Check:
    CHECKS.append(fn)
    return fn


def lint_declaration(decl: Declaration) -> list[Finding]:
    """All findings for one declaration, errors first, then by rule and path."""
    findings = [f for c in CHECKS for f in c(decl)]
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(findings, key=lambda f: (order[f.severity], _rule_key(f.rule), f.path))


def _rule_key(rule: str) -> tuple[str, int]:
    return rule[0], int(rule[1:]) if rule[1:].isdigit() else 0


def _names(ids: list[str]) -> str:
    tax = taxonomy()
    return "、".join(tax.item(i).name if i in tax.items else i for i in ids)


# --- N: notice and the policy itself ----------------------------------------------------------------

@check
def _n1_controller(decl: Declaration) -> Iterator[Finding]:
    c = decl.controller
    if not c.legal_name.value:
        yield Finding("N1", "error", "controller.legal_name", "未载明个人信息处理者的名称")
    if not c.contacts:
        yield Finding("N1", "error", "controller.contacts", "未提供联系方式")
    if not c.registered_address.value and not c.office_address.value:
        yield Finding("N1", "warning", "controller", "未载明处理者的注册地址或办公地址")
    for f in decl.features:
        if not f.purposes:
            yield Finding("N1", "error", f"features[{f.id}].purposes", f"功能「{f.name}」未说明处理目的")
        if not f.collections and not f.permissions and not f.collects_nothing:
            yield Finding("N1", "info", f"features[{f.id}].collections",
                          f"功能「{f.name}」未列明收集的个人信息种类")


@check
def _n2_sensitive_notice(decl: Declaration) -> Iterator[Finding]:
    tax = taxonomy()
    for f in decl.features:
        explained = {i for n in f.sensitive_notice if n.necessity and n.impact for i in n.items}
        missing = [i for i in dict.fromkeys(f.item_ids()) if tax.is_sensitive(i) and i not in explained]
        if missing:
            yield Finding("N2", "warning", f"features[{f.id}]",
                          f"功能「{f.name}」处理敏感个人信息（{_names(missing)}），未说明其必要性及对个人权益的影响")


@check
def _n3_retention(decl: Declaration) -> Iterator[Finding]:
    def states_period(r: RetentionRule) -> bool:
        return bool(r.period_days or (r.determination and not r.generic))

    covered = {i for r in decl.retention if states_period(r) for i in r.items}
    if "*" not in covered:
        missing = [i for i in decl.collected_items() if i not in covered]
        if missing:
            yield Finding("N3", "error", "retention",
                          f"以下个人信息未载明保存期限或确定期限的方法：{_names(missing)}")
    for k, r in enumerate(decl.retention):
        if r.action == "unstated" and states_period(r):
            scope = "全部个人信息" if "*" in r.items else _names(list(r.items))
            yield Finding("N3", "warning", f"retention[{k}].action", f"保存规则（{scope}）未说明期满后删除还是匿名化")


@check
def _n4_rights(decl: Declaration) -> Iterator[Finding]:
    offered = {r.right for r in decl.rights}
    if decl.account_cancellation is not None:
        offered.add(RightKind.CANCEL_ACCOUNT)
    for kind in REQUIRED_RIGHTS:
        if kind not in offered:
            yield Finding("N4", "error", f"rights[{kind.value}]",
                          f"未告知个人「{RIGHT_ZH[kind]}」的权利及行使方式（网络数据安全管理条例 21(4)）")
    for r in decl.rights:
        if not r.channels:
            yield Finding("N1", "warning", f"rights[{r.right.value}].channels",
                          f"「{RIGHT_ZH[r.right]}」权利未说明行使途径")


@check
def _n6_sdks(decl: Declaration) -> Iterator[Finding]:
    labels = {"provider": "提供方", "purpose": "目的", "items": "收集的个人信息", "collection_method": "收集方式",
              "policy_url": "隐私政策链接"}
    for s in decl.sdks:
        missing = [zh for attr, zh in labels.items() if not getattr(s, attr)]
        if missing:
            yield Finding("N6", "warning", f"sdks[{s.id}]", f"SDK「{s.name}」未载明：{'、'.join(missing)}")


@check
def _n7_archive(decl: Declaration) -> Iterator[Finding]:
    if decl.policy_changes.archive_old_versions is not True:
        yield Finding("N7", "warning", "policy_changes.archive_old_versions", "未承诺存档旧版本隐私政策供查阅")
    if not decl.policy_changes.notice_channels:
        yield Finding("N7", "warning", "policy_changes.notice_channels", "未说明政策变更的通知方式")


@check
def _n8_version(decl: Declaration) -> Iterator[Finding]:
    v = decl.version
    if v.effective_date.value is None:
        yield Finding("N8", "error", "version.effective_date", "隐私政策未载明生效日期")
    if v.stated_version.value is None and v.updated_date.value is None:
        yield Finding("N8", "warning", "version", "隐私政策未载明版本号或更新日期")


# --- C: consent and legal basis ------------------------------------------------------------------

@check
def _c4_separate_consent(decl: Declaration) -> Iterator[Finding]:
    tax = taxonomy()
    for f in decl.features:
        if f.legal_basis is not LegalBasis.CONSENT:
            continue
        sensitive = [i for i in dict.fromkeys(f.item_ids()) if tax.is_sensitive(i)]
        if not sensitive:
            continue
        if f.separate_consent is False:
            yield Finding("C4", "error", f"features[{f.id}].separate_consent",
                          f"功能「{f.name}」收集敏感个人信息（{_names(sensitive)}），未设单独同意，仅以一般同意处理（PIPL 29）")
        elif f.separate_consent is None:
            yield Finding("C4", "warning", f"features[{f.id}].separate_consent",
                          f"功能「{f.name}」收集敏感个人信息（{_names(sensitive)}），未说明取得单独同意（PIPL 29）")
    for r in decl.recipients:
        if r.legal_basis is not LegalBasis.CONSENT or r.action not in ("provide", "transfer", "disclose",
                                                                        "transfer_abroad"):
            continue
        if r.separate_consent is not True:
            yield Finding("C4", "error" if r.separate_consent is False else "warning",
                          f"recipients[{r.id}].separate_consent",
                          f"向「{r.name}」提供个人信息未说明取得单独同意（PIPL 23、25）")


@check
def _c5_continued_use(decl: Declaration) -> Iterator[Finding]:
    if decl.policy_changes.continued_use_is_acceptance:
        yield Finding("C5", "error", "policy_changes.continued_use_is_acceptance",
                      "将继续使用视为同意变更后的政策；处理目的、方式或个人信息种类变更应重新取得同意（PIPL 14）")


@check
def _c10_personalised(decl: Declaration) -> Iterator[Finding]:
    for f in decl.features:
        if f.personalized and f.opt_out is None:
            yield Finding("C10", "error", f"features[{f.id}].opt_out",
                          f"功能「{f.name}」进行个性化推荐，未提供不针对个人特征的选项或关闭方式（PIPL 24）")


# --- P: permissions ------------------------------------------------------------------------------

@check
def _p1_permissions(decl: Declaration) -> Iterator[Finding]:
    tax = taxonomy()
    for f in decl.features:
        for p in f.permissions:
            if not p.purpose:
                yield Finding("P1", "warning", f"features[{f.id}].permissions[{p.permission}]",
                              f"功能「{f.name}」申请{tax.permission(p.permission).name}权限，未说明目的")
            if p.timing in ("first_run", "app_update"):
                when = "首次运行" if p.timing == "first_run" else "版本更新"
                yield Finding("P1", "error", f"features[{f.id}].permissions[{p.permission}]",
                              f"{tax.permission(p.permission).name}权限在{when}时申请，而非在使用「{f.name}」功能时申请")


# --- R: rights handling --------------------------------------------------------------------------

@check
def _r9_r10_reply_times(decl: Declaration) -> Iterator[Finding]:
    general = decl.response_time
    if general.days is None:
        yield Finding("R10", "warning", "response_time", "未承诺答复个人请求的期限")
    complaint = decl.reply_time_for(RightKind.COMPLAINT)
    if complaint.days is not None:
        if complaint.unit is DayUnit.WORKING and complaint.days > 15:
            yield Finding("R10", "error", "response_time",
                          f"投诉答复期限为{complaint.describe()}，超过15个工作日")
        elif complaint.unit is DayUnit.NATURAL and complaint.days > 30:
            yield Finding("R10", "error", "response_time",
                          f"答复期限为{complaint.describe()}，超过30天且超过投诉处理15个工作日的上限")
        elif complaint.unit is DayUnit.NATURAL and complaint.days > 15 + 6:
            yield Finding("R10", "warning", "response_time",
                          f"答复期限为{complaint.describe()}，可能超过投诉处理15个工作日的上限")
    c = decl.account_cancellation
    if c is not None and c.reply_time is not None and c.reply_time.days is not None:
        t = c.reply_time
        if (t.unit is DayUnit.WORKING and t.days is not None and t.days > 15) or (
            t.unit is DayUnit.NATURAL and t.days is not None and t.days > 21
        ):
            yield Finding("R9", "error", "account_cancellation.reply_time",
                          f"注销处理期限为{t.describe()}，超过15个工作日")
    if c is not None and not c.channels:
        yield Finding("R9", "warning", "account_cancellation.channels", "未说明注销账号的途径")


# --- T: retention -----------------------------------------------------------------------------------

THREE_YEARS = 3 * 365


@check
def _t2_transaction_hold(decl: Declaration) -> Iterator[Finding]:
    tx = [i for i in decl.collected_items() if i.startswith("transaction.") or i == "property.transaction_record"]
    if not tx:
        return
    held = {i for r in decl.retention
            if r.legal_hold is not None and (r.legal_hold.min_days or 0) >= THREE_YEARS for i in r.items}
    if "*" not in held and not any(i in held for i in tx):
        yield Finding("T2", "warning", "retention",
                      f"收集交易信息（{_names(tx)}），未载明其法定保存期限（电子商务法 31：自交易完成之日起不少于三年）")


@check
def _t2_promise_below_law(decl: Declaration) -> Iterator[Finding]:
    for k, law in shortfalls(decl):
        r = decl.retention[k]
        yield Finding("T2", "warning", f"retention[{k}].period_days",
                      f"承诺保存{_names(list(r.items))}不超过 {r.period_days} 天，少于法定最短期限 {law.min_days} 天"
                      f"（{law.basis}）；期满清理时将按法定期限保留并记录理由")


# --- M: minors -----------------------------------------------------------------------------------

@check
def _minors(decl: Declaration) -> Iterator[Finding]:
    m = decl.minors
    if m.guardian_consent_under is None or m.guardian_consent_under < 14:
        yield Finding("M1", "error", "minors.guardian_consent_under",
                      "未规定处理不满十四周岁未成年人个人信息须取得其父母或其他监护人同意（PIPL 31）")
    if m.adult_age is None:
        yield Finding("M2", "warning", "minors.adult_age", "未说明成年人的年龄标准")
    if m.unverified_deletion is not True:
        yield Finding("M3", "warning", "minors.unverified_deletion",
                      "未承诺删除未经可证实的监护人同意而收集的未成年人个人信息")


# --- I: incidents -----------------------------------------------------------------------------------

@check
def _incidents(decl: Declaration) -> Iterator[Finding]:
    n = decl.incident_notice
    if not n.channels and not n.announcement:
        yield Finding("I2", "error", "incident_notice.channels", "未说明发生个人信息安全事件时的告知方式")
    if not n.contents:
        yield Finding("I1", "warning", "incident_notice.contents",
                      "未说明安全事件告知的内容（信息种类、原因、可能的危害、已采取的措施、个人可采取的措施、联系方式）")


# --- V: recipients ---------------------------------------------------------------------------------

@check
def _recipients(decl: Declaration) -> Iterator[Finding]:
    for r in decl.recipients:
        if r.kind == "authority" or r.legal_basis is not LegalBasis.CONSENT:
            continue
        if r.action in ("provide", "transfer", "transfer_abroad"):
            missing = [zh for ok, zh in ((r.contact, "联系方式"), (r.purpose, "处理目的"), (r.method, "处理方式"),
                                         (r.items, "个人信息种类")) if not ok]
            if missing:
                yield Finding("V1", "warning", f"recipients[{r.id}]",
                              f"向「{r.name}」提供个人信息，未告知接收方的{'、'.join(missing)}（PIPL 23）")
        if (r.action == "entrust" or r.kind == "entrusted_processor") and r.contract is not True:
            yield Finding("V2", "warning", f"recipients[{r.id}].contract",
                          f"委托「{r.name}」处理个人信息，未说明签订委托处理协议（PIPL 21）")


# --- X: cross-border ---------------------------------------------------------------------------------

@check
def _cross_border(decl: Declaration) -> Iterator[Finding]:
    s = decl.storage
    if s.cross_border == "yes" and not s.mechanism:
        yield Finding("X1", "error", "storage.mechanism",
                      "向境外提供个人信息，未说明所依据的机制（安全评估、认证或标准合同）（PIPL 38）")
    if s.cross_border == "unstated" and not s.location:
        yield Finding("X1", "info", "storage", "未说明个人信息的存储地点及是否向境外提供")
    for r in decl.recipients:
        if r.abroad and r.separate_consent is not True:
            yield Finding("X1", "error", f"recipients[{r.id}]",
                          f"向境外接收方「{r.name}」提供个人信息，未说明取得单独同意（PIPL 39）")

