"""Writes for prepaid contracts: make one for a sale, and take the member's signature.

``contract_create`` is called by the selling service (``wallet`` for a recharge, ``packages`` for a
package sale) inside its own transaction, so a sale and its contract commit or roll back together. It is
idempotent per sale (``reference_type`` + ``reference_id``): a replayed sale gets its first contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from meiye.audit.services import audit_record
from meiye.contracts.models import Contract, ContractKind
from meiye.core.crypto import mask_phone
from meiye.core.money import Money
from meiye.members.models import Member
from meiye.org.context import Actor
from meiye.org.models import Store

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
        contract.number = f"HT{timezone.localdate(now):%Y%m%d}{contract.pk:06d}"
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
