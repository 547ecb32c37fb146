"""Template helpers for coupons and promotions: the reason an offer gives on a line, in the active language."""

from __future__ import annotations

from typing import Any

from django import template

from meiye.frontdesk.labels import bilingual, english_active

register = template.Library()


@register.filter
def offer_reason(reason: Any) -> str:
    """The reason of a promotion or coupon price step, which names the offer after the label:
    ``"促销 Promotion: 满1000减100"`` -> ``"促销：满1000减100"`` in Chinese, ``"Promotion: 满1000减100"`` in
    English. A reason of any other shape is shown as ``bilingual`` shows it."""
    text = str(reason or "")
    zh, sep, rest = text.partition(" ")
    en, colon, name = rest.partition(": ")
    if not sep or not colon:
        return bilingual(text)
    return f"{en}: {name}" if english_active() else f"{zh}：{name}"
