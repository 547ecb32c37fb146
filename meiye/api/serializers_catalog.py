"""Catalogue (项目与产品) serializers: categories, items with the acting store's price, store prices."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from meiye.api.fields import AmountField, MoneyField, parse_amount
from meiye.catalog.models import CommissionCategory, EarningCategory, ItemKind, ProductType

# --- output ------------------------------------------------------------------------------------------------


class CategorySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=ItemKind.choices)
    earning_category = serializers.ChoiceField(
        choices=EarningCategory.choices, help_text="How spending in this category earns points."
    )
    commission_category = serializers.ChoiceField(choices=CommissionCategory.choices)
    order = serializers.IntegerField()
    is_active = serializers.BooleanField()


class CategoryRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    earning_category = serializers.ChoiceField(choices=EarningCategory.choices)


class ItemSerializer(serializers.Serializer):
    """An item with its list price and the price of the acting store (its own price, or the list price).

    Shaped from ``{"item": Item, "list_price": Money, "store_price": Money, "store_id": int | None}``.
    """

    id = serializers.IntegerField(source="item.pk")
    code = serializers.CharField(source="item.code")
    name = serializers.CharField(source="item.name")
    kind = serializers.ChoiceField(choices=ItemKind.choices, source="item.kind")
    category = CategoryRefSerializer(source="item.category")
    list_price = MoneyField(help_text="The brand's list price in yuan.")
    list_price_fen = serializers.IntegerField(source="list_price.fen", help_text="The list price in fen (分).")
    store_price = MoneyField(help_text="What the acting store charges before member prices and discounts.")
    store_price_fen = serializers.IntegerField(source="store_price.fen", help_text="The store price in fen (分).")
    has_store_price = serializers.BooleanField(help_text="True when the acting store set its own price.")
    store_id = serializers.IntegerField(allow_null=True, help_text="The acting store the store price is for.")
    duration_minutes = serializers.IntegerField(source="item.duration_minutes", allow_null=True)
    sku = serializers.CharField(source="item.sku")
    barcode = serializers.CharField(source="item.barcode")
    unit = serializers.CharField(source="item.unit")
    product_type = serializers.CharField(
        source="item.product_type", help_text="retail or consumable; empty for services."
    )
    is_active = serializers.BooleanField(source="item.is_active")


class StorePriceSerializer(serializers.Serializer):
    """A store's price for an item after a set or clear; ``price`` is null once cleared."""

    store_id = serializers.IntegerField()
    item_id = serializers.IntegerField()
    price = MoneyField(allow_null=True, help_text="The store's own price; null: the list price applies.")
    list_price = MoneyField()
    effective_price = MoneyField(help_text="What the store charges now.")


# --- input --------------------------------------------------------------------------------------------------


class CategoryWriteSerializer(serializers.Serializer):
    """Create or replace a category by ``code`` (the code is the key)."""

    # 32: the column's length (catalog.Category.code), shorter than the 40 the service's code check allows.
    code = serializers.CharField(max_length=32, help_text="Lowercase letters, digits, - and _, e.g. basic-care.")
    name = serializers.CharField(max_length=50)
    kind = serializers.ChoiceField(choices=ItemKind.choices)
    earning_category = serializers.ChoiceField(choices=EarningCategory.choices)
    commission_category = serializers.ChoiceField(choices=CommissionCategory.choices)
    order = serializers.IntegerField(required=False, default=0, min_value=0, max_value=32767)
    is_active = serializers.BooleanField(required=False, default=True)


class CategoryPatchSerializer(serializers.Serializer):
    """Only the fields sent change; the code cannot change."""

    name = serializers.CharField(max_length=50, required=False)
    kind = serializers.ChoiceField(choices=ItemKind.choices, required=False)
    earning_category = serializers.ChoiceField(choices=EarningCategory.choices, required=False)
    commission_category = serializers.ChoiceField(choices=CommissionCategory.choices, required=False)
    order = serializers.IntegerField(required=False, min_value=0, max_value=32767)
    is_active = serializers.BooleanField(required=False)


class _ItemFieldsSerializer(serializers.Serializer):
    category_id = serializers.IntegerField(
        min_value=1, help_text="A category of the brand; the item's kind follows it."
    )
    name = serializers.CharField(max_length=80)
    price = AmountField(help_text='List price in yuan as a string, e.g. "680.00".')
    duration_minutes = serializers.IntegerField(
        required=False, allow_null=True, help_text="Services: 1 to 1440 minutes. Ignored for products."
    )
    sku = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    barcode = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    unit = serializers.CharField(max_length=10, required=False, allow_blank=True, default="")
    product_type = serializers.ChoiceField(
        choices=[("", "—"), *ProductType.choices], required=False, allow_blank=True, default=""
    )
    is_active = serializers.BooleanField(required=False, default=True)

    def item_kwargs(self) -> dict[str, Any]:
        """The ``item_save`` keyword arguments sent (not actor, code and category), the price as Money."""
        data = dict(self.validated_data)
        data.pop("category_id", None)
        data.pop("code", None)
        if "price" in data:
            data["price"] = parse_amount(data["price"], field="price")
        return data


class ItemWriteSerializer(_ItemFieldsSerializer):
    """Create or replace an item by ``code`` (the code is the key)."""

    code = serializers.CharField(max_length=40, help_text="Lowercase letters, digits, - and _, e.g. hydra-facial.")


class ItemPatchSerializer(_ItemFieldsSerializer):
    """Only the fields sent change; the code cannot change."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False
            field.default = serializers.empty


class StorePriceWriteSerializer(serializers.Serializer):
    price = AmountField(help_text='The store\'s own price in yuan, e.g. "580.00".')
