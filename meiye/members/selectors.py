"""Reads of members, scoped to the stores the acting staff member may see, with masking."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.db.models import Q, QuerySet

from meiye.core.crypto import blind_index, mask_email, mask_id_number, mask_phone, mask_text, normalise_phone
from meiye.core.db.prepared import PreparedQuery
from meiye.core.errors import not_found
from meiye.members.models import ConsentPurpose, ConsentRecord, CustomField, Member, MemberStatus, Tag
from meiye.org.context import Actor
from meiye.org.roles import Perm
from meiye.org.selectors import first_in_scope, stores_visible_by_ids, visible_store_ids

PHONE_KIND = "phone"
ID_KIND = "id_number"


def phone_index_of(phone: str) -> str:
    return blind_index(normalise_phone(phone), kind=PHONE_KIND)


def members_visible(actor: Actor, *, include_inactive: bool = True) -> QuerySet[Member]:
    """Members whose home store the actor may see (merged members are hidden)."""
    actor.require(Perm.MEMBER_VIEW)
    qs = Member.objects.filter(organisation=actor.organisation).exclude(status=MemberStatus.MERGED)
    if actor.staff is not None and not actor.staff.sees_all_stores:
        qs = qs.filter(home_store_id__in=visible_store_ids(actor))
    if not include_inactive:
        qs = qs.filter(status=MemberStatus.ACTIVE)
    return qs


def members_visible_by_ids(organisation_id: int, staff_id: int | None = None) -> QuerySet[Member]:
    """``members_visible`` from plain ids, for a prepared query (``meiye.core.db.prepared``): merged members
    hidden; with ``staff_id`` (a staff member who does not see every store) only her stores' members, her stores
    as a subquery."""
    qs = Member.objects.filter(organisation_id=organisation_id).exclude(status=MemberStatus.MERGED)
    if staff_id is None:
        return qs
    return qs.filter(home_store_id__in=stores_visible_by_ids(organisation_id, staff_id).values("pk"))


def _member_query(organisation_id: int, member_id: int, staff_id: int | None = None) -> QuerySet[Member]:
    """``members_visible(actor).get(pk=…)`` as one query."""
    return (
        members_visible_by_ids(organisation_id, staff_id).filter(pk=member_id).select_related("home_store", "referrer")
    )


# Compiled once per connection (meiye.core.db.prepared): every checkout and member page reads one member.
_MEMBER_ANY_STORE: PreparedQuery[Member] = PreparedQuery(_member_query, [int, int])
_MEMBER_OWN_STORES: PreparedQuery[Member] = PreparedQuery(_member_query, [int, int, int])


def member_get(actor: Actor, member_id: int | str) -> Member:
    actor.require(Perm.MEMBER_VIEW)
    try:
        pk = int(member_id)
    except (ValueError, TypeError):
        raise not_found("member.not_found", "会员", "Member") from None
    if not -(2**63) <= pk < 2**63:
        raise not_found("member.not_found", "会员", "Member")
    found = first_in_scope(actor, _MEMBER_ANY_STORE, _MEMBER_OWN_STORES, pk)
    if found is None:
        raise not_found("member.not_found", "会员", "Member")
    return found


def member_find_by_phone(actor: Actor, phone: str) -> Member | None:
    """Exact lookup by full phone number through the blind index (one indexed query)."""
    digits = normalise_phone(phone)
    if len(digits) < 11:
        return None
    return members_visible(actor).filter(phone_index=phone_index_of(digits)).select_related("home_store").first()


def member_search(actor: Actor, query: str = "", *, tag: str = "", limit: int = 50) -> QuerySet[Member]:
    """Search by full phone (exact), member number (exact or prefix), name (prefix) or tag."""
    qs = members_visible(actor).select_related("home_store")
    query = (query or "").strip()
    if tag:
        qs = qs.filter(tags__name=tag)
    if query:
        digits = normalise_phone(query)
        if len(digits) == 11 and digits == query.replace(" ", "").replace("-", "").lstrip("+").removeprefix("86"):
            qs = qs.filter(phone_index=phone_index_of(digits))
        elif query[:1].upper() == "M" and query[1:].isdigit():
            qs = qs.filter(member_no__istartswith=query.upper())
        else:
            qs = qs.filter(Q(name__startswith=query) | Q(member_no__iexact=query))
    return qs.order_by("-id")[:limit] if limit else qs.order_by("-id")


def tags_list(actor: Actor) -> list[str]:
    """Names of the organisation's tags, alphabetically (for the tag filter)."""
    return list(Tag.objects.filter(organisation=actor.organisation).order_by("name").values_list("name", flat=True))


def consent_state(member: Member) -> dict[str, bool]:
    """The member's current consent per purpose: the latest record wins; no record means no consent."""
    state = {purpose: False for purpose in ConsentPurpose.values}
    seen: set[str] = set()
    for record in ConsentRecord.objects.filter(member=member).order_by("-at", "-id"):
        if record.purpose not in seen:
            seen.add(record.purpose)
            state[record.purpose] = record.granted
    return state


