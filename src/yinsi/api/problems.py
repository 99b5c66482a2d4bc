"""Errors as RFC 9457 problem details (``application/problem+json``).

Every error the API returns has ``type``, ``title``, ``status``, ``detail`` (Chinese, for people), a stable
``code`` for programs, and ``rule`` with ``rule_url`` when a rule of the catalogue is the reason (a gate or a
staff refusal, a consent the law does not allow, a rights request refused under R7). A problem never carries
personal information and never a traceback:

- validation errors name the fields that are wrong, never the values sent (input may be PI);
- messages of the services' expected errors are passed on with every value the caller sent removed, and
  with anything that looks like a phone number, an ID number or an e-mail address masked;
- anything unexpected is a 500 naming only the request id; the log has the id and where it happened, not
  the exception's text.

Routes raise :class:`ApiProblem` (or :func:`problem` builds one) for their own refusals; services' errors
are mapped here by type, so routes stay thin.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import re
import traceback
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("yinsi.api")

PROBLEM_JSON = "application/problem+json"

#: Titles (Chinese) by HTTP status.
TITLES: dict[int, str] = {
    400: "请求无效", 401: "未认证", 403: "无权操作", 404: "未找到", 405: "不支持的请求方法", 409: "状态冲突",
    413: "请求过大", 415: "不支持的内容类型", 422: "请求内容有误", 429: "请求过于频繁", 500: "服务器内部错误",
    503: "服务暂不可用",
}


def rule_url(rule: str) -> str:
    """Where a rule of the catalogue is explained (``GET /api/v1/rules/{id}``)."""
    from yinsi.rules import url_path

    return url_path(rule)


class ApiProblem(Exception):
    """A problem a route or a dependency reports. ``detail`` must already be free of PI."""

    def __init__(self, status: int, code: str, detail: str, *, rule: str | None = None, title: str | None = None,
                 headers: Mapping[str, str] | None = None, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.detail = detail
        self.rule = rule
        self.title = title or TITLES.get(status, "错误")
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


def problem(status: int, code: str, detail: str, **kwargs: Any) -> ApiProblem:
    """Shorthand: ``raise problem(404, "not_found", "没有这个版本")``."""
    return ApiProblem(status, code, detail, **kwargs)


def body(p: ApiProblem, request_id: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": f"urn:yinsi:problem:{p.code}", "title": p.title, "status": p.status,
                           "detail": p.detail, "code": p.code}
    if p.rule:
        out["rule"] = p.rule
        out["rule_url"] = rule_url(p.rule)
    if request_id:
        out["request_id"] = request_id
    out.update(p.extra)
    return out


def response(p: ApiProblem, request: Request | None = None) -> JSONResponse:
    rid = _request_id(request) if request is not None else None
    return JSONResponse(body(p, rid), status_code=p.status, media_type=PROBLEM_JSON, headers=p.headers or None)


_SAFE_LOC = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")


# --- keeping PI out of messages ----------------------------------------------------------------------------
_PI_PATTERNS = (
    re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+"),  # e-mail
    re.compile(r"\d{17}[\dXx]|\d{15}"),  # resident ID numbers
    re.compile(r"\+?\d[\d -]{5,}\d"),  # phone numbers, card numbers, any long run of digits
)


def mask_pi(text: str) -> str:
    """``text`` with anything that looks like a phone number, an ID number or an e-mail address masked."""
    for pattern in _PI_PATTERNS:
        text = pattern.sub("＊＊＊", text)
    return text


#: Fields whose values are PI or secrets: never repeated in a problem, whatever they look like.
_PI_FIELDS = frozenset({"subject", "contact", "requester", "device", "actor", "password", "code", "token", "totp",
                        "id_number", "birth_date", "challenge_id", "staff_id", "name", "reason", "text", "question",
                        "value", "values", "changes", "relation", "disclosures"})
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]*$")


def _strings(value: Any, sensitive: bool = False) -> Iterable[tuple[str, bool]]:
    """(text, sensitive) for every string in a JSON value; keys are texts too unless they are plain names."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            key = str(k)
            if not _SAFE_LOC.match(key):
                yield key, True
            yield from _strings(v, sensitive or key in _PI_FIELDS)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v, sensitive)
    elif value is not None and not isinstance(value, bool):
        yield str(value), sensitive


def request_inputs(request: Request | None) -> set[str]:
    """The values the caller sent that must not come back in a problem: those of PI fields (a subject, a
    contact, a password…) and any other that is not a plain identifier (a phone number, a name, an e-mail
    address are not; ``customer_chat`` or ``item:customer_chat:location.precise`` are, and may be quoted)."""
    if request is None:
        return set()
    found: list[tuple[str, bool]] = [(str(v), k in _PI_FIELDS) for k, v in request.path_params.items()]
    found += [(v, k in _PI_FIELDS) for k, v in request.query_params.multi_items()]
    raw = getattr(request, "_body", None)
    if raw:
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            found += list(_strings(json.loads(raw)))
    return {text for text, sensitive in found
            if len(text.strip()) >= 2 and (sensitive or not _IDENTIFIER.match(text))}


