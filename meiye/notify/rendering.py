"""Filling a template: ``{variable}`` placeholders replaced by values formatted for the language.

Deliberately not the Django template language: templates are edited by staff, and a placeholder can only
name one of the event's variables (no attribute access, no tags). ``{{`` and ``}}`` are literal braces.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from meiye.core.money import Money

PLACEHOLDER_RE = re.compile(r"\{\{|\}\}|\{([a-z_][a-z0-9_]*)\}|\{[^{}]*\}")


def placeholders(text: str) -> list[str]:
    """The placeholders a template uses; a malformed one (``{Bad name}``) is returned as written."""
    found: list[str] = []
    for match in PLACEHOLDER_RE.finditer(text):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        found.append(match.group(1) or token)
    return found


def format_value(value: Any, language: str) -> str:
    """A context value as people read it: ¥1,234.56, 1,200 (points), 2026年12月31日 / 2026-12-31."""
    if isinstance(value, Mapping):
        value = value.get(language, value.get("zh-hans", ""))
    if value is None:
        return ""
    if isinstance(value, Money):
        return value.format()
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        if language.startswith("en"):
            return value.isoformat()
        return f"{value.year}年{value.month}月{value.day}日"
    return str(value)


def variables_for(context: Mapping[str, Any], language: str) -> dict[str, str]:
    """Context values formatted; an integer ``x_fen`` also gives ``x`` as money."""
    values: dict[str, str] = {}
    for key, value in context.items():
        if key.endswith("_fen") and isinstance(value, int) and not isinstance(value, bool):
            values.setdefault(key.removesuffix("_fen"), Money(value).format())
        values[key] = format_value(value, language)
    return values


def render(text: str, values: Mapping[str, str]) -> str:
    """Replace each ``{variable}``; a variable without a value becomes empty (templates are checked when
    saved, and callers must give the event's required variables, so this only covers optional ones)."""

    def replace(match: re.Match[str]) -> str:
        piece = match.group(0)
        if piece in ("{{", "}}"):
            return piece[0]
        name = match.group(1)
        return values.get(name, "") if name else piece

    return PLACEHOLDER_RE.sub(replace, text).strip()
