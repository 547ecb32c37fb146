"""Gift cards (礼品卡). Amounts are strings in yuan; codes appear in full only in the answer to a sale."""

from __future__ import annotations

from rest_framework import serializers

from meiye.api.fields import AmountField, MoneyField, enum_field
from meiye.api.serializers import StoreRefSerializer
from meiye.giftcards.models import GiftCardStatus
from meiye.wallet.models import Tender


class GiftCardSellRequestSerializer(serializers.Serializer):
    face = AmountField(help_text='Face value (面值) of each card, in yuan, e.g. "500.00".')
    price = AmountField(help_text='What the buyer pays per card (售价), not above the face value, e.g. "450.00".')
    quantity = serializers.IntegerField(min_value=1, max_value=100, default=1)
    multi_use = serializers.BooleanField(default=True, help_text="false: a single-use card (单次卡).")
    expires_on = serializers.DateField(help_text="The last day the card may be used (YYYY-MM-DD).")
    tender = serializers.ChoiceField(choices=Tender.choices, help_text="How the buyer pays.")
    external_ref = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=64, help_text="WeChat/Alipay/card reference."
    )
    buyer_id = serializers.IntegerField(required=False, allow_null=True, default=None, help_text="Optional member.")


class GiftCardLookupRequestSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=64, help_text="The 16-character code, with or without dashes.")


class GiftCardVoidRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=200, help_text="Why the card is taken back (作废原因).")


class GiftCardSerializer(serializers.Serializer):
    """A card as staff see it: the code masked. Shaped from ``{"card": GiftCard, "balance": Money}``."""

    id = serializers.IntegerField(source="card.pk")
    masked_code = serializers.CharField(source="card.masked_code", help_text="****-****-****-AB12")
    face = MoneyField(source="card.face_fen")
    price = MoneyField(source="card.price_fen")
    balance = MoneyField(help_text="What is left on the card.")
    balance_fen = serializers.IntegerField(source="balance.fen")
    multi_use = serializers.BooleanField(source="card.multi_use")
    expires_on = serializers.DateField(source="card.expires_on")
    status = enum_field(GiftCardStatus, source="card.status")
    store = StoreRefSerializer(source="card.store", help_text="The store that sold it.")
    sold_at = serializers.DateTimeField(source="card.sold_at")
    buyer_id = serializers.IntegerField(source="card.buyer_id", allow_null=True)


class GiftCardUseSerializer(serializers.Serializer):
    bill_id = serializers.IntegerField()
    amount = MoneyField(source="amount_fen")
    refunded = MoneyField(source="refunded_fen")
    reversed = serializers.BooleanField()
    at = serializers.DateTimeField()


class GiftCardDetailSerializer(GiftCardSerializer):
    """Shaped from ``{"card": GiftCard, "balance": Money, "uses": [GiftCardUse]}``."""

    uses = GiftCardUseSerializer(many=True)


class GiftCardSoldSerializer(GiftCardSerializer):
    code = serializers.CharField(source="card.code", help_text="The full code: shown once, to print or hand over.")


class GiftCardSellResultSerializer(serializers.Serializer):
    """Shaped from ``{"sale": GiftCardSale, "cards": [{"card", "balance"}]}``."""

    sale_id = serializers.IntegerField(source="sale.pk")
    journal_id = serializers.IntegerField(source="sale.journal_id", allow_null=True)
    tender = serializers.ChoiceField(choices=Tender.choices, source="sale.tender")
    paid = MoneyField(source="sale.paid_fen", help_text="price × quantity")
    cards = GiftCardSoldSerializer(many=True)