def scrub(message: str, request: Request | None) -> str:
    """A service's message fit for a problem body: the caller's own values removed (longest first), then
    anything PI-shaped masked."""
    for value in sorted(request_inputs(request), key=len, reverse=True):
        if value in message:
            message = message.replace(value, "…")
    return mask_pi(message)


def rule_in(message: str) -> str | None:
    """The rule a service's message cites (the last catalogue ID in it), e.g. ``…（C4（PIPL 29））`` → ``C4``."""
    from yinsi import rules

    found = [m.group(1) for m in rules.RULE_ID_IN_TEXT.finditer(message) if rules.get(m.group(1)) is not None]
    return found[-1] if found else None


def _request_id(request: Request) -> str | None:
    rid = request.scope.get("yinsi.request_id")
    return str(rid) if rid else None


# --- validation errors --------------------------------------------------------------------------------------
_VALIDATION_ZH: dict[str, str] = {
    "missing": "缺少必填项", "string_too_long": "过长", "string_too_short": "过短", "too_long": "条目过多",
    "too_short": "条目过少", "string_type": "应为字符串", "int_type": "应为整数", "int_parsing": "应为整数",
    "bool_type": "应为布尔值", "bool_parsing": "应为布尔值", "float_type": "应为数字", "float_parsing": "应为数字",
    "list_type": "应为数组", "dict_type": "应为对象", "model_type": "应为对象", "enum": "不是可选值之一",
    "literal_error": "不是可选值之一", "date_parsing": "应为日期（YYYY-MM-DD）", "date_from_datetime_parsing": "应为日期",
    "datetime_parsing": "应为带时区的时间（ISO 8601）", "datetime_type": "应为时间", "timezone_aware": "须带时区",
    "extra_forbidden": "不是可接受的字段", "json_invalid": "不是有效的 JSON", "string_pattern_mismatch": "格式不符",
    "greater_than_equal": "过小", "less_than_equal": "过大", "greater_than": "过小", "less_than": "过大",
    "value_error": "取值无效", "model_attributes_type": "应为对象", "union_tag_invalid": "类型不符",
}


def _loc(loc: Iterable[Any]) -> list[str | int]:
    """A field's location with only field names and indexes; anything else (a key the caller chose) is
    replaced, since it may be PI."""
    out: list[str | int] = []
    for part in loc:
        if isinstance(part, int) or (isinstance(part, str) and _SAFE_LOC.match(part)):
            out.append(part)
        else:
            out.append("…")
    return out


def validation_problem(errors: Iterable[Mapping[str, Any]]) -> ApiProblem:
    """422 naming each wrong field and what is wrong with it, without the values."""
    fields = []
    for e in list(errors)[:50]:
        kind = str(e.get("type", "value_error"))
        fields.append({"loc": _loc(e.get("loc", ())), "type": kind, "problem": _VALIDATION_ZH.get(kind, "取值无效")})
    where = "；".join(".".join(str(p) for p in f["loc"][1:] or f["loc"]) + f"：{f['problem']}" for f in fields[:5])
    return ApiProblem(422, "invalid_request", f"请求内容不符合要求（{where}）" if where else "请求内容不符合要求",
                      extra={"errors": fields})


