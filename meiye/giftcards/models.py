"""Gift cards (礼品卡): bearer cards with a code, sold outside a bill and used at checkout as a tender.

A gift card is not stored value: anyone holding the code may use it, it belongs to no member, and paying
with it earns nothing. A sold card is a liability of the store that sold it.

Balances live in the ledger (ADR 0006), never in these rows: a card's remaining value is the account
("giftcard", card pk, "CNY", "gift_card"), which may not go negative. The selling store's CNY accounts take
the other side: ``tender_<kind>`` (what the buyer paid), ``gift_card_discount`` (face value above the sale
price) and ``gift_card_breakage`` (what was left on a card when it expired, or on a single-use card after its
use).

The code is shown once, at the sale, to be printed or handed over. It is stored encrypted
(``EncryptedTextField``) with a keyed blind index (``code_index``) for the look-up by code; staff screens
show it masked (``****-****-****-AB12``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from meiye.core.fields import EncryptedTextField
from meiye.wallet.models import Tender

CODE_LENGTH = 16
CODE_PURPOSE = "giftcards.GiftCard.code"


class GiftCardStatus(models.TextChoices):
    ACTIVE = "active", _("可用 Active")
    USED_UP = "used_up", _("已用完 Used up")
    EXPIRED = "expired", _("已过期 Expired")
    VOID = "void", _("已作废 Void")


class GiftCardSale(models.Model):
    """One sale of one or more gift cards of the same kind (one ``giftcards.sell`` journal).

    ``idempotency_key`` is the sale's own key: a replay of the same request returns these cards.
    """

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    store = models.ForeignKey("org.Store", on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField(_("数量 Quantity"))
    face_fen = models.BigIntegerField(_("面值（分） Face value (fen)"))
    price_fen = models.BigIntegerField(_("售价（分） Sale price (fen)"))
    multi_use = models.BooleanField(_("可多次使用 Multiple use"), default=True)
    expires_on = models.DateField(_("有效期至 Valid until"))
    tender = models.CharField(_("支付方式 Tender"), max_length=10, choices=Tender.choices)
    external_ref = models.CharField(_("支付流水号 Payment reference"), max_length=64, blank=True)
    buyer = models.ForeignKey(
        "members.Member", on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("购卡人")
    )
    journal = models.ForeignKey("ledger.Journal", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    idempotency_key = models.CharField(max_length=128)
    sold_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    sold_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "idempotency_key"], name="giftcards_sale_unique_key"),
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="giftcards_sale_quantity_positive"),
            models.CheckConstraint(
                condition=models.Q(face_fen__gt=0)
                & models.Q(price_fen__gt=0)
                & models.Q(price_fen__lte=models.F("face_fen")),
                name="giftcards_sale_price_within_face",
            ),
        ]

    def __str__(self) -> str:
        return f"GiftCardSale#{self.pk}"

    @property
    def paid_fen(self) -> int:
        """What the buyer paid for the whole sale."""
        return self.price_fen * self.quantity


class GiftCard(models.Model):
    """One bearer card. ``__str__`` is the masked code, so audit rows never hold the code itself."""

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    sale = models.ForeignKey(GiftCardSale, on_delete=models.PROTECT, related_name="cards")
    code = EncryptedTextField(_("卡号 Code"), purpose=CODE_PURPOSE)
    code_index = models.CharField(max_length=64, editable=False)
    face_fen = models.BigIntegerField(_("面值（分） Face value (fen)"))
    price_fen = models.BigIntegerField(_("售价（分） Sale price (fen)"))
    multi_use = models.BooleanField(_("可多次使用 Multiple use"), default=True)
    expires_on = models.DateField(_("有效期至 Valid until"), help_text="the last day it may be used")
    status = models.CharField(
        _("状态 Status"), max_length=10, choices=GiftCardStatus.choices, default=GiftCardStatus.ACTIVE
    )
    store = models.ForeignKey("org.Store", on_delete=models.PROTECT, related_name="+", verbose_name=_("售卡门店"))
    sold_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    sold_at = models.DateTimeField()
    buyer = models.ForeignKey(
        "members.Member", on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("购卡人")
    )
    external_ref = models.CharField(_("支付流水号 Payment reference"), max_length=64, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    voided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    void_reason = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "code_index"], name="giftcards_card_unique_code"),
            models.CheckConstraint(
                condition=models.Q(face_fen__gt=0)
                & models.Q(price_fen__gt=0)
                & models.Q(price_fen__lte=models.F("face_fen")),
                name="giftcards_card_price_within_face",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=GiftCardStatus.values), name="giftcards_card_valid_status"
            ),
        ]
        indexes = [
            models.Index(fields=["organisation", "status", "expires_on"], name="giftcards_status_expiry_idx"),
            models.Index(fields=["store", "-sold_at"], name="giftcards_store_sold_idx"),
        ]

    def __str__(self) -> str:
        return f"GiftCard#{self.pk} {self.masked_code}"

    @property
    def masked_code(self) -> str:
        """``****-****-****-AB12``: only the last four characters."""
        tail = (self.code or "")[-4:]
        return f"****-****-****-{tail}" if tail else ""


class GiftCardUse(models.Model):
    """One payment with a card at checkout. ``bill_id`` is a plain integer: sales is above this app.

    ``refunded_fen`` grows with the bill's refunds that gave money back to the card; ``reversed`` is set
    when all of the use has come back.
    """

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    card = models.ForeignKey(GiftCard, on_delete=models.PROTECT, related_name="uses")
    bill_id = models.BigIntegerField()
    amount_fen = models.BigIntegerField(_("金额（分） Amount (fen)"))
    refunded_fen = models.BigIntegerField(_("已退回（分） Refunded (fen)"), default=0)
    reversed = models.BooleanField(_("已冲回 Reversed"), default=False)
    store = models.ForeignKey("org.Store", on_delete=models.PROTECT, null=True, related_name="+")
    staff = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount_fen__gt=0), name="giftcards_use_amount_positive"),
            models.CheckConstraint(
                condition=models.Q(refunded_fen__gte=0) & models.Q(refunded_fen__lte=models.F("amount_fen")),
                name="giftcards_use_refund_within_amount",
            ),
        ]
        indexes = [models.Index(fields=["organisation", "bill_id"], name="giftcards_use_bill_idx")]

    def __str__(self) -> str:
        return f"GiftCardUse#{self.pk} bill {self.bill_id}"
