"""Writes for prepaid contracts: make one for a sale, and take the member's signature.

``contract_sign`` stores the member's signature (a PNG drawn on the signature pad) once: a signed
contract can never be signed again or changed. The PNG is checked (a real PNG, at most
``SIGNATURE_MAX_BYTES``, sane dimensions, not blank), kept encrypted, and its SHA-256 recorded.

``contract_create`` is called by the selling service (``wallet`` for a recharge, ``packages`` for a
package sale) inside its own transaction, so a sale and its contract commit or roll back together. It is
idempotent per sale (``reference_type`` + ``reference_id``): a replayed sale gets its first contract.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from meiye.audit.services import audit_record
from meiye.contracts.models import Contract, ContractKind, ContractStatus
from meiye.contracts.pdf import contract_pdf as contract_pdf  # ADR 0006 names it beside the writes
from meiye.contracts.selectors import contract_get
from meiye.core.crypto import mask_phone
from meiye.core.errors import Conflict, ValidationFailed
from meiye.core.money import Money
from meiye.members.models import Member
from meiye.org.context import Actor
from meiye.org.models import Store
from meiye.org.roles import Perm

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SIGNATURE_MAX_BYTES = 300 * 1024
SIGNATURE_MIN_SIZE = (100, 40)  # width, height in pixels
SIGNATURE_MAX_SIZE = (3000, 1500)

# Both languages, always: the contract is printed for the member and kept for a regulator.
Text = dict[str, str]

LIABILITY: Text = {
    "zh-hans": (
        "经营者应按约定提供商品或服务；经营者停业、歇业或迁址未继续履约的，应按约定退还预付款余额。"
        "预付款余额、剩余次数以本店系统记录为准，消费者可随时查询。"
    ),
    "en": (
        "The business provides the goods or services as agreed. If it stops trading, closes or moves without "
        "continuing to serve the member, it refunds the prepaid balance as agreed. The prepaid balance and the "
        "sessions left are as recorded by the store's system, which the member may check at any time."
    ),
}


@dataclass(frozen=True)
class ContractItem:
    """One thing bought: a name, how many, and a line of detail (validity of a package item …)."""

    name: str
    quantity: int = 1
    detail: Text | None = None

    def as_body(self) -> dict[str, Any]:
        return {"name": self.name, "quantity": self.quantity, "detail": dict(self.detail or {})}


def contract_create(
    *,
    actor: Actor,
    member: Member,
    store: Store,
    kind: str,
    reference_type: str,
    reference_id: str | int,
    price_fen: int,
    items: list[ContractItem],
    validity: Text,
    refund_method: Text,
    terms: str = "",
) -> Contract:
    """The contract of one prepaid sale, awaiting the member's signature. Idempotent per sale."""
    if kind not in ContractKind.values:
        raise ValueError(f"unknown contract kind {kind!r}")
    if price_fen < 0:
        raise ValueError("a contract's price cannot be negative")
    reference_id = str(reference_id)
    with transaction.atomic():
        first = Contract.objects.filter(
            organisation_id=member.organisation_id, reference_type=reference_type, reference_id=reference_id
        ).first()
        if first is not None:
            return first
        now = timezone.now()
        body = {
            "title": _TITLES[kind],
            "items": [item.as_body() for item in items],
            "price": Money(price_fen).as_decimal_string(),
            "validity": dict(validity),
            "refund_method": dict(refund_method),
            "liability": dict(LIABILITY),
            "terms": terms,
            "seller": {
                "organisation": store.organisation.name,
                "store": store.name,
                "address": store.address,
                "phone": store.phone,
            },
            "buyer": {"name": member.name, "member_no": member.member_no, "phone": mask_phone(member.phone or "")},
        }
        contract = Contract.objects.create(
            organisation_id=member.organisation_id,
            store=store,
            member=member,
            number=f"tmp-{reference_type}-{reference_id}",
            kind=kind,
            reference_type=reference_type,
            reference_id=reference_id,
            price_fen=price_fen,
            body=body,
            created_by=actor.staff,
        )
        # HT + the selling store's local date + the row id: unique in the organisation, sortable, and
        # meaningful at the desk ("HT20261124000042").
        contract.number = f"HT{timezone.localdate(now, timezone=_zone(store)):%Y%m%d}{contract.pk:06d}"
        contract.save(update_fields=["number"])
        audit_record(
            actor=actor,
            action="contracts.create",
            obj=contract,
            detail={"number": contract.number, "kind": kind, "member": member.member_no, "price_fen": price_fen},
        )
    return contract


_TITLES: dict[str, Text] = {
    ContractKind.STORED_VALUE: {"zh-hans": "储值卡预付消费合同", "en": "Stored-value prepaid contract"},
    ContractKind.PACKAGE: {"zh-hans": "次卡/套餐预付消费合同", "en": "Package prepaid contract"},
}


def _zone(store: Store) -> ZoneInfo:
    try:
        return ZoneInfo(store.time_zone)
    except (ValueError, KeyError):  # pragma: no cover - a store's zone is validated when saved
        return ZoneInfo("Asia/Shanghai")


