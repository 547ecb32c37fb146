from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.functional import SimpleLazyObject

from meiye.core.net import client_ip as core_client_ip
from meiye.org.context import Actor
from meiye.org.models import Store

SESSION_STARTED = "meiye_started"
SESSION_SEEN = "meiye_seen"
SESSION_2FA_OK = "meiye_2fa_ok"
SESSION_STORE = "meiye_store_id"

_OPEN_PREFIXES = ("/static/", "/healthz", "/i18n/", "/login", "/logout", "/2fa/", "/api/")


def client_ip(request: HttpRequest) -> str | None:
    """The client's address for the Actor, the audit log and the sign-in throttle: ``REMOTE_ADDR``, or behind
    a proxy listed in ``MEIYE_TRUSTED_PROXIES`` the right-most untrusted ``X-Forwarded-For`` hop."""
    return core_client_ip(request)


class SessionLimitsMiddleware:
    """Sign out after MEIYE_SESSION_IDLE_SECONDS without a request, or MEIYE_SESSION_ABSOLUTE_SECONDS
    after sign-in, whichever comes first."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = int(time.time())
            started = request.session.setdefault(SESSION_STARTED, now)
            seen = request.session.get(SESSION_SEEN, now)
            if (
                now - seen > settings.MEIYE_SESSION_IDLE_SECONDS
                or now - started > settings.MEIYE_SESSION_ABSOLUTE_SECONDS
            ):
                logout(request)
                if not request.path.startswith("/api/"):
                    return HttpResponseRedirect(reverse(settings.LOGIN_URL) + "?expired=1")
            else:
                request.session[SESSION_SEEN] = now
        return self.get_response(request)


class TwoFactorMiddleware:
    """With MEIYE_REQUIRE_2FA, staff whose role can read health data or adjust money must pass a TOTP
    check after signing in (and set one up first if they have none)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user: Any = request.user
        if (
            settings.MEIYE_REQUIRE_2FA
            and user.is_authenticated
            and user.needs_two_factor
            and not request.session.get(SESSION_2FA_OK)
            and not request.path.startswith(_OPEN_PREFIXES)
        ):
            target = "frontdesk:2fa_verify" if user.totp_enabled else "frontdesk:2fa_setup"
            return HttpResponseRedirect(reverse(target))
        return self.get_response(request)


def _current_store(request: HttpRequest) -> Store | None:
    cached: Any = getattr(request, "_meiye_store", False)
    if cached is not False:
        return cached
    store = _find_store(request)
    request._meiye_store = store  # type: ignore[attr-defined]
    return store


def current_store(request: HttpRequest) -> Store | None:
    """The store the staff member is working in, as a real object (or None)."""
    return _current_store(request)


def _find_store(request: HttpRequest) -> Store | None:
    user: Any = request.user
    if not user.is_authenticated or user.organisation_id is None:
        return None
    stores = Store.objects.filter(organisation_id=user.organisation_id, is_active=True)
    if not user.sees_all_stores:
        stores = stores.filter(staff=user)
    chosen = request.session.get(SESSION_STORE)
    store = stores.filter(pk=chosen).first() if chosen else None
    return store or stores.order_by("id").first()


def _actor(request: HttpRequest) -> Actor | None:
    user: Any = request.user
    if not user.is_authenticated or user.organisation_id is None:
        return None
    return Actor(staff=user, organisation=user.organisation, store=_current_store(request), ip=client_ip(request))


class CurrentStoreMiddleware:
    """``request.store``: the store the staff member is working in (store switcher); ``request.actor``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.store = SimpleLazyObject(lambda: _current_store(request))  # type: ignore[attr-defined]
        request.actor = SimpleLazyObject(lambda: _actor(request))  # type: ignore[attr-defined]
        return self.get_response(request)
