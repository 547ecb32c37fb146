"""Serializer fields for money: amounts go in and come out as strings in yuan ("1234.50"), never floats.

- ``AmountField`` (input) keeps the raw JSON value; the serializer turns it into ``Money`` with
  ``money_from_api(value, field="tenders[1].amount")``, so every badly written amount — a number instead of
  a string, three decimals, letters — is one 400 ``money.invalid_amount`` naming the exact field.
- ``MoneyField`` (output) renders a ``Money`` or an integer number of fen as "1234.50".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import TextChoices
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from meiye.core.money import Money, money_from_api

AMOUNT_PATTERN = r"^-?\d+(\.\d{1,2})?$"

_AMOUNT_SCHEMA = {
    "type": "string",
    "pattern": AMOUNT_PATTERN,
    "example": "12.30",
    "description": 'Amount in yuan (元) as a string with at most two decimals, e.g. "12.30". Numbers are refused.',
}
_MONEY_SCHEMA = {
    "type": "string",
    "pattern": AMOUNT_PATTERN,
    "example": "1234.50",
    "description": "Amount in yuan (元), two decimals, as a string.",
}


@extend_schema_field(_AMOUNT_SCHEMA)
class AmountField(serializers.Field):
    """An amount in yuan sent as a string. Validated later by ``parse_amount`` (which knows the field path)."""

    def to_internal_value(self, data: Any) -> Any:
        return data

    def to_representation(self, value: Any) -> Any:  # pragma: no cover - input only
        return value


@extend_schema_field(_MONEY_SCHEMA)
class MoneyField(serializers.Field):
    """Read only: a ``Money`` or an integer number of fen as "1234.50"; ``None`` stays null."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value: Money | int | None) -> str | None:
        if value is None:
            return None
        money = value if isinstance(value, Money) else Money(int(value))
        return money.as_decimal_string()


def parse_amount(value: Any, *, field: str) -> Money:
    """The ``Money`` of an API amount, or 400 ``money.invalid_amount`` naming ``field``."""
    return money_from_api(value, field=field)


def parse_optional_amount(data: Mapping[str, Any], name: str, *, field: str) -> Money | None:
    """``parse_amount`` of ``data[name]`` when it was sent and is not null."""
    value = data.get(name)
    return None if value is None else parse_amount(value, field=field)


class NamedEnumChoiceField(serializers.ChoiceField):
    """A ChoiceField documented as its own named enum component (``BillStatusEnum``), see ``enum_field``."""

    def __init__(self, *, enum: type[TextChoices], **kwargs: Any) -> None:
        self.enum = enum
        super().__init__(choices=enum.choices, **kwargs)


def enum_field(enum: type[TextChoices], **kwargs: Any) -> NamedEnumChoiceField:
    """A ChoiceField over ``enum`` whose schema is a reference to the component ``<Enum name>Enum``.

    For choice sets whose field name another component already uses with other values (``status`` of a
    member and of a bill, ``kind`` of an item and of a tender): drf-spectacular names enums after their
    field and would warn about the collision.
    """
    return NamedEnumChoiceField(enum=enum, **kwargs)


class NamedEnumFieldExtension(OpenApiSerializerFieldExtension):
    target_class = NamedEnumChoiceField
    match_subclasses = True

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        enum: type[TextChoices] = self.target.enum
        name = f"{enum.__name__}Enum"
        component = ResolvedComponent(
            name=name,
            type=ResolvedComponent.SCHEMA,
            object=name,
            schema={
                "type": "string",
                "enum": list(enum.values),
                "description": "\n".join(f"* `{value}` - {label}" for value, label in enum.choices),
            },
        )
        auto_schema.registry.register_on_missing(component)
        ref: dict[str, Any] = component.ref
        return ref
