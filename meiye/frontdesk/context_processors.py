"""Template context for every page: the signed-in staff member, her current store, the stores she may switch
to and what the navigation shows. Everything is computed on first use, so fragments that do not need it
(htmx partials) cost no queries."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.http import HttpRequest

from meiye.org.context import Actor
from meiye.org.models import Staff, Store
from meiye.org.roles import Perm
from meiye.org.selectors import stores_visible


class FrontdeskContext:
    def __init__(self, request: HttpRequest) -> None:
        self._request = request

    @cached_property
    def actor(self) -> Actor | None:
        user: Any = getattr(self._request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        actor = getattr(self._request, "actor", None)
        return actor if actor else None

    @cached_property
    def staff(self) -> Staff | None:
        return self.actor.staff if self.actor is not None else None

    @cached_property
    def store(self) -> Store | None:
        if self.actor is None:
            return None
        store = getattr(self._request, "store", None)
        return store if store else None

    @cached_property
    def visible_stores(self) -> list[Store]:
        if self.actor is None:
            return []
        return list(stores_visible(self.actor).filter(is_active=True).order_by("id"))

    @cached_property
    def section(self) -> str:
        """Which navigation entry the current page belongs to."""
        match = getattr(self._request, "resolver_match", None)
        name = getattr(match, "url_name", "") or ""
        if name in ("member_duplicates", "member_merge"):
            return "duplicates"
        if name.startswith("member"):
            return "members"
        settings_pages = ("custom_field", "staff", "store_", "tier_", "promo_", "notify_template", "notify_settings")
        if name == "settings" or (name.startswith(settings_pages) and name != "store_switch"):
            return "settings"
        if name == "audit_log":
            return "audit"
        return ""

    def _can(self, perm: str) -> bool:
        return self.staff is not None and self.staff.can(perm)

    @cached_property
    def can(self) -> dict[str, bool]:
        """Permission flags for templates: ``fd.can.member_create`` and so on."""
        names = {
            "member_view": Perm.MEMBER_VIEW,
            "member_create": Perm.MEMBER_CREATE,
            "member_edit": Perm.MEMBER_EDIT,
            "member_photo": Perm.MEMBER_PHOTO,
            "member_consent": Perm.MEMBER_CONSENT,
            "member_merge": Perm.MEMBER_MERGE,
            "member_export": Perm.MEMBER_EXPORT,
            "member_erase": Perm.MEMBER_ERASE,
            "custom_fields": Perm.CUSTOM_FIELDS_MANAGE,
            "staff_view": Perm.STAFF_VIEW,
            "staff_manage": Perm.STAFF_MANAGE,
            "store_manage": Perm.STORE_MANAGE,
            "audit_view": Perm.AUDIT_VIEW,
        }
        flags = {name: self._can(perm) for name, perm in names.items()}
        flags["settings"] = flags["custom_fields"] or flags["staff_view"] or flags["store_manage"]
        return flags


def frontdesk(request: HttpRequest) -> dict[str, Any]:
    return {"fd": FrontdeskContext(request)}
