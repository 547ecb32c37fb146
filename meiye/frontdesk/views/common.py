"""What every front-desk view shares: the sign-in and permission gate, turning service refusals into
HTTP answers, htmx detection and safe redirects."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.http import url_has_allowed_host_and_scheme

from meiye.core.errors import NotFound, forbidden
from meiye.core.errors import PermissionDenied as ServicePermissionDenied
from meiye.org.context import Actor


def staff_view(perm: str | None = None) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Signed-in staff of an organisation only (else to the sign-in page); with ``perm``, only roles that
    have it (else 403). A selector's ``NotFound`` becomes 404 and a service's ``PermissionDenied`` 403."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            actor = get_actor(request)
            if perm is not None and not actor.can(perm):
                raise DjangoPermissionDenied(forbidden(perm).message)
            try:
                return view(request, *args, **kwargs)
            except NotFound as exc:
                raise Http404(exc.message) from None
            except ServicePermissionDenied as exc:
                raise DjangoPermissionDenied(exc.message) from None

        return wrapper

    return decorate


def get_actor(request: HttpRequest) -> Actor:
    actor: Any = getattr(request, "actor", None)
    if not actor:
        # Signed in, but not a staff member of any organisation (e.g. a bare superuser).
        raise DjangoPermissionDenied("no organisation")
    return actor


def is_htmx(request: HttpRequest) -> bool:
    """An htmx request that wants a fragment (not a history restore, which needs the whole page)."""
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-History-Restore-Request") != "true"


def safe_next(request: HttpRequest, candidate: str | None, fallback: str) -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return fallback
