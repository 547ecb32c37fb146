"""Template helpers for member tiers: a tier's name and a member's progress in the active language."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import template

from meiye.frontdesk.labels import english_active

register = template.Library()


@register.filter
def tier_name(value: Any) -> str:
    """The name of a ``Tier``, or of the tier in a member snapshot / ``member_tier_info`` dict (``tier_name``,
    ``tier_name_en``), in the active language: the English name when English is active and one is set."""
    if value is None or value == "":
        return ""
    if isinstance(value, Mapping):
        zh, en = str(value.get("tier_name") or ""), str(value.get("tier_name_en") or "")
    else:
        zh, en = str(getattr(value, "name_zh", "") or ""), str(getattr(value, "name_en", "") or "")
    return en if english_active() and en else zh


@register.filter
def tier_message(progress: Any) -> str:
    """A ``TierProgress``'s message: "距离金卡还差 ¥1,234" / "¥1,234 to Gold"."""
    if progress is None:
        return ""
    return str(progress.message_en if english_active() else progress.message_zh)


@register.filter
def tier_perks(tier: Any) -> str:
    """A tier's perks in the active language (the other language's when only that one is written)."""
    zh, en = str(getattr(tier, "perks_zh", "") or ""), str(getattr(tier, "perks_en", "") or "")
    return (en or zh) if english_active() else (zh or en)


@register.filter
def multiplier(value: Any) -> str:
    """A multiplier in basis points for people: 12000 -> "1.2", 10000 -> "1"."""
    if value is None or value == "":
        return ""
    whole, rest = divmod(int(value), 10_000)
    return str(whole) if rest == 0 else f"{whole}.{rest:04d}".rstrip("0")
