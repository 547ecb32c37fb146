"""Prepaid contracts (预付式消费合同).

Since 2024-07-01 (the implementing regulation of the Consumer Rights Protection Law) a business selling
prepaid services must give the consumer a written contract. Meiye makes one for every stored-value recharge
and every package sale: what is bought, the price, validity, the refund method and who is liable, frozen
in ``body`` when it is made (later changes to a product never rewrite a contract). The member signs on the
screen; the signature image is personal data and is kept encrypted.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from meiye.core.fields import EncryptedBinaryField


class ContractKind(models.TextChoices):
    STORED_VALUE = "stored_value", _("储值 Stored value")
    PACKAGE = "package", _("次卡/套餐 Package")


class ContractStatus(models.TextChoices):
    AWAITING_SIGNATURE = "awaiting_signature", _("待签署 Awaiting signature")
    SIGNED = "signed", _("已签署 Signed")


class Contract(models.Model):
    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    store = models.ForeignKey("org.Store", on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="+")
    number = models.CharField(_("合同编号 Contract no."), max_length=40)
    kind = models.CharField(max_length=16, choices=ContractKind.choices)
    # What the contract is for: "wallet.Recharge" / "packages.MemberPackage" and its primary key.
    reference_type = models.CharField(max_length=40)
    reference_id = models.CharField(max_length=40)
    price_fen = models.BigIntegerField(_("价款（分） Price (fen)"))
    # The frozen text: {"title", "items": [{"name", "quantity", "detail"}], "validity", "refund_method",
    # "liability", "terms", "seller": {...}, "buyer": {...}} in zh-hans and en (see services.contract_create).
    body = models.JSONField(default=dict)
    status = models.CharField(max_length=20, choices=ContractStatus.choices, default=ContractStatus.AWAITING_SIGNATURE)
    signature = EncryptedBinaryField(null=True, blank=True)  # PNG bytes, encrypted at rest
    signed_at = models.DateTimeField(null=True, blank=True)
    # Who took the signature at the desk, and the SHA-256 of the PNG as signed (printed on the contract, so a
    # copy can be checked against the record).
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    signature_sha256 = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "number"], name="contracts_unique_number"),
            models.UniqueConstraint(
                fields=["organisation", "reference_type", "reference_id"], name="contracts_one_per_sale"
            ),
            models.CheckConstraint(condition=models.Q(price_fen__gte=0), name="contracts_price_not_negative"),
            models.CheckConstraint(
                condition=models.Q(status="awaiting_signature", signed_at__isnull=True)
                | models.Q(status="signed", signed_at__isnull=False),
                name="contracts_signed_has_time",
            ),
            models.CheckConstraint(
                condition=models.Q(status="awaiting_signature") | models.Q(signature__isnull=False),
                name="contracts_signed_has_signature",
            ),
        ]
        indexes = [models.Index(fields=["member", "-created_at"], name="contracts_member_idx")]

    def __str__(self) -> str:
        return self.number

    @property
    def signed(self) -> bool:
        return self.status == ContractStatus.SIGNED
