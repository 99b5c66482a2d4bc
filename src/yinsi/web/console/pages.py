"""The console's pages and actions (``/console/…``).

Every page authenticates the member of staff from the ``yinsi_staff`` session cookie
(:func:`yinsi.web.auth.session_principal`: no session, or one ended by the idle timeout or logout, goes to
the log-in page), checks the role for the page's action with :func:`yinsi.api.deps.check_staff` (the API's
own check: role and second factor) and shows a 403 page when it fails; the use cases of
:mod:`yinsi.staff.actions` and :mod:`yinsi.services.staff_desk` check the account again as it is now and
audit refusals. Every POST checks the form's CSRF token first (:func:`yinsi.web.security.checked_form`).
A use case's refusal is shown on the page it came from, scrubbed of what the form sent and of anything
PI-shaped; a successful action answers with a 303 to the page that shows its result, naming the result
by a fixed code (never a value) in the address.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from yinsi.api.deps import STAFF_COOKIE, check_staff, services
from yinsi.api.problems import mask_pi
from yinsi.api.routes.staff import desk
from yinsi.auth.principals import AppScope, AuthError, StaffPrincipal
from yinsi.domain.rights import REFUSAL_ZH, STATE_ZH, RefusalGround, State
from yinsi.services import staff_desk
from yinsi.staff import actions
from yinsi.staff.errors import AccessDenied, NotFound, RequestStateError, SeparationOfDuties, StaffError
from yinsi.staff.roles import ROLE_LABELS, Role, StaffAction
from yinsi.web.app import PageError
from yinsi.web.auth import safe_next, session_principal
from yinsi.web.render import page as render
from yinsi.web.security import checked_form, end_session, start_session

router = APIRouter(prefix="/console", include_in_schema=False, default_response_class=HTMLResponse)

A = StaffAction
LOGIN_URL = "/console/login"

#: What an action's redirect says (fixed texts: nothing the form sent travels in an address).
DONE_ZH: dict[str, str] = {
    "verified": "已记录当面核验身份。", "run": "已执行请求。", "completed": "已确认人工步骤，请求继续处理。",
    "refused": "已拒绝该请求；拒绝依据与理由已告知本人。", "approved": "已批准。", "rejected": "已驳回。",
    "requested": "已提交审批申请，等待另一名个人信息保护负责人审批。", "acked": "已确认告警。",
    "revoked": "已吊销应用密钥。", "published": "新版本已发布。", "requeued": "作业已重新入队。",
}

#: The console's sections: (path, title, what it is for, the action that opens it; None: every member).
SECTIONS: list[tuple[str, str, str, StaffAction | None]] = [
    ("/console/requests", "权利请求", "队列、处理经过、人工步骤、拒绝", A.START_RIGHTS_REQUEST),
    ("/console/approvals", "审批", "批量导出与未成年人信息访问的双人审批", A.VIEW_MASKED),
    ("/console/subjects", "个人信息查询", "掩码查看；说明事由后查看单项明文", A.VIEW_MASKED),
    ("/console/audit", "审计日志", "查阅与校验", A.VIEW_AUDIT_LOG),
    ("/console/alerts", "异常告警", "异常登录、批量注册", A.VIEW_ALERTS),
    ("/console/app-keys", "应用密钥", "创建、轮换、吊销", A.CONFIGURE),
    ("/console/jobs", "死信作业", "多次失败后放弃的后台作业；重新入队", A.CONFIGURE),
    ("/console/policies", "隐私政策", "版本、检查结果、差异、发布", None),
    ("/console/analyze", "政策文本检查", "上传政策文本，在原文中标出问题", A.CONFIGURE),
    ("/console/policy-notices", "变更告知", "变更告知的发送情况与重新同意进度", A.CONFIGURE),
]

SCOPE_ZH: dict[str, str] = {
    "gate": "处理闸门（询问能否处理）", "consent": "同意记录", "permissions": "系统权限记录", "subjects": "个人登记",
    "requests": "权利请求受理", "records": "处理记录",
}
QUEUE_ZH = {"open": "全部未结", "overdue": "已逾期", "due_soon": "即将到期", "waiting_manual": "等待人工处理"}
APPROVAL_KIND_ZH = {"export": "批量导出（掩码）", "unmask_bulk": "批量导出（明文）", "minor_access": "访问未成年人个人信息"}
APPROVAL_STATUS_ZH = {"pending": "待审批", "approved": "已批准", "rejected": "已驳回", "used": "已使用", "expired": "已过期"}
#: Labels of the keys of a request's result and of its steps' details (read-back results).
DETAIL_ZH = {"package": "个人信息包", "values": "值的数量", "items": "信息项", "excluded": "须另行提供",
             "who": "处理人", "what": "内容", "confirmed_by": "确认人", "note": "说明", "deleted": "已删除",
             "updated": "已更新", "verified": "回读核验", "rows": "行数", "held": "依法留存", "error": "错误",
             "recipients": "接收方", "notified": "已通知", "restricted": "已限制"}
STEP_STATUS_ZH = {"done": "已完成", "manual_pending": "等待人工处理", "pending": "待执行", "failed": "失败",
                  "skipped": "已跳过", "verified": "已回读核验"}


# --- who is on the page --------------------------------------------------------------------------------------------
@dataclass
class Ctx:
    """The member of staff on this page and what the account may do now (the menu and the forms shown)."""

    who: StaffPrincipal
    allowed: frozenset[StaffAction]

    def can(self, action: StaffAction | str) -> bool:
        return StaffAction(action) in self.allowed


class Forbidden(Exception):
    def __init__(self, c: Ctx | None, message: str, rule: str | None) -> None:
        super().__init__(message)
        self.c, self.message, self.rule = c, message, rule


def _ctx(request: Request, action: StaffAction | None) -> Ctx:
    """Authenticate, then check the page's action as the API does (S3, second factor)."""
    who: StaffPrincipal = session_principal(request, STAFF_COOKIE, "staff", LOGIN_URL)
    c = Ctx(who, staff_desk.allowed_actions(who, desk(request).staff))
    if action is not None:
        try:
            check_staff(who, action)
        except AuthError as exc:
            raise Forbidden(c, exc.detail, exc.rule) from None
        if action not in c.allowed:
            raise Forbidden(c, f"您的账号现在无权{action.label}（最小权限）", "S3")
    elif not c.allowed and not actions_member(request, who):
        raise Forbidden(c, "该账号已停用或不属于本租户的工作人员", "S3")
    return c


