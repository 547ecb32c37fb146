from __future__ import annotations

from typing import Any

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from meiye.core.errors import ApplicationError

PROBLEM = "application/problem+json"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """ApplicationError -> RFC 9457 problem+json with the stable code; DRF errors likewise."""
    request = context.get("request")
    instance = request.path if request is not None else ""
    if isinstance(exc, ApplicationError):
        return Response(exc.as_problem(instance), status=exc.status, content_type=PROBLEM)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail: Any = response.data
    code = getattr(exc, "default_code", "error")
    body = {
        "type": f"https://meiye.invalid/problems/http.{code}",
        "title": str(getattr(exc, "default_detail", "Error")),
        "status": response.status_code,
        "code": f"http.{code}",
        "detail": detail.get("detail", detail) if isinstance(detail, dict) else detail,
        "instance": instance,
    }
    if isinstance(detail, dict) and "detail" not in detail:
        body["errors"] = detail
    response.data = body
    response.content_type = PROBLEM
    return response
