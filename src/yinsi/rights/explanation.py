"""Explanation and complaints (解释说明、投诉): the processing rules as they apply to the person (R5; an
automated decision, PIPL 24), and requests that a person answers (a complaint within 15 working days, R10)."""

from __future__ import annotations

from yinsi.domain.rights import RequestType, State
from yinsi.rights.context import Job, RightsContext
from yinsi.rights.steps import open_manual, wait_manual
from yinsi.rights.transitions import finish


def run_explanation(ctx: RightsContext, job: Job) -> State:
    """R5: the processing rules as they apply to this person, from the declaration and the processing
    records; a staff member adds the answer to the person's question, or explains an automated decision."""
    decl = job.decl or ctx.declaration(job.tenant)
    report = ctx.consents.report(job.tenant, job.subject)
    lines = [f"{f.name}（{'基本' if f.kind.value == 'basic' else '扩展'}业务功能）：目的 {'；'.join(f.purposes)}；"
             f"合法性基础 {f.legal_basis.value}" for f in decl.features]
    result = {"features": len(decl.features), "collected_records": len(report.get("collected", [])),
              "shared_records": len(report.get("shared", [])), "rules": lines}
    about = job.details.get("about", "rules")
    key = "explanation:answer"
    if open_manual(ctx, job, [key]):
        what = ("解释自动化决策的依据与影响，并告知拒绝的方式（PIPL 24）" if about == "automated_decision"
                else "答复本人的具体问题")
        return wait_manual(ctx, job, [(key, what, "个人信息保护负责人")], "处理规则说明已生成，待人工答复", result)
    return finish(ctx, job, result, "已解释说明处理规则")


def run_answer(ctx: RightsContext, job: Job) -> State:
    """A request a person answers (a complaint, R10): waits for the privacy officer, then closes."""
    if not open_manual(ctx, job, ["answer"]):
        return finish(ctx, job, {"answered": True}, "已答复")
    return wait_manual(ctx, job, [("answer", "答复投诉" if job.type is RequestType.COMPLAINT else "答复请求",
                                   "个人信息保护负责人")], "须由个人信息保护负责人答复（R10：15 个工作日内）")