def actions_member(request: Request, who: StaffPrincipal) -> bool:
    try:
        actions.list_staff(who, desk(request).staff)
    except StaffError:
        return False
    return True


def page(request: Request, c: Ctx | None, template: str, status: int = 200, **values: Any) -> Response:
    """Render a console template with the menu of what the member of staff may open."""
    sections, me = [], None
    if c is not None:
        sections = [{"href": href, "title": title, "about": about, "current": request.url.path.startswith(href)}
                    for href, title, about, act in SECTIONS if act is None or c.can(act)]
        roles = [ROLE_LABELS[Role(r)] for r in sorted(c.who.roles) if r in Role.__members__.values()]
        me = {"staff_id": c.who.staff_id, "tenant": c.who.tenant, "roles": "、".join(roles) or "无角色"}
    notice = values.pop("notice", None)
    error = values.pop("error", None)
    flash = {"kind": "error", "text": error} if error else ({"kind": "ok", "text": notice} if notice else None)
    return render(request, f"console/{template}", {"sections": sections, "me": me, "c": c, "flash": flash,
                                                   "A": StaffAction, **values}, status=status)


def _guard(request: Request, fn: Callable[[], Response]) -> Response:
    try:
        return fn()
    except Forbidden as exc:
        return page(request, exc.c, "error.html", 403, title="无权访问", message=mask_pi(exc.message), rule=exc.rule)


def _see(path: str, done: str | None = None) -> RedirectResponse:
    return RedirectResponse(path + (f"?done={done}" if done else ""), status_code=303)


def _done(done: str | None) -> str | None:
    return DONE_ZH.get(done or "")


def _scrub(text: str, sent: tuple[str, ...]) -> str:
    for value in sorted((v for v in sent if v and len(v) > 1), key=len, reverse=True):
        text = text.replace(value, "…")
    return mask_pi(text)


def _status(exc: Exception) -> int:
    from yinsi.rights.service import RequestError

    if isinstance(exc, RequestError):  # as the API answers it: an unknown (or another tenant's) request is 404
        return 404 if "没有编号为" in str(exc) else 409
    if isinstance(exc, AccessDenied):
        return 403
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, RequestStateError | SeparationOfDuties):
        return 409
    return 422