def contract_sign(*, actor: Actor, contract: Contract, signature_png: bytes) -> Contract:
    """The member signs (``sales.checkout``, the cashier holds the pad): store the PNG, mark the contract signed.

    Refuses ``contract.signature_invalid`` (not a PNG, too large, too small or too large in pixels, blank)
    and ``contract.already_signed`` (409: a signed contract is never signed again or changed). Audited
    (``contracts.sign`` with the image's SHA-256, never the image). Writes nothing when refused."""
    actor.require(Perm.CHECKOUT)
    contract = contract_get(actor, contract.pk)
    if contract.signed:
        raise _already_signed(contract)
    _check_png(signature_png)
    digest = hashlib.sha256(signature_png).hexdigest()
    with transaction.atomic():
        locked = Contract.objects.select_for_update().get(pk=contract.pk)
        if locked.status != ContractStatus.AWAITING_SIGNATURE:
            raise _already_signed(locked)
        locked.signature = signature_png
        locked.signature_sha256 = digest
        locked.signed_at = timezone.now()
        locked.signed_by = actor.staff
        locked.status = ContractStatus.SIGNED
        locked.save(update_fields=["signature", "signature_sha256", "signed_at", "signed_by", "status"])
        audit_record(
            actor=actor,
            action="contracts.sign",
            obj=locked,
            detail={"number": locked.number, "member": contract.member.member_no, "signature_sha256": digest},
        )
    return contract_get(actor, locked.pk)


def _already_signed(contract: Contract) -> Conflict:
    return Conflict(
        "contract.already_signed",
        zh=f"合同 {contract.number} 已签署，不能再次签署或修改。",
        en=f"Contract {contract.number} is already signed; it cannot be signed again or changed.",
        field="signature",
    )


def _invalid(zh: str, en: str) -> ValidationFailed:
    return ValidationFailed("contract.signature_invalid", zh=f"签名：{zh}", en=f"signature: {en}", field="signature")


def _check_png(data: bytes) -> None:
    """A real PNG of sane size that is not blank (Pillow decodes it fully)."""
    from PIL import Image, UnidentifiedImageError  # reportlab's own dependency

    if not isinstance(data, bytes | bytearray) or not data:
        raise _invalid("请先在签名板上签名。", "please sign on the pad first (no image was sent).")
    if len(data) > SIGNATURE_MAX_BYTES:
        raise _invalid(
            f"图片不能超过 {SIGNATURE_MAX_BYTES // 1024} KB（收到 {len(data) // 1024} KB）。",
            f"the image must be at most {SIGNATURE_MAX_BYTES // 1024} KB (got {len(data) // 1024} KB).",
        )
    if not bytes(data).startswith(PNG_MAGIC):
        raise _invalid("必须是 PNG 图片。", "must be a PNG image.")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG":
                raise _invalid("必须是 PNG 图片。", "must be a PNG image.")
            width, height = image.size
            if not (SIGNATURE_MIN_SIZE[0] <= width <= SIGNATURE_MAX_SIZE[0]) or not (
                SIGNATURE_MIN_SIZE[1] <= height <= SIGNATURE_MAX_SIZE[1]
            ):
                raise _invalid(
                    f"图片尺寸 {width}×{height} 不合理，宽应在 {SIGNATURE_MIN_SIZE[0]}–{SIGNATURE_MAX_SIZE[0]}、"
                    f"高应在 {SIGNATURE_MIN_SIZE[1]}–{SIGNATURE_MAX_SIZE[1]} 像素之间。",
                    f"an image of {width}×{height} pixels is not plausible; the width must be "
                    f"{SIGNATURE_MIN_SIZE[0]}–{SIGNATURE_MAX_SIZE[0]} and the height "
                    f"{SIGNATURE_MIN_SIZE[1]}–{SIGNATURE_MAX_SIZE[1]} pixels.",
                )
            image.load()
            if _is_blank(image):
                raise _invalid("签名为空，请在签名板上签名。", "the signature is empty; please sign on the pad.")
    except ValidationFailed:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise _invalid("图片已损坏，无法读取。", "the image is damaged and cannot be read.") from exc


def _is_blank(image: Any) -> bool:
    """No stroke: fully transparent, or one single colour everywhere."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        alpha = image.convert("RGBA").getchannel("A")
        if alpha.getbbox() is None:
            return True
    low, high = image.convert("L").getextrema()
    if low != high:
        return False
    if image.mode in ("RGBA", "LA", "P"):
        # Strokes of the same grey as the background but visible through alpha still count.
        alpha_low, alpha_high = image.convert("RGBA").getchannel("A").getextrema()
        return bool(alpha_low == alpha_high)
    return True


def signature_png_from_text(value: str) -> bytes:
    """The pad's PNG as sent by a form or the API: base64, bare or as a ``data:image/png;base64,`` URL.
    Anything else is ``contract.signature_invalid`` (the PNG itself is checked by ``contract_sign``)."""
    text = (value or "").strip()
    if not text:
        raise _invalid("请先在签名板上签名。", "please sign on the pad first (no image was sent).")
    if text.startswith("data:"):
        head, _, text = text.partition(",")
        if head.replace(" ", "").lower() != "data:image/png;base64":
            raise _invalid("必须是 PNG 图片。", "must be a PNG image (data:image/png;base64,…).")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("数据不是有效的 base64 编码。", "the data is not valid base64.") from None
