"""Query-string parameters, checked the same way everywhere: a bad value is 400 naming the parameter."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from rest_framework.request import Request

from meiye.core.errors import ValidationFailed


def choice_param(request: Request, name: str, choices: Iterable[str]) -> str:
    """The parameter's value if it is one of ``choices``; "" when absent or empty."""
    value = (request.query_params.get(name) or "").strip()
    allowed = list(choices)
    if value and value not in allowed:
        raise ValidationFailed(
            "input.invalid_choice",
            zh=f"{name}：{value!r} 不是有效选项，可选 {', '.join(allowed)}。",
            en=f"{name}: {value!r} is not a valid choice; use one of {', '.join(allowed)}.",
            field=name,
            extra={"choices": allowed},
        )
    return value


def date_param(request: Request, name: str) -> date | None:
    """A ``YYYY-MM-DD`` date, or None when absent or empty."""
    value = (request.query_params.get(name) or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value) if len(value) == 10 else _bad_date(name, value)
    except ValueError:
        return _bad_date(name, value)


def _bad_date(name: str, value: str) -> date:
    raise ValidationFailed(
        "input.invalid_date",
        zh=f"{name}：{value!r} 不是有效日期，格式为 YYYY-MM-DD。",
        en=f"{name}: {value!r} is not a valid date; use YYYY-MM-DD.",
        field=name,
    )


def bool_param(request: Request, name: str) -> bool:
    """``true``/``1``/``yes`` are true; absent, empty, ``false``/``0``/``no`` are false; anything else is 400."""
    value = (request.query_params.get(name) or "").strip().lower()
    if value in {"", "false", "0", "no"}:
        return False
    if value in {"true", "1", "yes"}:
        return True
    raise ValidationFailed(
        "input.invalid_boolean",
        zh=f"{name}：应为 true 或 false。",
        en=f"{name}: use true or false.",
        field=name,
    )
