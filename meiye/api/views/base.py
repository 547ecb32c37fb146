"""What every API view shares: the acting context, the schema class and the problem+json 404."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.schemas.inspectors import ViewInspector

from meiye.api.context import actor_from_request
from meiye.api.errors import PROBLEM, problem_body
from meiye.api.schema import MeiyeAutoSchema
from meiye.org.context import Actor
from meiye.org.models import Store
from meiye.org.selectors import store_get


class ActorMixin:
    """``self.actor``: built once per request from the authenticated staff member and ``X-Store-Id``."""

    schema: ViewInspector | None = MeiyeAutoSchema()
    request: Any

    @cached_property
    def actor(self) -> Actor:
        return actor_from_request(self.request, self.store_reader())

    def store_reader(self) -> Callable[[Actor, str], Store]:
        """How this request reads its acting store (a view may read more with it for its service)."""
        return store_get


@csrf_exempt
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any other path under /api/: a problem+json 404 rather than an HTML page."""
    body = problem_body(
        code="http.not_found",
        title="Not found",
        status=404,
        zh="没有这个接口。API 文档见 /api/docs/。",
        en="No such endpoint. See the API documentation at /api/docs/.",
        instance=request.path,
    )
    return JsonResponse(body, status=404, content_type=PROBLEM, json_dumps_params={"ensure_ascii": False})
