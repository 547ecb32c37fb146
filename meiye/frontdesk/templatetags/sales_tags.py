"""Template helpers for the checkout, bills, receipts, stored value and catalogue pages.

Formatting only: amounts arrive as ``Money`` or integer fen from selectors and services and are shown,
never computed, here.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.http import HttpRequest

from meiye.core.money import Money
from meiye.frontdesk.labels import label_of
from meiye.org.roles import Perm

register = template.Library()


@register.filter
def fen(value: Any) -> str:
    """Integer fen (or a ``Money``) as "¥1,234.50"; empty for None."""
    if value is None or value == "":
        return ""
    if isinstance(value, Money):
        return value.format()
    return Money(int(value)).format()


@register.filter
def bp_percent(value: Any) -> str:
    """Basis points as a percentage for people: 9500 -> "95%", 1050 -> "10.5%"."""
    whole, rest = divmod(int(value), 100)
    return f"{whole}%" if rest == 0 else f"{whole}.{rest:02d}".rstrip("0") + "%"


@register.filter
def choice_label(value: str, choices: Any) -> str:
    """The active-language half of a TextChoices label: ``{{ kind|choice_label:tender_kinds }}``."""
    return label_of(choices, value)


# The navigation entries of the sales area: (url name, section, required permissions (any of)).
_SECTIONS = {
    "checkout": ("checkout", "checkout_"),
    "bills": ("bill_", "receipt"),
    "close": ("daily_close",),
    "catalog": ("catalog_",),
    "giftcards": ("giftcard_",),
    "liability": ("liability_",),
}


@register.simple_tag(takes_context=True)
def sales_nav(context: dict[str, Any]) -> dict[str, Any]:
    """What the sales part of the navigation shows for the signed-in staff member, and which entry is
    current: ``{% sales_nav as sn %}`` then ``sn.checkout``, ``sn.section`` …"""
    request: HttpRequest | None = context.get("request")
    fd = context.get("fd")
    staff = getattr(fd, "staff", None)

    def can(*perms: str) -> bool:
        return staff is not None and any(staff.can(p) for p in perms)

    match = getattr(request, "resolver_match", None)
    name = getattr(match, "url_name", "") or ""
    section = ""
    for key, prefixes in _SECTIONS.items():
        if name == key or name.startswith(prefixes):
            section = key
            break
    return {
        "checkout": can(Perm.CHECKOUT),
        "bills": can(Perm.CHECKOUT, Perm.REFUND, Perm.DAILY_CLOSE),
        "close": can(Perm.DAILY_CLOSE),
        "catalog": can(Perm.CATALOG_MANAGE, Perm.STORE_PRICE_SET),
        "liability": can(Perm.PREPAID_REPORT),
        "any": can(
            Perm.CHECKOUT,
            Perm.REFUND,
            Perm.DAILY_CLOSE,
            Perm.CATALOG_MANAGE,
            Perm.STORE_PRICE_SET,
            Perm.PREPAID_REPORT,
        ),
        "section": section,
    }