@contextmanager
def _refusals(sent: tuple[str, ...] = ()) -> Iterator[list[tuple[int, str]]]:
    """A use case's refusal as (status, message) to show on the page, instead of an exception."""
    caught: list[tuple[int, str]] = []
    try:
        yield caught
    except AccessDenied as exc:
        caught.append((403, _scrub(exc.authorization.reason_zh, sent)))
    except AuthError as exc:
        caught.append((exc.status, _scrub(exc.detail, sent)))
    except (StaffError, ValueError) as exc:
        caught.append((_status(exc), _scrub(str(exc), sent)))
    except Exception as exc:  # the rights and publishing services' own errors carry Chinese messages
        name = type(exc).__name__
        if type(exc).__module__.startswith("yinsi.") and name.endswith(("Error", "Conflict", "NotFound")):
            caught.append((409, _scrub(str(exc), sent)))
        else:
            raise


# --- forms ---------------------------------------------------------------------------------------------------------
@dataclass
class Form:
    """A POSTed form whose CSRF token was checked: text fields (trimmed, bounded) and uploaded files."""

    data: FormData
    files: dict[str, bytes | None]

    def text(self, name: str, limit: int = 500) -> str:
        value = self.data.get(name)
        text = value.strip() if isinstance(value, str) else ""
        if len(text) > limit:
            raise PageError(422, "提交的内容有误", f"填写的内容过长（至多 {limit} 个字符）")
        return text

    def raw(self, name: str, limit: int) -> str:
        """A field as sent (newlines as the file had them: browsers send CRLF), without trimming."""
        value = self.data.get(name)
        text = value.replace("\r\n", "\n") if isinstance(value, str) else ""
        if len(text) > limit:
            raise PageError(422, "提交的内容有误", f"提交的内容过长（至多 {limit} 个字符）")
        return text

    def all(self, name: str) -> list[str]:
        return [v for v in self.data.getlist(name) if isinstance(v, str)]


async def _form(request: Request, *, files: dict[str, int] | None = None, cookie: str | None = STAFF_COOKIE) -> Form:
    """The form after its CSRF check; ``files``: upload fields and their size limits (one byte more is read,
    so that the use case can refuse what is too large)."""
    data = await checked_form(request, cookie)
    read: dict[str, bytes | None] = {}
    for name, limit in (files or {}).items():
        upload = data.get(name)
        read[name] = await upload.read(limit + 1) if isinstance(upload, UploadFile) and upload.filename else None
    return Form(data, read)


async def _post(request: Request, fn: Callable[..., Response], *args: Any, files: dict[str, int] | None = None) -> Response:
    form = await _form(request, files=files)
    return await run_in_threadpool(_guard, request, lambda: fn(request, form, *args))


# --- log-in, log-out -------------------------------------------------------------------------------------------------
@router.get("/login")
def login_form(request: Request, expired: str | None = None, out: str | None = None,
               next: str | None = None) -> Response:
    notice = "登录已失效（30 分钟未操作、超过有效期或已在别处退出），请重新登录。" if expired else None
    if out:
        notice = "您已退出登录。"
    return page(request, None, "login.html", title="工作人员登录", notice=notice, form={},
                next=safe_next(next, "/console/", "/console/"))


@router.post("/login")
async def login(request: Request) -> Response:
    form = await _form(request, cookie=None)  # the log-in form's token is keyed by the pre-session cookie
    return await run_in_threadpool(_login, request, form)


def _login(request: Request, form: Form) -> Response:
    from yinsi.api.routes.auth import client_ip
    from yinsi.api.throttle import FailureThrottle

    svc = services(request)
    auth = svc.need("staff")
    tenant, staff_id = form.text("tenant", 64), form.text("staff_id", 64)
    password, totp = form.text("password", 200), form.text("totp", 12)
    target = safe_next(form.text("next", 300), "/console/", "/console/")
    shown = {"tenant": tenant, "staff_id": staff_id}
    throttle: FailureThrottle = svc.extra.setdefault("staff_login_throttle", FailureThrottle())
    ip = client_ip(request)
    try:
        throttle.check(ip)
        token, _ = auth.login(tenant, staff_id, password, totp or None, ip=ip)
    except AuthError as exc:
        if exc.code == "login_failed":
            throttle.failed(ip)
        message = ("此账号可以接触个人信息，登录须输入身份验证器中的 6 位动态口令。" if exc.code == "totp_required"
                   else exc.detail)
        return page(request, None, "login.html", exc.status, title="工作人员登录", error=message, form=shown,
                    next=target)
    except Exception as exc:  # the per-address throttle (429 with Retry-After)
        if getattr(exc, "status", None) != 429:
            raise
        return page(request, None, "login.html", 429, title="工作人员登录", form=shown, next=target,
                    error="登录失败次数过多，请稍后再试。")
    response = RedirectResponse(target, status_code=303)
    start_session(request, response, STAFF_COOKIE, token, end=auth.logout)  # a new session id; the old one ends
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await _form(request)
    token = request.cookies.get(STAFF_COOKIE)
    if token:
        with suppress(AuthError):
            await run_in_threadpool(services(request).need("staff").logout, token)
    response = RedirectResponse(f"{LOGIN_URL}?out=1", status_code=303)
    end_session(request, response, STAFF_COOKIE)
    return response


