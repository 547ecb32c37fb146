"""The prepaid liability report (预付卡负债表): what the business owes its customers at the end of a day.

For each store and a date (the end of that day in the store's own time zone), built from ledger entries up
to that moment, so a past date shows the past (later recharges, spending, expiries and refunds are left out):

- **stored value**: the balances of members' ``wallet_principal``, ``wallet_bonus`` and
  ``wallet_bonus_pending`` accounts (ADR 0003/0006), attributed to a store by the journal's ``store_id``
  (the store where the money came in or went out). A member who recharges in one store and spends in
  another lowers the second store's figure, which may then be negative; the organisation's total is exact.
  Journals without a store (system jobs, e.g. a bonus instalment released by the nightly job with no store)
  form a row of their own, shown to those who see every store;
- **packages** (次卡/套餐): the member's sessions left on each counted item (asset ``SES:<item id>``, member
  ``package_sessions``) at the item's value ``share − floor(share × (count − left) / count)`` (ADR 0006; with
  no session expired or refunded, ``count − left`` is ``used``, the refund formula's own number), attributed
  to the package's selling store (``MemberPackage.store``). A time card (no count) has no sessions in the
  ledger: it is valued by days as the refund is (``share − floor(share × days elapsed / days valid)``), while
  its package was not yet refunded, transferred (from the moment of the transfer, as for a refund) or
  expired on the date; while its package is frozen it is valued as of the day it was frozen;
- **gift cards** (礼品卡): the balances of ``giftcard`` accounts (kind ``gift_card``) by the store that sold
  the card.

Queries: the stores, then per distinct end-of-day moment (one unless stores are in different time zones)
four aggregate queries — stored value, sessions, package items, gift cards.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import CharField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from meiye.giftcards.models import GiftCard
from meiye.giftcards.selectors import CARD_KIND, CARD_OWNER
from meiye.ledger.models import Entry, Journal
from meiye.org.context import Actor
from meiye.org.models import Store
from meiye.org.roles import Perm
from meiye.org.selectors import store_get, stores_visible
from meiye.packages.models import AdjustmentKind, MemberPackageItem, PackageAdjustment, PackageStatus
from meiye.wallet.selectors import BONUS, PENDING, PRINCIPAL

MEMBER_OWNER = "member"
SESSIONS_KIND = "package_sessions"  # meiye.packages.services.MEMBER_KIND
CNY = "CNY"


@dataclass(frozen=True)
class LiabilityRow:
    """One store's (or the total's) outstanding prepaid value, in fen; ``sessions`` is a count."""

    store_id: int | None
    store_name: str
    principal_fen: int = 0
    bonus_fen: int = 0
    pending_bonus_fen: int = 0
    sessions: int = 0
    package_fen: int = 0
    gift_card_fen: int = 0

    @property
    def stored_value_fen(self) -> int:
        return self.principal_fen + self.bonus_fen + self.pending_bonus_fen

    @property
    def total_fen(self) -> int:
        return self.stored_value_fen + self.package_fen + self.gift_card_fen

    def plus(self, other: LiabilityRow) -> LiabilityRow:
        return replace(
            self,
            principal_fen=self.principal_fen + other.principal_fen,
            bonus_fen=self.bonus_fen + other.bonus_fen,
            pending_bonus_fen=self.pending_bonus_fen + other.pending_bonus_fen,
            sessions=self.sessions + other.sessions,
            package_fen=self.package_fen + other.package_fen,
            gift_card_fen=self.gift_card_fen + other.gift_card_fen,
        )


@dataclass(frozen=True)
class LiabilityReport:
    on: date
    rows: list[LiabilityRow]
    totals: LiabilityRow
    # The moment each row was cut at (the end of ``on`` in the store's zone), for the page and the CSV.
    cutoffs: dict[int | None, datetime] = field(default_factory=dict)


# The CSV columns: (header, how to read a row). Amounts in yuan with two decimals, sessions as counts.
CSV_COLUMNS: list[tuple[str, str]] = [
    ("门店 Store", "store_name"),
    ("储值本金 Principal", "principal_fen"),
    ("赠送金 Bonus", "bonus_fen"),
    ("待到账赠送金 Pending bonus", "pending_bonus_fen"),
    ("储值小计 Stored value", "stored_value_fen"),
    ("剩余次数 Sessions left", "sessions"),
    ("次卡/套餐价值 Packages", "package_fen"),
    ("礼品卡余额 Gift cards", "gift_card_fen"),
    ("合计 Total", "total_fen"),
]


def end_of_day(on: date, zone_name: str) -> datetime:
    """The first moment after ``on`` in the zone: entries strictly before it are counted."""
    return datetime.combine(on + timedelta(days=1), time.min, tzinfo=ZoneInfo(zone_name))


def prepaid_liability(actor: Actor, *, on: date | None = None, store: Store | int | None = None) -> LiabilityReport:
    """The report for the stores the actor may see (``prepaid.report``), or for one of them; ``on`` defaults
    to today in the first store's zone. A store one may not see is ``store.not_found``."""
    actor.require(Perm.PREPAID_REPORT)
    if store is not None:
        stores = [store_get(actor, store.pk if isinstance(store, Store) else store)]
    else:
        stores = list(stores_visible(actor).order_by("id"))
    if on is None:
        zone = stores[0].time_zone if stores else settings.TIME_ZONE
        on = timezone.localdate(timezone=ZoneInfo(zone))
    sees_all = actor.staff is None or actor.staff.sees_all_stores
    unattributed = store is None and sees_all

    # Group the stores by their end-of-day moment: one set of queries per distinct moment.
    buckets: dict[datetime, list[int]] = defaultdict(list)
    cutoffs: dict[int | None, datetime] = {}
    for s in stores:
        cut = end_of_day(on, s.time_zone)
        buckets[cut].append(s.pk)
        cutoffs[s.pk] = cut
    null_cut = end_of_day(on, settings.TIME_ZONE)
    if unattributed:
        cutoffs[None] = null_cut

    values: dict[int | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    organisation_id = actor.organisation.pk
    for cut, ids in buckets.items():
        include_null = unattributed and cut == null_cut
        _stored_value(values, organisation_id, cut, ids, include_null=include_null)
        _packages(values, organisation_id, cut, on, ids)
        _gift_cards(values, organisation_id, cut, ids)
    if unattributed and null_cut not in buckets:
        _stored_value(values, organisation_id, null_cut, [], include_null=True)

    rows = [_row(s.pk, s.name, values.get(s.pk, {})) for s in stores]
    if unattributed and any(values.get(None, {}).values()):
        rows.append(_row(None, "未归属门店 No store", values[None]))
    totals = LiabilityRow(store_id=None, store_name="合计 Total")
    for row in rows:
        totals = totals.plus(row)
    return LiabilityReport(on=on, rows=rows, totals=totals, cutoffs=cutoffs)


def liability_csv_rows(report: LiabilityReport) -> Iterable[list[str]]:
    """The report as CSV rows (a header, a row per store, the totals); amounts as "1234.50"."""
    yield ["日期 Date", report.on.isoformat()]
    yield [header for header, _ in CSV_COLUMNS]
    for row in [*report.rows, report.totals]:
        yield [_cell(row, attr) for _, attr in CSV_COLUMNS]


def _cell(row: LiabilityRow, attr: str) -> str:
    value = getattr(row, attr)
    if attr.endswith("_fen"):
        sign = "-" if value < 0 else ""
        return f"{sign}{abs(value) // 100}.{abs(value) % 100:02d}"
    return str(value)


def _row(store_id: int | None, name: str, v: dict[str, int]) -> LiabilityRow:
    return LiabilityRow(
        store_id=store_id,
        store_name=name,
        principal_fen=v.get(PRINCIPAL, 0),
        bonus_fen=v.get(BONUS, 0),
        pending_bonus_fen=v.get(PENDING, 0),
        sessions=v.get("sessions", 0),
        package_fen=v.get("package", 0),
        gift_card_fen=v.get("gift_card", 0),
    )


def _stored_value(
    values: dict[int | None, dict[str, int]],
    organisation_id: int,
    cut: datetime,
    store_ids: list[int],
    *,
    include_null: bool,
) -> None:
    where = Q(journal__store_id__in=store_ids)
    if include_null:
        where |= Q(journal__store_id__isnull=True)
    rows = (
        Entry.objects.filter(
            where,
            journal__organisation_id=organisation_id,
            journal__created_at__lt=cut,
            account__owner_type=MEMBER_OWNER,
            account__asset=CNY,
            account__kind__in=(PRINCIPAL, BONUS, PENDING),
        )
        .values("journal__store_id", "account__kind")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    for row in rows:
        values[row["journal__store_id"]][row["account__kind"]] += int(row["total"] or 0)


def _packages(
    values: dict[int | None, dict[str, int]], organisation_id: int, cut: datetime, on: date, store_ids: list[int]
) -> None:
    items = MemberPackageItem.objects.filter(
        member_package__organisation_id=organisation_id,
        member_package__store_id__in=store_ids,
        member_package__created_at__lt=cut,
    )
    assets = items.filter(count__isnull=False).annotate(
        ses_asset=Concat(Value("SES:"), Cast("pk", output_field=CharField()), output_field=CharField())
    )
    left: dict[str, int] = {
        row["account__asset"]: int(row["total"] or 0)
        for row in Entry.objects.filter(
            journal__organisation_id=organisation_id,
            journal__created_at__lt=cut,
            account__owner_type=MEMBER_OWNER,
            account__kind=SESSIONS_KIND,
            account__asset__in=Subquery(assets.values("ses_asset")),
        )
        .values("account__asset")
        .annotate(total=Sum("amount"))
        .order_by()
    }
    closing = Journal.objects.filter(pk=OuterRef("member_package__refund_journal_id")).values("created_at")[:1]
    handed_on = PackageAdjustment.objects.filter(
        member_package_id=OuterRef("member_package_id"), kind=AdjustmentKind.TRANSFER
    ).values("created_at")[:1]
    rows = items.annotate(refunded_at=Subquery(closing), transferred_at=Subquery(handed_on)).values(
        "pk",
        "count",
        "share_fen",
        "valid_from",
        "valid_until",
        "expired_on",
        "first_used_on",
        "from_first_use",
        "member_package__store_id",
        "member_package__status",
        "member_package__frozen_on",
        "refunded_at",
        "transferred_at",
    )
    for row in rows:
        store_id = row["member_package__store_id"]
        if row["count"] is not None:
            remaining = left.get(f"SES:{row['pk']}", 0)
            if remaining <= 0:
                continue
            count = int(row["count"])
            share = int(row["share_fen"])
            values[store_id]["sessions"] += remaining
            values[store_id]["package"] += share - (share * (count - remaining)) // count
        else:
            values[store_id]["package"] += _time_card_value(row, cut, on)


def _time_card_value(row: Mapping[str, Any], cut: datetime, on: date) -> int:
    """A time card item's value on ``on`` (days elapsed), 0 once it was closed before the cut."""
    status = row["member_package__status"]
    if status == PackageStatus.REFUNDED and (row["refunded_at"] is None or row["refunded_at"] < cut):
        return 0
    if status == PackageStatus.TRANSFERRED and (row["transferred_at"] is None or row["transferred_at"] < cut):
        return 0  # its value moved to the new owner's package (a package of its own) at the transfer
    if row["expired_on"] is not None and row["expired_on"] <= on:
        return 0
    frozen_on = row["member_package__frozen_on"]
    if status == PackageStatus.FROZEN and frozen_on is not None:
        on = min(on, frozen_on)  # a freeze pauses the clock: valued as of the day it was frozen
    share = int(row["share_fen"])
    valid_until = row["valid_until"]
    started = row["first_used_on"] is None or row["first_used_on"] <= on
    if valid_until is None or (row["from_first_use"] and not started):
        return share  # counted from first use and not yet used: the whole share
    if valid_until < on:
        return 0
    valid_from = row["valid_from"]
    total = (valid_until - valid_from).days + 1
    elapsed = min(max((on - valid_from).days, 0), total)
    return share - (share * elapsed) // total


def _gift_cards(
    values: dict[int | None, dict[str, int]], organisation_id: int, cut: datetime, store_ids: list[int]
) -> None:
    card_store = GiftCard.objects.filter(pk=OuterRef("account__owner_id")).values("store_id")[:1]
    rows = (
        Entry.objects.filter(
            journal__organisation_id=organisation_id,
            journal__created_at__lt=cut,
            account__owner_type=CARD_OWNER,
            account__asset=CNY,
            account__kind=CARD_KIND,
            account__owner_id__in=GiftCard.objects.filter(
                organisation_id=organisation_id, store_id__in=store_ids
            ).values("pk"),
        )
        .annotate(card_store=Subquery(card_store))
        .values("card_store")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    for row in rows:
        values[row["card_store"]]["gift_card"] += int(row["total"] or 0)