# --- the handlers --------------------------------------------------------------------------------------------
def _service_problem(exc: Exception, request: Request) -> ApiProblem:
    """Map an expected error of a service to a problem."""
    from yinsi.auth.principals import AuthError
    from yinsi.domain.consent import ConsentRejected
    from yinsi.domain.rights import InvalidTransition
    from yinsi.domain.taxonomy import UnknownTermError
    from yinsi.rights.service import RequestError
    from yinsi.services.consent import NoPublishedPolicy
    from yinsi.services.publishing import PublishError, VersionNotFound
    from yinsi.staff.errors import AccessDenied, SeparationOfDuties, StaffError
    from yinsi.staff.errors import NotFound as StaffNotFound
    from yinsi.storage.errors import SchemaNotCurrent, StorageError

    err: Any = exc
    status = getattr(err, "status", None)
    if isinstance(exc, AuthError) or (isinstance(status, int) and 400 <= status < 600
                                      and isinstance(getattr(err, "code", None), str)
                                      and isinstance(getattr(err, "detail", None), str)):
        # AuthError and the use cases' own errors (e.g. PersonError) carry status, code and a PI-free detail
        retry = getattr(err, "retry_after", None)
        headers = {"Retry-After": str(retry)} if retry else {}
        if err.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return ApiProblem(int(err.status), str(err.code), scrub(str(err.detail), request),
                          rule=getattr(err, "rule", None), headers=headers)
    if type(exc).__name__ == "RecordBufferFull":
        return ApiProblem(503, "records_backlog", "处理记录暂无法写入，本次判断未作出：请按拒绝处理并稍后重试",
                          headers={"Retry-After": "2"})
    if isinstance(exc, NoPublishedPolicy):
        return ApiProblem(404, "no_published_policy", "该租户尚未发布隐私政策")
    if isinstance(exc, VersionNotFound):
        return ApiProblem(404, "version_not_found", "该租户没有这个已发布的政策版本")
    if isinstance(exc, SchemaNotCurrent):
        return ApiProblem(503, "schema_not_current", "数据库结构尚未更新到本版本所需；请运维人员运行 yinsi db upgrade")
    if isinstance(exc, StorageError):
        return ApiProblem(503, "storage_unavailable", "数据库暂不可用，请稍后重试")
    if isinstance(exc, UnknownTermError):
        return ApiProblem(422, "unknown_term", "请求中含有分类表中不存在的个人信息项或权限")
    message = scrub(str(exc), request)
    rule = getattr(exc, "rule", None) or rule_in(message)
    if isinstance(exc, AccessDenied):
        return ApiProblem(403, "staff_forbidden", message, rule=rule)
    if isinstance(exc, SeparationOfDuties):
        return ApiProblem(409, "separation_of_duties", message, rule=rule)
    if isinstance(exc, StaffNotFound):
        return ApiProblem(404, "not_found", message)
    if isinstance(exc, StaffError) and not isinstance(exc, ValueError):
        return ApiProblem(409, "staff_error", message, rule=rule)
    if isinstance(exc, ConsentRejected):
        return ApiProblem(422, "consent_rejected", message, rule=rule)
    if isinstance(exc, InvalidTransition):
        return ApiProblem(409, "invalid_transition", message, rule=rule)
    if isinstance(exc, RequestError):
        if "没有编号为" in str(exc) or "尚未发布隐私政策" in str(exc):
            return ApiProblem(404, "request_not_found" if "没有编号为" in str(exc) else "no_published_policy", message)
        return ApiProblem(422, "request_error", message, rule=rule)
    if isinstance(exc, PublishError):
        return ApiProblem(422, "publish_error", message, rule=rule)
    if isinstance(exc, ValueError):
        return ApiProblem(422, "invalid_value", message, rule=rule)
    if isinstance(exc, LookupError):
        return ApiProblem(404, "not_found", message)
    raise exc


def internal_error(request: Request, exc: BaseException) -> JSONResponse:
    """500: the request id for the operator; the log names the exception type and where it was raised,
    never its message (which may quote PI)."""
    rid = _request_id(request) or "-"
    frames = "".join(traceback.format_tb(exc.__traceback__)[-6:])
    route = request.scope.get("route")
    log.error("request %s failed: %s at %s\n%s", rid, type(exc).__name__, getattr(route, "path", "?"), frames)
    return response(ApiProblem(500, "internal_error", f"服务器内部错误；请向运维人员提供请求编号 {rid}"), request)


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    from yinsi.auth.principals import AuthError
    from yinsi.domain.consent import ConsentRejected
    from yinsi.domain.rights import InvalidTransition
    from yinsi.domain.taxonomy import UnknownTermError
    from yinsi.services.consent import NoPublishedPolicy
    from yinsi.services.publishing import PublishError
    from yinsi.staff.errors import StaffError
    from yinsi.storage.errors import StorageError

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiProblem)
        exc.detail = scrub(exc.detail, request)  # routes' own details too: never the caller's values back
        return response(exc, request)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return response(validation_problem(exc.errors()), request)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        codes = {404: ("not_found", "没有这个地址"), 405: ("method_not_allowed", "该地址不支持此请求方法"),
                 413: ("too_large", "请求过大"), 415: ("unsupported_media_type", "请以 JSON 提交")}
        code, detail = codes.get(exc.status_code, ("http_error", TITLES.get(exc.status_code, "请求无效")))
        return response(ApiProblem(exc.status_code, code, detail, headers=exc.headers), request)

    async def on_service(request: Request, exc: Exception) -> JSONResponse:
        try:
            return response(_service_problem(exc, request), request)
        except Exception as unexpected:  # not an expected error after all
            return internal_error(request, unexpected)

    app.add_exception_handler(ApiProblem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    for exc_type in (AuthError, NoPublishedPolicy, StorageError, ConsentRejected, InvalidTransition, UnknownTermError,
                     PublishError, StaffError, ValueError, LookupError, *_extra_errors()):
        app.add_exception_handler(exc_type, on_service)
    # Anything else is caught by the request middleware (yinsi.api.app), which answers 500 and does not let
    # the exception reach the server's own error log (whose traceback would print the message).


def _extra_errors() -> list[type[Exception]]:
    """Errors of use cases that may not exist in every build (mapped by their status/code attributes)."""
    out: list[type[Exception]] = []
    for module, name in (("yinsi.services.me", "PersonError"), ("yinsi.services.records", "RecordBufferFull")):
        with contextlib.suppress(ImportError, AttributeError):
            out.append(getattr(importlib.import_module(module), name))
    return out
