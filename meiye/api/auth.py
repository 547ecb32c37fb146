from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from meiye.org.middleware import SESSION_2FA_OK
from meiye.org.services import api_token_authenticate


class InvalidToken(exceptions.AuthenticationFailed):
    """401 ``auth.invalid_token``: unknown, malformed or revoked token, or an inactive staff member."""

    default_detail = _("Invalid or revoked API token.")
    default_code = "invalid_token"


class StaffTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer my_<prefix>_<secret>`` — a per-staff API token (``manage.py create_api_token``)."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _sep, raw = header.partition(" ")
        if scheme.lower() not in {"bearer", "token"}:
            return None
        if not raw.strip():
            raise InvalidToken()
        staff = api_token_authenticate(raw.strip())
        if staff is None:
            raise InvalidToken()
        return staff, None

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class TwoFactorSessionAuthentication(authentication.SessionAuthentication):
    """The browser session, but only once the second factor is done when it is required.

    Signing in calls ``login()`` before the TOTP check, so without this a password alone would open the
    API (the front desk's TwoFactorMiddleware leaves /api/ to the API's own authentication)."""

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        if (
            settings.MEIYE_REQUIRE_2FA
            and getattr(user, "needs_two_factor", False)
            and not request._request.session.get(SESSION_2FA_OK)
        ):
            raise exceptions.AuthenticationFailed("二次验证尚未完成 / Two-factor sign-in has not been completed")
        return result