def custom_fields(actor: Actor, *, active_only: bool = True) -> QuerySet[CustomField]:
    qs = CustomField.objects.filter(organisation=actor.organisation)
    return qs.filter(is_active=True) if active_only else qs


def sensitive_values(member: Member) -> dict[str, Any]:
    if not member.custom_sensitive:
        return {}
    data: dict[str, Any] = json.loads(member.custom_sensitive)
    return data


@dataclass
class CustomValueView:
    field: CustomField
    value: Any
    shown: str
    masked: bool
    blocked_by_consent: bool


@dataclass
class MemberView:
    """What a staff member may see of a member: masked where the role does not allow more."""

    member: Member
    phone: str
    id_number: str
    email: str
    address: str
    custom: list[CustomValueView] = field(default_factory=list)
    consents: dict[str, bool] = field(default_factory=dict)
    can_reveal: dict[str, bool] = field(default_factory=dict)
    photo_visible: bool = False


def member_view(actor: Actor, member: Member) -> MemberView:
    """Masked presentation. Full values only through ``members.services.member_reveal`` (audited)."""
    consents = consent_state(member)
    sensitive = sensitive_values(member)
    can_health = actor.can(Perm.MEMBER_REVEAL_HEALTH)
    custom: list[CustomValueView] = []
    for cf in custom_fields(actor):
        blocked = cf.health and not consents.get(ConsentPurpose.HEALTH, False)
        if cf.is_protected:
            value = None if blocked else sensitive.get(cf.key)
            custom.append(CustomValueView(cf, None, mask_text(_as_text(value)), True, blocked))
        else:
            value = member.custom.get(cf.key)
            custom.append(CustomValueView(cf, value, _as_text(value), False, False))
    return MemberView(
        member=member,
        phone=mask_phone(member.phone or ""),
        id_number=mask_id_number(member.id_number or ""),
        email=mask_email(member.email or ""),
        address=mask_text(member.address or ""),
        custom=custom,
        consents=consents,
        can_reveal={
            "phone": actor.can(Perm.MEMBER_REVEAL_PHONE) and bool(member.phone),
            "id_number": actor.can(Perm.MEMBER_REVEAL_ID) and bool(member.id_number),
            "email": actor.can(Perm.MEMBER_REVEAL_CONTACT) and bool(member.email),
            "address": actor.can(Perm.MEMBER_REVEAL_CONTACT) and bool(member.address),
            "custom": can_health,
        },
        photo_visible=actor.can(Perm.MEMBER_PHOTO) and consents.get(ConsentPurpose.PHOTO, False),
    )


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class DuplicateGroup:
    reason: str  # "phone" or "name_birthday"
    members: list[Member]


def duplicate_candidates(
    actor: Actor, *, name: str = "", birthday: date | None = None, phone: str = "", exclude_id: int | None = None
) -> list[Member]:
    """Existing members that look like the same person: same phone, or same name and birthday.
    Searches the whole organisation (a duplicate may live in another store) but returns only visible ones."""
    cond = Q()
    if phone and len(normalise_phone(phone)) == 11:
        cond |= Q(phone_index=phone_index_of(phone))
    if name and birthday:
        cond |= Q(name=name.strip(), birthday=birthday)
    if not cond:
        return []
    qs = members_visible(actor).filter(cond)
    if exclude_id:
        qs = qs.exclude(pk=exclude_id)
    return list(qs.order_by("id")[:20])


def duplicate_groups(actor: Actor, *, limit: int = 100) -> list[DuplicateGroup]:
    """Groups of visible members sharing name and birthday (phones are unique, so they cannot repeat)."""
    from django.db.models import Count

    visible = members_visible(actor, include_inactive=False).exclude(birthday=None)
    keys = visible.values("name", "birthday").annotate(n=Count("id")).filter(n__gt=1).order_by("name")[:limit]
    groups = []
    for key in keys:
        members = list(
            visible.filter(name=key["name"], birthday=key["birthday"]).select_related("home_store").order_by("id")
        )
        groups.append(DuplicateGroup(reason="name_birthday", members=members))
    return groups


def merge_chain(member: Member) -> list[Member]:
    """The member, then the member she was merged into, and so on to the live one (a cycle stops it)."""
    chain = [member]
    while chain[-1].status == MemberStatus.MERGED and chain[-1].merged_into_id is not None:
        survivor = Member.objects.get(pk=chain[-1].merged_into_id)
        if any(m.pk == survivor.pk for m in chain):
            break
        chain.append(survivor)
    return chain


def member_survivor(member: Member) -> Member:
    """Who holds a merged member's balances now: the end of her merge chain (herself if not merged)."""
    return merge_chain(member)[-1]
