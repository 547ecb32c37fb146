"""Reads of prepaid contracts, scoped like the rest of the front desk.

A contract is visible to a staff member who may see its member (``members.selectors.members_visible``: the
member's home store) or who works in the store that sold it (the seller keeps its own contracts). Anything
else is "not found" (404), never "forbidden", so ids reveal nothing. Reading needs ``member.view``.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from meiye.contracts.models import Contract
from meiye.core.errors import not_found
from meiye.members.models import Member
from meiye.members.selectors import member_get, members_visible
from meiye.org.context import Actor
from meiye.org.roles import Perm
from meiye.org.selectors import visible_store_ids

# Labels printed on the contract for the texts frozen in ``Contract.body``.
LANGUAGES = ("zh-hans", "en")


def contracts_visible(actor: Actor) -> QuerySet[Contract]:
    """The organisation's contracts this actor may read (``member.view``; by member or by selling store)."""
    actor.require(Perm.MEMBER_VIEW)
    qs = Contract.objects.filter(organisation=actor.organisation)
    if actor.staff is not None and not actor.staff.sees_all_stores:
        qs = qs.filter(Q(member__in=members_visible(actor)) | Q(store_id__in=visible_store_ids(actor)))
    return qs


def contract_get(actor: Actor, pk: int | str) -> Contract:
    """One contract the actor may read, with its store and member; otherwise ``contract.not_found``."""
    try:
        return contracts_visible(actor).select_related("store", "member", "signed_by", "created_by").get(pk=int(pk))
    except (Contract.DoesNotExist, ValueError, TypeError):
        raise not_found("contract.not_found", "合同", "Contract") from None


def member_contracts(actor: Actor, member: Member) -> QuerySet[Contract]:
    """All contracts of a member the actor may see (newest first). The member is checked first, so a member
    of a store the actor cannot see is ``member.not_found``."""
    member = member_get(actor, member.pk)
    return (
        Contract.objects.filter(organisation=actor.organisation, member=member)
        .select_related("store")
        .order_by("-created_at", "-id")
    )


def contract_for_reference(actor: Actor, reference_type: str, reference_id: int | str) -> Contract | None:
    """The contract of one sale (``"wallet.Recharge"``/``"packages.MemberPackage"`` and its id), if visible."""
    return contracts_visible(actor).filter(reference_type=reference_type, reference_id=str(reference_id)).first()


def text(value: Any, lang: str) -> str:
    """One language of a frozen bilingual text (``{"zh-hans": …, "en": …}``); a plain string is both."""
    if isinstance(value, dict):
        return str(value.get(lang) or value.get("zh-hans") or "")
    return "" if value is None else str(value)
