"""The maintained last visit per member (``MemberVisit``) and the dormant scan that reads it (S-12 at scale)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.apps import apps
from django.core.cache import cache
from django.db import connection

from meiye.core.money import Money
from meiye.ledger.models import Journal
from meiye.loyalty.models import MemberVisit, VisitScan
from meiye.loyalty.rules import dormant_due, member_visits_refresh, rules_settings_save
from meiye.members.models import MemberStatus
from meiye.org.context import Actor
from meiye.sales.services import LineInput, TenderInput, bill_checkout, bill_refund
from tests.reference import reference_categories, reference_items

ZONE = ZoneInfo("Asia/Shanghai")
backfill = importlib.import_module("meiye.loyalty.migrations.0007_backfill_member_last_visit").backfill


@pytest.fixture(autouse=True)
def _fresh_rules_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def hq(hq_admin, actor_for, store1) -> Actor:
    return actor_for(hq_admin, store1)


@pytest.fixture
def system(org, store1) -> Actor:
    return Actor.system(org, store1)


@pytest.fixture
def care(hq) -> Any:
    return reference_items(hq, reference_categories(hq))["care"]


@pytest.fixture
def dormant_90(hq) -> None:
    rules_settings_save(actor=hq, dormant_days=90, dormant_points=300)


def _at(day: date, hour: int = 12) -> Any:
    return mock.patch("django.utils.timezone.now", return_value=datetime.combine(day, time(hour), tzinfo=ZONE))


def _pay(cashier: Actor, member: Any, item: Any, day: date, key: str) -> Any:
    with _at(day):
        return bill_checkout(
            actor=cashier,
            member=member,
            lines=[LineInput(item_id=item.pk)],
            tenders=[TenderInput(kind="wechat", amount=Money(item.price_fen))],
            idempotency_key=key,
        )


def _visits() -> dict[int, date]:
    return {m: at.astimezone(ZONE).date() for m, at in MemberVisit.objects.values_list("member_id", "last_visit_at")}


def test_refresh_keeps_the_latest_bill_per_member_and_ignores_refunds(
    cashier, system, care, make_member, store1, manager, actor_for, org
):
    # given: two members; one visits twice, the second bill is refunded in full
    with _at(date(2026, 1, 1)):
        ann, bea = make_member(store1), make_member(store1)
    _pay(cashier, ann, care, date(2026, 3, 1), "a-1")
    second = _pay(cashier, ann, care, date(2026, 4, 1), "a-2")
    with _at(date(2026, 4, 1), 13):
        bill_refund(actor=actor_for(manager, store1), bill=second, reason="顾客不满意", idempotency_key="r-1")

    # when
    moved = member_visits_refresh(organisation_id=org.pk)

    # then: the refund's journals are no visit, the refunded bill still is; Bea never visited
    assert moved == 1
    assert _visits() == {ann.pk: date(2026, 4, 1)}
    assert bea.pk not in _visits()
    # a second refresh moves nothing
    assert member_visits_refresh(organisation_id=org.pk) == 0
    assert _visits() == {ann.pk: date(2026, 4, 1)}


def test_refresh_reads_only_new_journals_and_rereads_the_last_hour(cashier, care, make_member, store1, org):
    with _at(date(2026, 1, 1)):
        ann = make_member(store1)
    # given: a bill two hours ago and one just now (real time)
    with mock.patch("django.utils.timezone.now", return_value=datetime.now(ZONE) - timedelta(hours=2)):
        bill_checkout(
            actor=cashier,
            member=ann,
            lines=[LineInput(item_id=care.pk)],
            tenders=[TenderInput(kind="cash", amount=Money(care.price_fen))],
            idempotency_key="old",
        )
    old_ids = set(Journal.objects.filter(reference_type="sales.Bill").values_list("pk", flat=True))
    bill_checkout(
        actor=cashier,
        member=ann,
        lines=[LineInput(item_id=care.pk)],
        tenders=[TenderInput(kind="cash", amount=Money(care.price_fen))],
        idempotency_key="new",
    )

    # when
    member_visits_refresh(organisation_id=org.pk)

    # then: the scan moved past the old bill's journals but not past the last hour's
    scan = VisitScan.objects.get(organisation_id=org.pk)
    assert scan.journal_id >= max(old_ids)
    assert scan.journal_id < Journal.objects.filter(reference_type="sales.Bill").latest("pk").pk
    assert ann.pk in _visits()


def test_dormant_scan_reads_the_visits_and_joining_dates(
    cashier, system, care, dormant_90, make_member, store1, org, django_assert_max_num_queries
):
    # given: one visited on 03-01, one joined on 01-01 and never came, one visited recently, one inactive
    with _at(date(2026, 1, 1)):
        visited, never, recent, gone = (make_member(store1) for _ in range(4))
    gone.status = MemberStatus.INACTIVE
    gone.save(update_fields=["status"])
    _pay(cashier, visited, care, date(2026, 3, 1), "v")
    _pay(cashier, recent, care, date(2026, 5, 1), "r")

    # when / then: on 05-30 the 03-01 visitor is dormant (90 days) and so is the never-visited one
    with django_assert_max_num_queries(16):  # the first refresh also creates the organisation's scan row
        due = dormant_due(actor=system, on=date(2026, 5, 30))
    assert due == sorted([(visited.pk, date(2026, 3, 1)), (never.pk, date(2026, 1, 1))])
    # the cost does not grow with the members: the scan is the same few statements
    for _ in range(5):
        make_member(store1)
    with django_assert_max_num_queries(8):
        dormant_due(actor=system, on=date(2026, 5, 30))


def test_the_migration_backfills_visits_and_the_scan_position(cashier, care, make_member, store1, org):
    with _at(date(2026, 1, 1)):
        ann = make_member(store1)
    _pay(cashier, ann, care, date(2026, 3, 1), "a-1")
    _pay(cashier, ann, care, date(2026, 3, 5), "a-2")
    MemberVisit.objects.all().delete()
    VisitScan.objects.all().delete()

    # when
    backfill(apps, SimpleNamespace(connection=connection))

    # then
    assert _visits() == {ann.pk: date(2026, 3, 5)}
    assert VisitScan.objects.get(organisation_id=org.pk).journal_id == Journal.objects.latest("pk").pk
    assert member_visits_refresh(organisation_id=org.pk) == 0
