"""Reads of points and growth value. Balances come from the ledger; lots from ``PointsLot``.

These take a member the caller already obtained through ``meiye.members.selectors.member_get`` (which
checks the actor may see her); they never write, not even an empty account.
"""

from __future__ import annotations

from datetime import date

from django.db.models import OuterRef, QuerySet, Subquery, Sum

from meiye.ledger.models import Account
from meiye.ledger.selectors import HistoryLine, account_find, account_history, balance_of
from meiye.loyalty.models import DEFAULT_POINTS_LIFETIME_MONTHS, EarningRate, LoyaltySettings, PointsLot
from meiye.members.models import Member
from meiye.org.models import Organisation

# Ledger assets and account kinds (ADR 0003).
POINTS_ASSET = "PTS"
GROWTH_ASSET = "GRW"
MEMBER_POINTS = "points"
POINTS_ISSUED = "points_issued"
POINTS_REDEEMED = "points_redeemed"
POINTS_EXPIRED = "points_expired"
MEMBER_GROWTH = "growth"
GROWTH_SOURCE = "growth_source"


def earning_rates(organisation: Organisation) -> dict[str, int]:
    """Points per 元 by earning category, as configured; a category missing here earns 0."""
    return dict(
        EarningRate.objects.filter(organisation=organisation)
        .order_by("earning_category")
        .values_list("earning_category", "points_per_yuan")
    )


def points_lifetime_months(organisation_id: int) -> int:
    lifetime = (
        LoyaltySettings.objects.filter(organisation_id=organisation_id)
        .values_list("points_lifetime_months", flat=True)
        .first()
    )
    return points_lifetime_or_default(lifetime)


def earning_rate_subquery(organisation_id: int, category_ref: str) -> Subquery:
    """The points per 元 of the earning category at ``category_ref`` of the outer queryset (NULL: none set,
    which earns 0), so a checkout reads the rates of its items with the items."""
    return Subquery(
        EarningRate.objects.filter(organisation_id=organisation_id, earning_category=OuterRef(category_ref)).values(
            "points_per_yuan"
        )[:1]
    )


def points_lifetime_subquery(organisation_ref: str = "organisation_id") -> Subquery:
    """``points_lifetime_months`` as an expression (NULL: the default; see ``points_lifetime_or_default``)."""
    return Subquery(
        LoyaltySettings.objects.filter(organisation_id=OuterRef(organisation_ref)).values("points_lifetime_months")[:1]
    )


def points_lifetime_or_default(value: int | None) -> int:
    return value if value is not None else DEFAULT_POINTS_LIFETIME_MONTHS


def member_points_account(member: Member) -> Account | None:
    return account_find(
        organisation_id=member.organisation_id,
        owner_type="member",
        owner_id=member.pk,
        asset=POINTS_ASSET,
        kind=MEMBER_POINTS,
    )


def member_growth_account(member: Member) -> Account | None:
    return account_find(
        organisation_id=member.organisation_id,
        owner_type="member",
        owner_id=member.pk,
        asset=GROWTH_ASSET,
        kind=MEMBER_GROWTH,
    )


def points_balance(member: Member) -> int:
    """The member's points; negative when she owes points taken back after she spent them (S-22)."""
    account = member_points_account(member)
    return balance_of(account) if account is not None else 0


def points_lots(member: Member) -> QuerySet[PointsLot]:
    """The member's lots that still hold points, the first to expire first."""
    return PointsLot.objects.filter(member=member, remaining__gt=0).order_by("expires_on", "pk")


def points_expiring(member: Member, *, until: date) -> list[tuple[date, int]]:
    """(expiry date, points) of the member's open lots expiring on or before ``until``, soonest first.

    For the reminder of S-08: on 2026-08-01, ``until=2026-09-01`` gives ``[(2026-09-01, 300)]``.
    """
    rows = (
        points_lots(member)
        .filter(expires_on__lte=until)
        .values("expires_on")
        .annotate(points=Sum("remaining"))
        .order_by("expires_on")
    )
    return [(row["expires_on"], int(row["points"])) for row in rows]


def points_history(member: Member, *, limit: int | None = 50) -> list[HistoryLine]:
    """The member's points movements, newest first, each with the balance after it."""
    account = member_points_account(member)
    return account_history(account, limit=limit) if account is not None else []


def growth_balance(member: Member) -> int:
    """The member's growth value in fen (all time, net of refunds)."""
    account = member_growth_account(member)
    return balance_of(account) if account is not None else 0
