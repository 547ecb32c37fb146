from __future__ import annotations

import json
from typing import Any

from django import template
from django.http import QueryDict

from meiye.core.crypto import mask_phone
from meiye.frontdesk import labels

register = template.Library()


@register.filter
def bilingual(label: Any) -> str:
    """Show the half of a "中文 English" choice label that matches the active language."""
    return labels.bilingual(label)


@register.filter
def cf_label(field: Any) -> str:
    return labels.custom_field_label(field)


@register.filter
def masked_phone(value: str | None) -> str:
    return mask_phone(value or "")


@register.filter
def pretty_json(value: Any) -> str:
    if not value:
        return ""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    try:
        return mapping[key]
    except (KeyError, IndexError, TypeError):
        return None


@register.simple_tag(takes_context=True)
def query_with(context: dict[str, Any], **changes: Any) -> str:
    """The current query string with some parameters replaced, e.g. for pagination links."""
    request = context["request"]
    params: QueryDict = request.GET.copy()
    for key, value in changes.items():
        if value in (None, ""):
            params.pop(key, None)
        else:
            params[key] = str(value)
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"
