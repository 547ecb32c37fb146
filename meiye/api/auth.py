from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from meiye.org.services import api_token_authenticate


class StaffTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer my_<prefix>_<secret>`` — a per-staff API token."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme.lower() not in {"bearer", "token"} or not raw.strip():
            return None
        staff = api_token_authenticate(raw.strip())
        if staff is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API token / API 令牌无效或已撤销")
        return staff, None

    def authenticate_header(self, request: Request) -> str:
        return self.keyword
