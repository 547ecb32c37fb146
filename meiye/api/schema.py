"""OpenAPI documentation pieces: the token scheme, the common headers and the problem+json body."""

from __future__ import annotations

from typing import Any

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from meiye.api.errors import PROBLEM
from meiye.api.idempotency import (
    ENABLED,
    EXEMPT,
    IDEMPOTENCY_HEADER,
    STORE_HEADER,
    idempotency_of,
    idempotency_required_for,
)


class StaffTokenScheme(OpenApiAuthenticationExtension):
    target_class = "meiye.api.auth.StaffTokenAuthentication"
    name = "staffToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        scheme = build_bearer_security_scheme_object(
            header_name="Authorization",
            token_prefix="Bearer",  # noqa: S106 - the scheme name, not a secret
        )
        scheme["description"] = (
            "Per-staff API token `my_<prefix>_<secret>` (manage.py create_api_token). 员工个人 API 令牌。"
        )
        return scheme


STORE_PARAMETER = OpenApiParameter(
    name=STORE_HEADER,
    type=OpenApiTypes.INT,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "The acting store (门店) — one the staff member may see, else 404 `store.not_found`. "
        "Default: her first active store."
    ),
)


def idempotency_parameter(*, required: bool, exempt: bool = False) -> OpenApiParameter:
    if exempt:
        description = "Accepted and ignored: this answer is never stored (each call is audited on its own)."
    else:
        description = (
            "A unique value per operation (1–128 printable characters); resend the same value when retrying. "
            "The same key and request replays the first answer (header `Idempotent-Replayed: true`); the same "
            "key with a different request is 409 `idempotency.key_reused`."
        )
        if required:
            description += " Required: without it, 400 `idempotency.key_required`."
    return OpenApiParameter(
        name=IDEMPOTENCY_HEADER,
        type=OpenApiTypes.STR,
        location=OpenApiParameter.HEADER,
        required=required and not exempt,
        description=description,
    )


class MeiyeAutoSchema(AutoSchema):
    """Adds the ``X-Store-Id`` header everywhere and ``Idempotency-Key`` on decorated write handlers."""

    def get_override_parameters(self) -> list[Any]:
        parameters: list[Any] = [*super().get_override_parameters(), STORE_PARAMETER]
        handler = getattr(self.view, getattr(self.view, "action", None) or self.method.lower(), None)
        marker = idempotency_of(handler)
        if marker == ENABLED:
            parameters.append(idempotency_parameter(required=idempotency_required_for(self.view, handler)))
        elif marker == EXEMPT:
            parameters.append(idempotency_parameter(required=False, exempt=True))
        return parameters


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details, as every error of this API is answered (``application/problem+json``)."""

    type = serializers.URLField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. `member.not_found`.")
    detail = serializers.CharField(help_text="The message in the request's language (Accept-Language).")
    detail_zh = serializers.CharField()
    detail_en = serializers.CharField()
    field = serializers.CharField(required=False, help_text="The input field at fault, when there is one.")
    instance = serializers.CharField(required=False)
    extra = serializers.DictField(required=False, child=serializers.JSONField())

    def get_fields(self) -> dict[str, serializers.Field]:
        # ``errors`` is added here: as a class attribute it would hide ``Serializer.errors``.
        fields: dict[str, serializers.Field] = super().get_fields()
        fields["errors"] = serializers.DictField(
            required=False,
            child=serializers.JSONField(),
            help_text="Validation errors (code `input.invalid`): the messages per field.",
        )
        return fields


_PROBLEM_DESCRIPTIONS = {
    400: "Invalid input (`input.invalid` with `errors` per field, or a business rule such as `member.invalid_phone`).",
    401: "Not authenticated, or the token is invalid or revoked (`auth.not_authenticated`, `auth.invalid_token`).",
    403: "The position lacks the permission (`auth.permission_denied`).",
    404: "Not found, or not visible from the staff member's stores.",
    409: "Conflict (e.g. `member.duplicate_phone`, `idempotency.key_reused`).",
}


def problems(*statuses: int) -> dict[Any, OpenApiResponse]:
    """``responses=`` entries for the error statuses an endpoint may answer (401 always included)."""
    return {
        (status, PROBLEM): OpenApiResponse(ProblemSerializer, description=_PROBLEM_DESCRIPTIONS[status])
        for status in sorted({401, *statuses})
    }


class TwoFactorSessionScheme(SessionScheme):
    """The browser session (cookie), documented like DRF's own session authentication."""

    target_class = "meiye.api.auth.TwoFactorSessionAuthentication"