# --- dashboard and queue -----------------------------------------------------------------------------------------------
@router.get("/")
def dashboard(request: Request) -> Response:
    def show() -> Response:
        c = _ctx(request, None)
        counts = None
        if c.can(A.START_RIGHTS_REQUEST):
            counts = staff_desk.queue(c.who, desk(request).staff, services(request).rights)["counts"]
        return page(request, c, "dashboard.html", title="工作台", counts=counts)
    return _guard(request, show)


@router.get("/requests")
def queue(request: Request, view: str = "open") -> Response:
    def show() -> Response:
        c = _ctx(request, A.START_RIGHTS_REQUEST)
        chosen = view if view in staff_desk.QUEUE_VIEWS else "open"
        data = staff_desk.queue(c.who, desk(request).staff, services(request).rights, view=chosen)
        return page(request, c, "queue.html", title="权利请求队列", data=data, views=QUEUE_ZH, view=chosen)
    return _guard(request, show)


def _valid_id(request_id: str) -> bool:
    return 8 <= len(request_id) <= 36 and all(ch in "0123456789abcdef-" for ch in request_id)


def _story_page(request: Request, c: Ctx, request_id: str, status: int = 200, **extra: Any) -> Response:
    if not _valid_id(request_id):
        return page(request, c, "error.html", 404, title="未找到", message="没有该请求")
    with _refusals() as err:
        story = staff_desk.story(c.who, desk(request).staff, services(request).rights, request_id)
    if err:
        code, message = err[0]
        return page(request, c, "error.html", code, title="无法显示该请求", message=message)
    grounds = [{"value": g.value, "label": REFUSAL_ZH[g][1], "rule": REFUSAL_ZH[g][0]} for g in RefusalGround]
    return page(request, c, "request.html", status, title=f"{story['type_zh']}请求", r=story, grounds=grounds,
                state_zh={s.value: STATE_ZH[s] for s in State}, detail_zh=DETAIL_ZH,
                step_zh=STEP_STATUS_ZH, evidence_mb=staff_desk.EVIDENCE_MAX_BYTES // (1024 * 1024), **extra)


@router.get("/requests/{request_id}")
def request_page(request: Request, request_id: str, done: str | None = None) -> Response:
    return _guard(request, lambda: _story_page(request, _ctx(request, A.START_RIGHTS_REQUEST), request_id,
                                               notice=_done(done)))


def _act_on_request(request: Request, request_id: str, action: StaffAction, done: str,
                    call: Callable[[Ctx], Any]) -> Response:
    c = _ctx(request, action)
    if not _valid_id(request_id):
        return page(request, c, "error.html", 404, title="未找到", message="没有该请求")
    with _refusals() as err:
        call(c)
    if err:
        code, message = err[0]
        return _story_page(request, c, request_id, code, error=message)
    return _see(f"/console/requests/{request_id}", done)


@router.post("/requests/{request_id}/verify")
async def verify(request: Request, request_id: str) -> Response:
    def act(request: Request, form: Form) -> Response:
        how = form.text("how")
        return _act_on_request(request, request_id, A.START_RIGHTS_REQUEST, "verified", lambda c: actions.verify_in_person(
            c.who, desk(request).staff, services(request).rights, request_id, how))
    return await _post(request, act)


@router.post("/requests/{request_id}/run")
async def run(request: Request, request_id: str) -> Response:
    def act(request: Request, form: Form) -> Response:
        return _act_on_request(request, request_id, A.HANDLE_RIGHTS_REQUEST, "run", lambda c: staff_desk.run_request(
            c.who, desk(request).staff, services(request).rights, request_id))
    return await _post(request, act)


@router.post("/requests/{request_id}/complete")
async def complete(request: Request, request_id: str) -> Response:
    def act(request: Request, form: Form) -> Response:
        note, reference, step = form.text("note"), form.text("reference", 200), form.text("step", 64)
        return _act_on_request(request, request_id, A.HANDLE_RIGHTS_REQUEST, "completed",
                               lambda c: staff_desk.complete_with_evidence(
                                   c.who, desk(request).staff, services(request).rights, request_id, note,
                                   step=step or None, reference=reference, evidence=form.files.get("evidence")))
    return await _post(request, act, files={"evidence": staff_desk.EVIDENCE_MAX_BYTES})


@router.post("/requests/{request_id}/refuse")
async def refuse(request: Request, request_id: str) -> Response:
    def act(request: Request, form: Form) -> Response:
        ground, detail = form.text("ground", 40), form.text("detail")

        def call(c: Ctx) -> None:
            if ground not in RefusalGround.__members__.values():
                raise ValueError("请选择拒绝依据（R7）")
            if not detail:
                raise ValueError("请填写告知本人的拒绝理由")
            actions.refuse_request(c.who, desk(request).staff, services(request).rights, request_id,
                                   RefusalGround(ground), detail)
        return _act_on_request(request, request_id, A.HANDLE_RIGHTS_REQUEST, "refused", call)
    return await _post(request, act)


@router.post("/requests/{request_id}/identifiers")
async def identifiers(request: Request, request_id: str) -> Response:
    def act(request: Request, form: Form) -> Response:
        c = _ctx(request, A.UNMASK)
        reason = form.text("reason")
        if not _valid_id(request_id):
            return page(request, c, "error.html", 404, title="未找到", message="没有该请求")
        with _refusals() as err:
            found = actions.request_identifiers(c.who, desk(request).staff, services(request).rights, request_id,
                                                reason)
        if err:
            code, message = err[0]
            return _story_page(request, c, request_id, code, error=message)
        return _story_page(request, c, request_id, identifiers=found)
    return await _post(request, act)


# --- approvals (four-eyes) -------------------------------------------------------------------------------------------------
def _approvals_page(request: Request, c: Ctx, status: int = 200, **extra: Any) -> Response:
    with _refusals() as err:
        found = actions.list_requests(c.who, desk(request).staff)
    if err:
        code, message = err[0]
        return page(request, c, "error.html", code, title="无法显示审批", message=message)
    rows = [{**a.to_dict(), "kind_zh": APPROVAL_KIND_ZH.get(a.kind, a.kind),
             "status_zh": APPROVAL_STATUS_ZH.get(a.status, a.status)} for a in reversed(found)]
    return page(request, c, "approvals.html", status, title="审批（双人审批）", approvals=rows, **extra)


@router.get("/approvals")
def approvals(request: Request, done: str | None = None) -> Response:
    return _guard(request, lambda: _approvals_page(request, _ctx(request, A.VIEW_MASKED), notice=_done(done)))


def _approval_id_ok(approval_id: str) -> bool:
    return 1 <= len(approval_id) <= 64 and all(ch.isalnum() or ch in "_.:-" for ch in approval_id)


def _decide(request: Request, approval_id: str, done: str, call: Callable[[Ctx], Any]) -> Response:
    c = _ctx(request, A.APPROVE_EXPORT)
    if not _approval_id_ok(approval_id):
        return page(request, c, "error.html", 404, title="未找到", message="没有该审批申请")
    with _refusals() as err:
        call(c)
    if err:
        code, message = err[0]
        return _approvals_page(request, c, code, error=message)
    return _see("/console/approvals", done)


@router.post("/approvals/{approval_id}/approve")
async def approve(request: Request, approval_id: str) -> Response:
    def act(request: Request, form: Form) -> Response:
        note, masked_only = form.text("note") or None, form.text("masked_only", 5) == "1"
        return _decide(request, approval_id, "approved", lambda c: actions.approve(
            c.who, desk(request).staff, approval_id, note=note, masked_only=masked_only))
    return await _post(request, act)


@router.post("/approvals/{approval_id}/reject")
async def reject(request: Request, approval_id: str) -> Response:
    def act(request: Request, form: Form) -> Response:
        note = form.text("note") or None
        return _decide(request, approval_id, "rejected",
                       lambda c: actions.reject(c.who, desk(request).staff, approval_id, note=note))
    return await _post(request, act)


@router.post("/approvals/export")
async def request_export(request: Request) -> Response:
    def act(request: Request, form: Form) -> Response:
        c = _ctx(request, A.REQUEST_EXPORT)
        reason, unmasked = form.text("reason"), form.text("unmasked", 5) == "1"
        with _refusals() as err:
            actions.request_export(c.who, desk(request).staff, None, reason=reason, unmasked=unmasked)
        if err:
            code, message = err[0]
            return _approvals_page(request, c, code, error=message)
        return _see("/console/approvals", "requested")
    return await _post(request, act)


# --- a person's PI: masked view, unmask with a reason ------------------------------------------------------------------------
@router.get("/subjects")
def subjects(request: Request) -> Response:
    return _guard(request, lambda: page(request, _ctx(request, A.VIEW_MASKED), "subject.html", title="个人信息查询",
                                        view=None, form={}))


def _subject_page(request: Request, c: Ctx, subject: str, reason: str, status: int = 200, **extra: Any) -> Response:
    shown = {"subject": subject, "reason": reason}
    with _refusals((subject,)) as err:
        view = actions.view_subject(c.who, desk(request).staff, subject, reason=reason or None)
    if err:
        code, message = err[0]
        return page(request, c, "subject.html", code, title="个人信息查询", view=None, error=message, form=shown)
    return page(request, c, "subject.html", status, title="个人信息查询", view=view.to_dict(), form=shown, **extra)


@router.post("/subjects/view")
async def view_subject(request: Request) -> Response:
    def act(request: Request, form: Form) -> Response:
        c = _ctx(request, A.VIEW_MASKED)
        subject, reason = form.text("subject", 128), form.text("reason")
        if not subject:
            return page(request, c, "subject.html", 422, title="个人信息查询", view=None, error="请填写主体标识",
                        form={"reason": reason})
        return _subject_page(request, c, subject, reason)
    return await _post(request, act)


@router.post("/subjects/unmask")
async def unmask(request: Request) -> Response:
    def act(request: Request, form: Form) -> Response:
        c = _ctx(request, A.UNMASK)
        subject, item = form.text("subject", 128), form.text("item", 64)
        reason, view_reason = form.text("reason"), form.text("view_reason")
        with _refusals((subject,)) as err:
            result = actions.unmask(c.who, desk(request).staff, subject, item, reason)
        if err:
            code, message = err[0]
            return _subject_page(request, c, subject, view_reason, code, unmask_error=message, unmask_item=item)
        return _subject_page(request, c, subject, view_reason, unmasked=result.to_dict())
    return await _post(request, act)


# --- audit log -------------------------------------------------------------------------------------------------------------
def _audit_page(request: Request, c: Ctx, verify: dict[str, Any] | None) -> Response:
    d = desk(request)
    entries = staff_desk.audit_entries(c.who, d.staff, d.audit, limit=100) if c.can(A.VIEW_AUDIT_LOG) else []
    from yinsi.audit.model import ACTION_LABELS

    return page(request, c, "audit.html", title="审计日志", entries=list(reversed(entries)), verify=verify,
                actions_zh={a.value: label for a, label in ACTION_LABELS.items()})


@router.get("/audit")
def audit(request: Request) -> Response:
    return _guard(request, lambda: _audit_page(request, _ctx(request, A.VIEW_AUDIT_LOG), None))


@router.get("/audit/verify")
def audit_verify(request: Request) -> Response:
    def show() -> Response:
        c = _ctx(request, A.VERIFY_AUDIT_LOG)
        d = desk(request)
        return _audit_page(request, c, staff_desk.audit_verify(c.who, d.staff, d.audit))
    return _guard(request, show)


# --- alerts ----------------------------------------------------------------------------------------------------------------
def _alerts_page(request: Request, c: Ctx, chosen: str, status: int = 200, **extra: Any) -> Response:
    chosen = chosen if chosen in ("open", "acknowledged", "all") else "open"
    found = actions.list_alerts(c.who, desk(request).monitor, status=None if chosen == "all" else chosen)
    from yinsi.staff.anomaly import DEFAULT_RULES, KEY_LABELS

    return page(request, c, "alerts.html", status, title="异常告警", alerts=[a.to_dict() for a in found],
                chosen=chosen, rules_zh={r.name: r.describe() for r in DEFAULT_RULES},
                keys_zh={k.value: v for k, v in KEY_LABELS.items()}, **extra)


@router.get("/alerts")
def alerts(request: Request, status: str = "open", done: str | None = None) -> Response:
    return _guard(request, lambda: _alerts_page(request, _ctx(request, A.VIEW_ALERTS), status, notice=_done(done)))


@router.post("/alerts/{alert_id}/ack")
async def ack(request: Request, alert_id: int) -> Response:
    def act(request: Request, form: Form) -> Response:
        c = _ctx(request, A.ACK_ALERT)
        note = form.text("note") or None
        with _refusals() as err:
            if not 1 <= alert_id < 2**31:
                raise NotFound("没有该告警")
            actions.ack_alert(c.who, desk(request).monitor, alert_id, note=note)
        if err:
            code, message = err[0]
            return _alerts_page(request, c, "open", code, error=message)
        return _see("/console/alerts", "acked")
    return await _post(request, act)


# --- dead-letter jobs (administrator) ---------------------------------------------------------------------------------------
def _jobs_page(request: Request, c: Ctx, status: int = 200, **extra: Any) -> Response:
    from yinsi.api.routes.jobs import job_store
    from yinsi.services import jobs_desk

    found = jobs_desk.dead_jobs(c.who, desk(request).staff, job_store(request))
    return page(request, c, "jobs.html", status, title="死信作业", jobs=found, **extra)


@router.get("/jobs")
def dead_jobs(request: Request, done: str | None = None) -> Response:
    return _guard(request, lambda: _jobs_page(request, _ctx(request, A.CONFIGURE), notice=_done(done)))


@router.post("/jobs/{job_id}/retry")
async def retry_job(request: Request, job_id: int) -> Response:
    def act(request: Request, form: Form) -> Response:
        from yinsi.api.routes.jobs import job_store
        from yinsi.services import jobs_desk

        c = _ctx(request, A.CONFIGURE)
        with _refusals() as err:
            jobs_desk.retry_job(c.who, desk(request).staff, job_store(request), job_id)
        if err:
            code, message = err[0]
            return _jobs_page(request, c, code, error=message)
        return _see("/console/jobs", "requeued")
    return await _post(request, act)


# --- app keys (administrator) ------------------------------------------------------------------------------------------------
def _keys_page(request: Request, c: Ctx, status: int = 200, **extra: Any) -> Response:
    keys = services(request).need("api_keys").list(c.who, c.who.tenant)
    return page(request, c, "keys.html", status, title="应用密钥", keys=keys, scopes=SCOPE_ZH, **extra)


@router.get("/app-keys")
def app_keys(request: Request, done: str | None = None) -> Response:
    return _guard(request, lambda: _keys_page(request, _ctx(request, A.CONFIGURE), notice=_done(done)))


def _key_ok(key_id: str) -> bool:
    return 1 <= len(key_id) <= 32 and all(ch.isalnum() or ch in "_-" for ch in key_id)


@router.post("/app-keys")
async def create_key(request: Request) -> Response:
    def act(request: Request, form: Form) -> Response:
        c = _ctx(request, A.CONFIGURE)
        name = form.text("name", 100)
        chosen = sorted({s for s in form.all("scopes") if s in AppScope.__members__.values()})
        if not name or not chosen:
            return _keys_page(request, c, 422, error="请填写名称并至少选择一项权限")
        with _refusals() as err:
            key_id, token = services(request).need("api_keys").create(c.who, c.who.tenant, name=name, scopes=chosen)
        if err:
            code, message = err[0]
            return _keys_page(request, c, code, error=message)
        return _keys_page(request, c, 201, new_key={"key_id": key_id, "token": token, "rotated": False})
    return await _post(request, act)


@router.post("/app-keys/{key_id}/rotate")
async def rotate_key(request: Request, key_id: str) -> Response:
    def act(request: Request, form: Form) -> Response:
        c = _ctx(request, A.CONFIGURE)
        grace = form.text("grace", 6)
        seconds = int(grace) if grace.isdigit() and int(grace) <= 86_400 else 0
        if not _key_ok(key_id):
            return _keys_page(request, c, 404, error="没有该应用密钥")
        with _refusals() as err:
            token = services(request).need("api_keys").rotate(c.who, c.who.tenant, key_id,
                                                              grace=timedelta(seconds=seconds))
        if err:
            code, message = err[0]
            return _keys_page(request, c, code, error=message)
        return _keys_page(request, c, new_key={"key_id": key_id, "token": token, "rotated": True})
    return await _post(request, act)


@router.post("/app-keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str) -> Response:
    def act(request: Request, form: Form) -> Response:
        c = _ctx(request, A.CONFIGURE)
        if not _key_ok(key_id):
            return _keys_page(request, c, 404, error="没有该应用密钥")
        with _refusals() as err:
            services(request).need("api_keys").revoke(c.who, c.who.tenant, key_id)
        if err:
            code, message = err[0]
            return _keys_page(request, c, code, error=message)
        return _see("/console/app-keys", "revoked")
    return await _post(request, act)


# --- policy versions: lint findings, diffs, publishing ------------------------------------------------------------------------
def _url(request: Request) -> str | None:
    url: str | None = services(request).settings.database_url
    return url


@router.get("/policies")
def policies(request: Request, done: str | None = None) -> Response:
    def show() -> Response:
        c = _ctx(request, None)
        versions = staff_desk.policy_versions(c.who, desk(request).staff, _url(request))
        return page(request, c, "policies.html", title="隐私政策版本", versions=list(reversed(versions)),
                    notice=_done(done))
    return _guard(request, show)


@router.get("/policies/diff")
def policy_diff(request: Request, old: str = "", new: str = "") -> Response:
    def show() -> Response:
        c = _ctx(request, None)
        with _refusals() as err:
            diff = staff_desk.policy_diff(c.who, desk(request).staff, _url(request), old[:64], new[:64])
        if err:
            code, message = err[0]
            return page(request, c, "error.html", code, title="无法比较这两个版本", message=message)
        return page(request, c, "diff.html", title=f"版本 {diff['old']} → {diff['new']} 的变化", diff=diff)
    return _guard(request, show)


@router.get("/policies/new")
def publish_form(request: Request) -> Response:
    return _guard(request, lambda: page(request, _ctx(request, A.CONFIGURE), "publish.html", title="发布新版本",
                                        preview=None, text=None))


@router.post("/policies/preview")
async def publish_preview(request: Request) -> Response:
    def act(request: Request, form: Form) -> Response:
        c = _ctx(request, A.CONFIGURE)
        with _refusals() as err:
            data = form.files.get("declaration")
            if data is None or not data.strip():
                raise ValueError("请选择声明文件（YAML）")
            if len(data) > 1024 * 1024:
                raise ValueError("声明文件过大（上限 1 MB）")
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError("声明文件须为 UTF-8 编码的 YAML") from None
            preview = staff_desk.preview_policy(c.who, desk(request).staff, _url(request), text)
        if err:
            code, message = err[0]
            return page(request, c, "publish.html", code, title="发布新版本", preview=None, text=None, error=message)
        return page(request, c, "publish.html", 200 if preview.error is None else 422, title="发布新版本",
                    preview=preview, text=text)
    return await _post(request, act, files={"declaration": 1024 * 1024})


@router.post("/policies/publish")
async def publish(request: Request) -> Response:
    def act(request: Request, form: Form) -> Response:
        c = _ctx(request, A.CONFIGURE)
        text = form.raw("text", 1024 * 1024)
        with _refusals() as err:
            staff_desk.publish_policy(c.who, desk(request).staff, _url(request), text)
        if err:
            code, message = err[0]
            return page(request, c, "publish.html", code, title="发布新版本", preview=None, text=None, error=message)
        return _see("/console/policies", "published")
    return await _post(request, act)


@router.get("/policies/{label}")
def policy_version(request: Request, label: str) -> Response:
    def show() -> Response:
        c = _ctx(request, None)
        with _refusals() as err:
            archived, findings = staff_desk.policy_version(c.who, desk(request).staff, _url(request), label[:64])
        if err:
            code, message = err[0]
            return page(request, c, "error.html", code, title="没有该版本", message=message)
        return page(request, c, "policy.html", title=f"版本 {archived.version.label}", v=archived, findings=findings)
    return _guard(request, show)


# --- policy-change notices and re-consent progress (administrator; counts only) ---------------------------------------
@router.get("/policy-notices")
def policy_notices(request: Request) -> Response:
    def show() -> Response:
        from yinsi.services.policy_notices import PolicyNotices

        c = _ctx(request, A.CONFIGURE)
        with PolicyNotices(_url(request)) as svc:
            plans = [p.to_dict() for p in svc.plans(c.who.tenant)]
            progress = svc.progress(c.who.tenant)
        return page(request, c, "notices.html", title="变更告知", plans=plans, progress=progress)
    return _guard(request, show)


# --- analysing an uploaded policy text (nothing of it is stored or logged) ----------------------------------------------
@router.get("/analyze")
def analyze_form(request: Request) -> Response:
    return _guard(request, lambda: page(request, _ctx(request, A.CONFIGURE), "analyze.html", title="政策文本检查",
                                        result=None))


@router.post("/analyze")
async def analyze_upload(request: Request) -> Response:
    from yinsi.analyze.highlight import segments
    from yinsi.analyze.service import MAX_UPLOAD
    from yinsi.analyze.service import analyze_upload as analyze

    def act(request: Request, form: Form) -> Response:
        c = _ctx(request, A.CONFIGURE)
        upload = form.data.get("policy")
        name = upload.filename if isinstance(upload, UploadFile) and upload.filename else ""
        with _refusals() as err:
            result = analyze(form.files.get("policy") or b"", name)
        if err:
            code, message = err[0]
            return page(request, c, "analyze.html", code, title="政策文本检查", result=None, error=message)
        return page(request, c, "analyze.html", title="政策文本检查", result=result,
                    segments=segments(result.text, result.findings))
    return await _post(request, act, files={"policy": MAX_UPLOAD})
