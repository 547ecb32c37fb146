"""The acting context of an API request: staff member, organisation, acting store and client address."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from rest_framework import exceptions
from rest_framework.request import Request

from meiye.core.errors import PermissionDenied
from meiye.org.context import Actor
from meiye.org.middleware import client_ip
from meiye.org.models import Store
from meiye.org.selectors import store_get, stores_visible

STORE_HEADER = "X-Store-Id"


def actor_from_request(request: Request, read_store: Callable[[Actor, str], Store] = store_get) -> Actor:
    """Build the Actor every service takes.

    The acting store is the ``X-Store-Id`` header when given (it must be a store the staff member may
    see, else 404 ``store.not_found``), otherwise the first active store she may see (or none).
    ``read_store``: how the header's store is read — ``store_get``, or a reader with the same scope and
    errors that also reads what the view's service will ask of the store (the checkout's rules).
    """
    staff: Any = request.user
    if staff is None or not staff.is_authenticated:
        raise exceptions.NotAuthenticated()
    if staff.organisation_id is None:
        raise PermissionDenied(
            "auth.no_organisation",
            zh="该账号不属于任何品牌，不能使用 API。",
            en="This account belongs to no organisation and cannot use the API.",
        )
    actor = Actor(staff=staff, organisation=staff.organisation, store=None, ip=client_ip(request._request))
    raw = (request.headers.get(STORE_HEADER) or "").strip()
    store: Store | None = (
        read_store(actor, raw) if raw else stores_visible(actor).filter(is_active=True).order_by("id").first()
    )
    return replace(actor, store=store)
