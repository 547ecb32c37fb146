"""The catalogue: categories, services and products, and per-store prices. Prices are integer fen."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class ItemKind(models.TextChoices):
    SERVICE = "service", _("服务 Service")
    PRODUCT = "product", _("产品 Product")
    PACKAGE = "package", _("套餐 Package")


class EarningCategory(models.TextChoices):
    """How spending in a category earns points (rates are configured per organisation)."""

    BASIC_CARE = "basic_care", _("基础护理 Basic care")
    ANTI_AGEING = "anti_ageing", _("抗衰 Anti-ageing")
    HAIR = "hair", _("美发 Hair")
    MEDICAL = "medical", _("医美项目 Medical aesthetics")
    RETAIL = "retail", _("零售产品 Retail products")
    NONE = "none", _("不积分 Earns nothing")


class CommissionCategory(models.TextChoices):
    SERVICE = "service", _("服务提成 Service")
    PRODUCT = "product", _("产品提成 Product sale")
    CARD = "card", _("卡项提成 Card sale")
    NONE = "none", _("无提成 None")


class ProductType(models.TextChoices):
    RETAIL = "retail", _("零售 Retail")
    CONSUMABLE = "consumable", _("院用耗材 Consumable")


class Category(models.Model):
    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    code = models.SlugField(max_length=32)
    name = models.CharField(_("名称 Name"), max_length=50)
    kind = models.CharField(max_length=10, choices=ItemKind.choices)
    earning_category = models.CharField(max_length=20, choices=EarningCategory.choices)
    commission_category = models.CharField(max_length=20, choices=CommissionCategory.choices)
    order = models.PositiveSmallIntegerField(default=0)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["order", "id"]
        constraints = [models.UniqueConstraint(fields=["organisation", "code"], name="catalog_category_unique_code")]

    def __str__(self) -> str:
        return self.name


class Item(models.Model):
    """A service (with a duration) or a product (with SKU, barcode and unit) at its list price."""

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="items")
    kind = models.CharField(max_length=10, choices=ItemKind.choices)
    code = models.SlugField(_("编码 Code"), max_length=40)
    name = models.CharField(_("名称 Name"), max_length=80)
    price_fen = models.BigIntegerField(_("标价（分） List price (fen)"))
    duration_minutes = models.PositiveSmallIntegerField(null=True, blank=True)
    sku = models.CharField(max_length=40, blank=True)
    barcode = models.CharField(max_length=40, blank=True, db_index=True)
    unit = models.CharField(max_length=10, blank=True)
    product_type = models.CharField(max_length=12, choices=ProductType.choices, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["category__order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "code"], name="catalog_item_unique_code"),
            models.CheckConstraint(condition=models.Q(price_fen__gte=0), name="catalog_item_price_not_negative"),
            models.CheckConstraint(
                condition=~models.Q(kind="service") | models.Q(duration_minutes__gt=0),
                name="catalog_service_has_duration",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class StorePrice(models.Model):
    """A store's own price for an item, overriding the list price."""

    store = models.ForeignKey("org.Store", on_delete=models.PROTECT, related_name="+")
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="store_prices")
    price_fen = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["store", "item"], name="catalog_storeprice_unique"),
            models.CheckConstraint(condition=models.Q(price_fen__gte=0), name="catalog_storeprice_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.item_id}@{self.store_id}"


class CatalogVersion(models.Model):
    """A random stamp (``core.stamps``) every change to an organisation's items, categories, store prices or
    earning rates sets in its transaction (``catalog.services.catalog_changed``): a checkout reads it with its
    store row and prices from its process's copy of the items while it is the one copied. No row: the
    organisation has changed nothing through the services since the stamp existed, and the items are read."""

    organisation = models.OneToOneField("org.Organisation", on_delete=models.CASCADE, related_name="+")
    version = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.organisation_id}: {self.version}"
