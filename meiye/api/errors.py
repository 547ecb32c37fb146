"""Every API error is ``application/problem+json`` (RFC 9457) with a stable ``code``.

Shape (all errors)::

    {"type": ".../problems/<code>", "title": ..., "status": 404, "code": "member.not_found",
     "detail": <message in the active language>, "detail_zh": ..., "detail_en": ...,
     "field": "phone" (when one field is to blame), "instance": "/api/v1/members/7/"}

- ``ApplicationError`` from a service: its own code and its Chinese and English messages.
- Serializer validation errors: code ``input.invalid``, a bilingual summary, ``field`` (the first field
  named) and ``errors`` with the messages per field (``{"phone": ["..."]}``, nested for nested input).
- Other DRF errors (401, 403, 404, 405, 415, malformed JSON, throttling): ``auth.*`` / ``http.*`` codes
  with bilingual messages.
"""

from __future__ import annotations

from typing import Any

from django.utils import translation
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from meiye.core.errors import ApplicationError

PROBLEM = "application/problem+json"
PROBLEM_TYPE = "https://meiye.invalid/problems/"

# DRF exception code -> (stable problem code, title, Chinese message, English message).
_HTTP_PROBLEMS: dict[str, tuple[str, str, str, str]] = {
    "invalid": (
        "input.invalid",
        "Invalid input",
        "输入有误，请按 errors 中各字段的说明修改。",
        "Invalid input; see the messages per field in errors.",
    ),
    "not_authenticated": (
        "auth.not_authenticated",
        "Not authenticated",
        "未登录：请使用 API 令牌（Authorization: Bearer …）或先登录。",
        "Not authenticated: send an API token (Authorization: Bearer …) or sign in.",
    ),
    "authentication_failed": (
        "auth.authentication_failed",
        "Authentication failed",
        "身份验证失败。",
        "Authentication failed.",
    ),
    "invalid_token": (
        "auth.invalid_token",
        "Invalid token",
        "API 令牌无效或已撤销。",
        "The API token is invalid or has been revoked.",
    ),
    "permission_denied": (
        "auth.permission_denied",
        "Not allowed",
        "您没有执行此操作的权限。",
        "You do not have permission to perform this action.",
    ),
    "not_found": ("http.not_found", "Not found", "找不到该资源。", "Not found."),
    "method_not_allowed": (
        "http.method_not_allowed",
        "Method not allowed",
        "此接口不支持该请求方法。",
        "This endpoint does not support this request method.",
    ),
    "parse_error": (
        "http.parse_error",
        "Malformed request",
        "请求内容无法解析（JSON 格式有误？）。",
        "The request body could not be parsed (malformed JSON?).",
    ),
    "unsupported_media_type": (
        "http.unsupported_media_type",
        "Unsupported media type",
        "不支持该请求内容类型，请使用 application/json。",
        "Unsupported request content type; send application/json.",
    ),
    "not_acceptable": (
        "http.not_acceptable",
        "Not acceptable",
        "无法以所请求的格式响应。",
        "Cannot answer in the requested format.",
    ),
    "throttled": ("http.throttled", "Too many requests", "请求过于频繁，请稍后再试。", "Too many requests; try later."),
}


def _active_is_english() -> bool:
    return (translation.get_language() or "zh-hans").startswith("en")


def _first_field(errors: Any, prefix: str = "") -> str | None:
    """The dotted name of the first field with an error (``custom.skin`` for nested input)."""
    if isinstance(errors, dict):
        for key, value in errors.items():
            name = f"{prefix}{key}"
            if key == "non_field_errors":
                return None
            nested = _first_field(value, f"{name}.") if isinstance(value, dict) else None
            return nested or name
    return None


def problem_body(
    *,
    code: str,
    title: str,
    status: int,
    zh: str,
    en: str,
    instance: str = "",
    field: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + code,
        "title": title,
        "status": status,
        "code": code,
        "detail": en if _active_is_english() else zh,
        "detail_zh": zh,
        "detail_en": en,
    }
    if field:
        body["field"] = field
    if instance:
        body["instance"] = instance
    return body


def problem_response(error: ApplicationError, instance: str = "") -> Response:
    return Response(error.as_problem(instance), status=error.status, content_type=PROBLEM)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """ApplicationError -> its problem; DRF errors -> problems with ``auth.*``/``http.*``/``input.invalid``."""
    request = context.get("request")
    instance = request.path if request is not None else ""
    if isinstance(exc, ApplicationError):
        if exc.after_rollback is not None:
            # The view's transaction has rolled back by now: what the refusal must record is written again.
            exc.after_rollback()
        return problem_response(exc, instance)
    response = drf_exception_handler(exc, context)  # also turns Http404 / Django PermissionDenied into DRF ones
    if response is None:
        return None  # a real bug: Django's 500 handling and logging take over
    data: Any = response.data
    drf_code = str(getattr(exc, "default_code", "error"))
    if isinstance(exc, exceptions.ValidationError):
        drf_code = "invalid"
    code, title, zh, en = _HTTP_PROBLEMS.get(
        drf_code, (f"http.{drf_code}", str(getattr(exc, "default_detail", "Error")), "", "")
    )
    if not zh:
        message = str(data.get("detail", data)) if isinstance(data, dict) else str(data)
        zh = en = message
    elif isinstance(exc, exceptions.APIException) and not isinstance(exc, exceptions.ValidationError):
        # Keep a specific message (CSRF failure, method name, wait time) as the detail in the active language.
        specific = str(exc.detail)
        if specific != str(exc.default_detail):
            if _active_is_english():
                en = specific
            else:
                zh = specific
    errors: Any = None
    if isinstance(exc, exceptions.ValidationError):
        errors = data if isinstance(data, dict) else {"non_field_errors": data}
    body = problem_body(
        code=code,
        title=title,
        status=response.status_code,
        zh=zh,
        en=en,
        instance=instance,
        field=_first_field(errors) if errors is not None else None,
    )
    if errors is not None:
        body["errors"] = errors
    response.data = body
    response.content_type = PROBLEM
    return response
