"""Member cards (会员卡), card settings, import, one-time codes and the payment password. Money in yuan
strings. A password or a code is only ever an input: no response carries one."""

from __future__ import annotations

from rest_framework import serializers

from meiye.api.fields import AmountField, MoneyField
from meiye.cards.models import CardMedium, CardStatus, CodePurpose
from meiye.cards.services import FEE_TENDERS
from meiye.wallet.models import Tender


class CardProductRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()


class CardSerializer(serializers.Serializer):
    """A member card. The number is shown in full (a card number is not personal data)."""

    id = serializers.IntegerField()
    member_id = serializers.IntegerField()
    number = serializers.CharField()
    status = serializers.CharField(help_text=f"One of {', '.join(CardStatus.values)}.")
    medium = serializers.ChoiceField(choices=CardMedium.choices)
    named = serializers.BooleanField()
    product = CardProductRefSerializer(allow_null=True)
    replaced_by = serializers.CharField(source="replaced_by.number", allow_null=True, default=None)
    issued_at = serializers.DateTimeField()
    issued_store_id = serializers.IntegerField(allow_null=True)
    status_changed_at = serializers.DateTimeField(allow_null=True)
    status_reason = serializers.CharField()


class MemberCardsSerializer(serializers.Serializer):
    """Shaped from ``{"member_id", "cards", "has_password", "auth_required"}``."""

    member_id = serializers.IntegerField()
    has_password = serializers.BooleanField(help_text="Whether she set a payment password (never the password).")
    auth_required = serializers.BooleanField(
        help_text="Whether paying from stored value in the acting store needs her password or a one-time code."
    )
    cards = CardSerializer(many=True)


class CardIssueRequestSerializer(serializers.Serializer):
    medium = serializers.ChoiceField(choices=CardMedium.choices, default=CardMedium.VIRTUAL)
    number = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=40, help_text="A physical card's number."
    )
    product_id = serializers.IntegerField(required=False, allow_null=True, default=None)
    named = serializers.BooleanField(default=True)


class CardBindRequestSerializer(serializers.Serializer):
    number = serializers.CharField(max_length=40, help_text="The physical card's number, typed or scanned.")


class ReasonRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)


class CardReplaceRequestSerializer(serializers.Serializer):
    medium = serializers.ChoiceField(choices=CardMedium.choices, default=CardMedium.VIRTUAL)
    number = serializers.CharField(required=False, allow_blank=True, default="", max_length=40)
    fee_tender = serializers.ChoiceField(
        choices=[(t, t) for t in FEE_TENDERS],
        required=False,
        allow_blank=True,
        default="",
        help_text="How the store's replacement fee is paid (needed when the store sets a fee).",
    )
    password = serializers.CharField(required=False, allow_blank=True, default="", write_only=True)
    code = serializers.CharField(required=False, allow_blank=True, default="", write_only=True)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)


class CardCloseRequestSerializer(serializers.Serializer):
    tender = serializers.ChoiceField(choices=Tender.choices, help_text="How the remaining principal is paid back.")
    reason = serializers.CharField(max_length=200)


class CardCloseSerializer(serializers.Serializer):
    """Shaped from ``{"card", "closure"}``."""

    card = CardSerializer()
    principal_refunded = MoneyField(source="closure.principal_fen", allow_null=True, default=None)
    bonus_forfeited = MoneyField(source="closure.bonus_forfeited_fen", allow_null=True, default=None)
    pending_cancelled = MoneyField(source="closure.pending_cancelled_fen", allow_null=True, default=None)


class CardTransferRequestSerializer(serializers.Serializer):
    target_member_id = serializers.IntegerField()
    reason = serializers.CharField(max_length=200)
    password = serializers.CharField(required=False, allow_blank=True, default="", write_only=True)
    code = serializers.CharField(required=False, allow_blank=True, default="", write_only=True)


class CardTransferSerializer(serializers.Serializer):
    journal_id = serializers.IntegerField()
    source_member_id = serializers.IntegerField()
    target_member_id = serializers.IntegerField()


class CardImportRequestSerializer(serializers.Serializer):
    csv = serializers.CharField(
        max_length=2_000_000,
        trim_whitespace=False,
        help_text="CSV text: old number, member phone or member no., product code (an optional header row).",
    )
    dry_run = serializers.BooleanField(default=True)


class CardImportErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    column = serializers.CharField()
    code = serializers.CharField()
    zh = serializers.CharField()
    en = serializers.CharField()


class CardImportRowSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    old_number = serializers.CharField()
    member_id = serializers.IntegerField()
    member_no = serializers.CharField()
    product_code = serializers.CharField()
    card_number = serializers.CharField(help_text="The live card it will find; empty: a new virtual card.")


class CardImportSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    ok = serializers.BooleanField()
    cards_created = serializers.IntegerField()
    aliases_created = serializers.IntegerField()
    rows = CardImportRowSerializer(many=True)
    errors = CardImportErrorSerializer(many=True)  # type: ignore[assignment]  # a field; DRF's metaclass pops it


class PaymentCodeRequestSerializer(serializers.Serializer):
    purpose = serializers.CharField(
        max_length=10, help_text=f"One of {', '.join(CodePurpose.values)}: pay from stored value, or set the password."
    )


class PaymentCodeSerializer(serializers.Serializer):
    """That a code was sent; never the code."""

    id = serializers.IntegerField()
    purpose = serializers.CharField()
    expires_at = serializers.DateTimeField()


class PaymentPasswordRequestSerializer(serializers.Serializer):
    password = serializers.CharField(write_only=True, help_text="6 digits, typed by the member.")
    code = serializers.CharField(write_only=True, help_text="The code sent to her phone (purpose password).")


class CardSettingsSerializer(serializers.Serializer):
    store_id = serializers.IntegerField()
    replacement_fee = MoneyField(source="replacement_fee_fen")
    allow_balance_transfer = serializers.BooleanField()
    require_payment_auth = serializers.BooleanField()


class CardSettingsRequestSerializer(serializers.Serializer):
    replacement_fee = AmountField(help_text='The replacement fee in yuan, e.g. "10.00" ("0.00": none).')
    allow_balance_transfer = serializers.BooleanField()
    require_payment_auth = serializers.BooleanField()
