"""A few weeks of realistic front-desk history for the demo chain, posted through the real services.

Every recharge, bill and refund goes through ``wallet_recharge``, ``bill_checkout`` and ``bill_refund``
exactly as the front desk would, with the clock set to the simulated moment (``django.utils.timezone.now``
is patched for the duration of each call), so the ledger, points lots and growth value are the real
thing and ``ledger_verify`` stays clean. Deterministic (seeded random); skipped when the organisation
already has bills, so running it again writes nothing.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from unittest import mock
from zoneinfo import ZoneInfo

from django.utils import timezone

from meiye.catalog.models import Category, Item
from meiye.catalog.services import category_save, item_save
from meiye.core.errors import ApplicationError
from meiye.core.money import Money
from meiye.loyalty.services import earning_rate_set
from meiye.members.models import Member, MemberStatus
from meiye.org.context import Actor
from meiye.org.models import Organisation, Staff, Store
from meiye.org.roles import Position
from meiye.sales.models import Bill
from meiye.sales.services import LineInput, TenderInput, bill_checkout, bill_refund
from meiye.wallet.selectors import wallet_balance
from meiye.wallet.services import wallet_recharge

# (category code, name, kind, earning category, commission category, items)
# items: (code, name, price in yuan, minutes for services, barcode for products)
CATALOGUE: list[tuple[str, str, str, str, str, list[tuple[str, str, str, int | None, str]]]] = [
    (
        "basic-care",
        "基础护理",
        "service",
        "basic_care",
        "service",
        [
            ("facial-basic", "基础面部护理", "298.00", 60, ""),
            ("hydra", "水光补水", "680.00", 75, ""),
            ("deep-cleanse", "深层清洁", "198.00", 45, ""),
            ("eye-care", "眼部护理", "268.00", 45, ""),
        ],
    ),
    (
        "anti-ageing",
        "抗衰",
        "service",
        "anti_ageing",
        "service",
        [
            ("rf-lift", "射频紧致提拉", "1280.00", 90, ""),
            ("collagen", "胶原蛋白焕肤", "880.00", 75, ""),
        ],
    ),
    (
        "hair",
        "美发",
        "service",
        "hair",
        "service",
        [
            ("cut", "精剪造型", "168.00", 45, ""),
            ("colour", "染发", "480.00", 120, ""),
        ],
    ),
    (
        "retail",
        "零售产品",
        "product",
        "retail",
        "product",
        [
            ("serum", "修护精华液", "260.00", None, "6901234567892"),
            ("mask-box", "补水面膜（5片装）", "128.00", None, "6901234567908"),
            ("sunscreen", "清透防晒乳", "168.00", None, "6901234567915"),
        ],
    ),
]
# The reference configuration of shared/SCENARIOS.md: points per 元 by earning category.
EARNING_RATES = {"basic_care": 1, "anti_ageing": 3, "retail": 2, "hair": 1}
RECHARGES = [("1000.00", "100.00"), ("2000.00", "200.00"), ("3000.00", "600.00"), ("5000.00", "1000.00")]
EXTERNAL_TENDERS = ["wechat", "wechat", "alipay", "card", "cash"]


@dataclass
class HistoryCounts:
    recharges: int = 0
    bills: int = 0
    refunds: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    skipped: bool = False


@contextmanager
def _clock(moment: datetime) -> Iterator[None]:
    with mock.patch.object(timezone, "now", return_value=moment):
        yield


def _catalogue(hq: Actor) -> list[Item]:
    items: list[Item] = []
    for code, name, kind, earning, commission, entries in CATALOGUE:
        category: Category = category_save(
            actor=hq, code=code, name=name, kind=kind, earning_category=earning, commission_category=commission
        )
        for item_code, item_name, price, minutes, barcode in entries:
            items.append(
                item_save(
                    actor=hq,
                    code=item_code,
                    name=item_name,
                    category=category,
                    price=Money.parse(price),
                    duration_minutes=minutes,
                    barcode=barcode,
                )
            )
    for category_code, rate in EARNING_RATES.items():
        earning_rate_set(actor=hq, earning_category=category_code, points_per_yuan=rate)
    return items


def _staff(store: Store, *positions: str) -> list[Staff]:
    return list(Staff.objects.filter(stores=store, position__in=positions, is_active=True).order_by("id"))


def seed_sales_history(*, organisation: Organisation, days: int, bills_per_day: int = 4) -> HistoryCounts:
    counts = HistoryCounts()
    admin = Staff.objects.filter(organisation=organisation, position=Position.HQ_ADMIN).order_by("id").first()
    if admin is None:
        raise RuntimeError("seed the demo members and staff first")
    hq = Actor(staff=admin, organisation=organisation)
    items = _catalogue(hq)
    if days <= 0 or Bill.objects.filter(organisation=organisation).exists():
        counts.skipped = True
        return counts
    rng = random.Random(20261124)
    today = timezone.localdate()
    for store in organisation.stores.filter(is_active=True).order_by("id"):
        zone = ZoneInfo(store.time_zone)
        desk = _staff(store, Position.RECEPTIONIST) or _staff(store, Position.STORE_MANAGER)
        managers = _staff(store, Position.STORE_MANAGER) or [admin]
        hands = _staff(store, Position.BEAUTICIAN, Position.SENIOR_BEAUTICIAN) or desk
        members = list(
            Member.objects.filter(home_store=store, status=MemberStatus.ACTIVE)
            .order_by("id")
            .values_list("id", flat=True)[:300]
        )
        if not desk or not members:
            continue
        for offset in range(days, 0, -1):
            day = today - timedelta(days=offset)
            cashier = Actor(staff=rng.choice(desk), organisation=organisation, store=store)
            if rng.random() < 0.6:
                member = Member.objects.get(pk=rng.choice(members))
                amount, bonus = rng.choice(RECHARGES)
                manager = Actor(staff=rng.choice(managers), organisation=organisation, store=store)
                with _clock(_at(day, 11, rng, zone)):
                    wallet_recharge(
                        actor=manager,
                        member=member,
                        amount=Money.parse(amount),
                        bonus=Money.parse(bonus),
                        tender=rng.choice(["wechat", "alipay", "card"]),
                        external_ref=f"demo-{rng.randrange(10**8)}",
                        idempotency_key=f"demo:{store.code}:{day}:recharge",
                    )
                counts.recharges += 1
            for n in range(bills_per_day):
                moment = _at(day, 12 + n * 2, rng, zone)
                customer = Member.objects.get(pk=rng.choice(members)) if rng.random() < 0.85 else None
                chosen = rng.sample(items, rng.choice([1, 1, 2, 2, 3]))
                total = sum(i.price_fen for i in chosen)
                tenders = _tenders(customer, total, rng)
                lines = [
                    LineInput(item_id=i.pk, performed_by_id=rng.choice(hands).pk if i.kind == "service" else None)
                    for i in chosen
                ]
                key = f"demo:{store.code}:{day}:bill{n}"
                try:
                    with _clock(moment):
                        bill = bill_checkout(
                            actor=cashier, member=customer, lines=lines, tenders=tenders, idempotency_key=key
                        )
                except ApplicationError as error:
                    counts.refused[error.code] = counts.refused.get(error.code, 0) + 1
                    continue
                counts.bills += 1
                if rng.random() < 0.04:
                    manager = Actor(staff=rng.choice(managers), organisation=organisation, store=store)
                    with _clock(moment + timedelta(minutes=40)):
                        bill_refund(
                            actor=manager,
                            bill=bill,
                            reason="顾客对效果不满意，全额退款 / customer unhappy, full refund",
                            idempotency_key=f"{key}:refund",
                        )
                    counts.refunds += 1
    return counts


def _at(day: date, hour: int, rng: random.Random, zone: ZoneInfo) -> datetime:
    local = datetime.combine(day, time(min(hour, 20), rng.randrange(60), rng.randrange(60)), tzinfo=zone)
    return local.astimezone(ZoneInfo("UTC"))


def _tenders(member: Member | None, total_fen: int, rng: random.Random) -> list[TenderInput]:
    """Stored value when the member has enough (sometimes split with WeChat); otherwise an external tender."""
    external = rng.choice(EXTERNAL_TENDERS)
    if member is not None:
        available = wallet_balance(member).total.fen
        if available >= total_fen:
            if total_fen >= 20000 and rng.random() < 0.3:
                part = (total_fen // 2) // 100 * 100
                return [
                    TenderInput(kind="stored_value", amount=Money(part)),
                    TenderInput(
                        kind="wechat", amount=Money(total_fen - part), external_ref=f"wx{rng.randrange(10**10)}"
                    ),
                ]
            return [TenderInput(kind="stored_value", amount=Money(total_fen))]
    if external == "cash":
        received = -(-total_fen // 10000) * 10000  # the next 100 元 note
        return [TenderInput(kind="cash", amount=Money(total_fen), received=Money(received))]
    return [TenderInput(kind=external, amount=Money(total_fen), external_ref=f"{external}-{rng.randrange(10**10)}")]
