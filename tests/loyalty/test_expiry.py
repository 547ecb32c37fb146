"""The expiry job and its reminder (S-08, issue 4 section 4): set-based, in batches, idempotent, the yearly
clearing date, debt and merged members, the commands."""

from __future__ import annotations

from datetime import date
from io import StringIO

import pytest
from django.core.management import call_command

from meiye.core.errors import PermissionDenied
from meiye.ledger.models import Journal
from meiye.ledger.selectors import journal_entries
from meiye.ledger.verification import verify_ledger
from meiye.loyalty.models import LoyaltySettings, PointsLot, PointsLotUse
from meiye.loyalty.selectors import (
    clearing_date_before,
    clearing_date_next,
    expiry_settings,
    points_expiry_members,
    points_expiry_reminders_due,
    points_history,
)
from meiye.loyalty.services import (
    points_balance,
    points_expire_due,
    points_expiry_remind,
    points_restore,
    points_spend,
    points_take_back,
    verify_points_lots,
)
from meiye.members.services import member_merge
from meiye.notify.models import Message
from tests.ledger.support import ledger_state


@pytest.fixture
def job(cashier, org):
    return cashier.system(org)


def _s08_member(member, earn, cashier):
    earn(member, 1_000, date(2025, 3, 10))
    earn(member, 500, date(2025, 9, 1))
    points_spend(
        actor=cashier, member=member, points=1_200, reference_type="test.Bill", reference_id="B9", idempotency_key="s1"
    )


def _settings(org, **fields):
    LoyaltySettings.objects.update_or_create(organisation=org, defaults=fields)


def test_S08_end_to_end_through_the_jobs(member, earn, cashier, job, org):
    # given the S-08 member after her spend: 300 points left on the lot valid until 2026-09-01
    _s08_member(member, earn, cashier)

    # when the reminder runs on 2026-08-01 (31 days before), twice
    told = points_expiry_remind(actor=job, today=date(2026, 8, 1))
    again = points_expiry_remind(actor=job, today=date(2026, 8, 1))
    next_day = points_expiry_remind(actor=job, today=date(2026, 8, 2))

    # then one message says 300 points expire on 2026-09-01
    assert (told, again, next_day) == (1, 0, 0)
    [message] = Message.objects.filter(event="points.expiring")
    assert message.member_id == member.pk
    assert message.idempotency_key == f"points.expiring:{member.pk}:2026-09-01"
    assert "300" in message.body
    assert "2026年9月1日" in message.body or "2026-09-01" in message.body

    # the day before the reminder window nothing is due; on the last valid day nothing expires
    assert points_expiry_reminders_due(organisation_id=org.pk, today=date(2026, 7, 31)) == []
    assert points_expire_due(actor=job, today=date(2026, 9, 1)) == 0

    # when the job of 2026-09-02 runs twice
    expired = points_expire_due(actor=job, today=date(2026, 9, 2))
    before = ledger_state()
    twice = points_expire_due(actor=job, today=date(2026, 9, 2))

    # then the balance is 0 and the ledger shows one 300-point expiry to the breakage account
    assert (expired, twice) == (300, 0)
    assert ledger_state() == before
    assert points_balance(member) == 0
    expiry = Journal.objects.get(code="points.expire")
    assert expiry.idempotency_key == f"points.expire:{member.pk}:2026-09-02"
    assert sorted((e.account.kind, e.amount) for e in journal_entries(expiry)) == [
        ("points", -300),
        ("points_expired", 300),
    ]
    assert [line.amount for line in points_history(member)] == [-300, -1_200, 500, 1_000]
    assert list(PointsLotUse.objects.filter(journal=expiry).values_list("amount", flat=True)) == [300]
    assert list(PointsLot.objects.filter(member=member).values_list("remaining", flat=True)) == [0, 0]
    assert points_expiry_remind(actor=job, today=date(2026, 9, 2)) == 0
    assert verify_ledger() == []
    assert verify_points_lots() == []


def test_expiry_in_batches_across_many_members(make_member, store1, earn, job, org):
    # given 30 members with 1 or 2 due lots and one lot still valid each
    members = [make_member(store1) for _ in range(30)]
    for n, member in enumerate(members):
        earn(member, 100 + n, date(2025, 1, 5))
        if n % 3 == 0:
            earn(member, 10, date(2025, 2, 1))
        earn(member, 7, date(2025, 12, 1))
    due = points_expiry_members(organisation_id=org.pk, today=date(2026, 3, 1))
    ticks: list[int] = []

    # when the job runs in batches of 7 members
    expired = points_expire_due(actor=job, today=date(2026, 3, 1), batch_size=7, progress=ticks.append)

    # then every member's due lots expired, one journal each, the valid lots untouched
    assert due == sorted(m.pk for m in members)
    assert ticks == [7, 7, 7, 7, 2]
    assert expired == sum(100 + n for n in range(30)) + 10 * 10
    assert Journal.objects.filter(code="points.expire").count() == 30
    assert [points_balance(m) for m in members] == [7] * 30
    assert PointsLotUse.objects.filter(journal__code="points.expire").count() == 40
    assert points_expiry_members(organisation_id=org.pk, today=date(2026, 3, 1)) == []
    assert points_expire_due(actor=job, today=date(2026, 3, 1), batch_size=7) == 0
    assert verify_ledger() == []
    assert verify_points_lots() == []


def test_a_run_that_stopped_half_way_resumes(make_member, store1, earn, job, org):
    # given 5 members whose first 2 were expired by a run that then stopped
    members = [make_member(store1) for _ in range(5)]
    for member in members:
        earn(member, 50, date(2025, 1, 5))
    first = points_expire_due(actor=job, today=date(2026, 2, 1), member_ids=[m.pk for m in members[:2]])

    # when the job runs again the same day
    rest = points_expire_due(actor=job, today=date(2026, 2, 1), batch_size=2)

    # then the others expire, nobody twice
    assert (first, rest) == (100, 150)
    assert Journal.objects.filter(code="points.expire").count() == 5
    assert [points_balance(m) for m in members] == [0] * 5
    assert verify_points_lots() == []


def test_points_put_back_on_an_expired_lot_wait_for_the_next_day(member, earn, cashier, manager, actor_for, job):
    # given a lot partly spent, then expired by the job of 2026-02-01
    earn(member, 100, date(2025, 1, 5))
    spend = points_spend(
        actor=cashier, member=member, points=40, reference_type="t", reference_id="1", idempotency_key="s1"
    )
    assert points_expire_due(actor=job, today=date(2026, 2, 1)) == 60
    # when the spend is refunded the same day (its 40 points go back on the expired lot) and the job runs again
    points_restore(actor=actor_for(manager), spend_journal=spend, idempotency_key="refund:pts")
    assert points_balance(member) == 40
    before = ledger_state()
    again = points_expire_due(actor=job, today=date(2026, 2, 1))

    # then the same day expires nothing more (one journal per member and day); the next day's job takes the 40
    assert again == 0
    assert ledger_state() == before
    assert points_expire_due(actor=job, today=date(2026, 2, 2)) == 40
    assert points_balance(member) == 0
    assert Journal.objects.filter(code="points.expire").count() == 2
    assert verify_points_lots() == []


def test_a_member_in_debt_has_nothing_to_expire(member, earn, cashier, manager, actor_for, job):
    # given a member who spent her points, then had the earning taken back (balance -450)
    lot = earn(member, 450, date(2025, 1, 10))
    points_spend(actor=cashier, member=member, points=450, reference_type="t", reference_id="1", idempotency_key="s1")
    points_take_back(actor=actor_for(manager), earn_journal=Journal.objects.get(pk=lot.journal_id), idempotency_key="r")
    # and a later earning of 100 that only repaid part of the debt
    earn(member, 100, date(2025, 2, 1))

    # when the job runs after every lot's expiry
    expired = points_expire_due(actor=job, today=date(2026, 6, 1))

    # then nothing expires: the debt stands
    assert expired == 0
    assert points_balance(member) == -350
    assert not Journal.objects.filter(code="points.expire").exists()
    assert verify_points_lots() == []


def test_lots_of_a_merged_member_expire_on_the_survivor(make_member, store1, earn, hq_admin, actor_for, job):
    survivor, duplicate = make_member(store1), make_member(store1)
    earn(survivor, 100, date(2025, 6, 1))
    earn(duplicate, 300, date(2025, 1, 5))
    member_merge(actor=actor_for(hq_admin), survivor=survivor, merged=duplicate)

    expired = points_expire_due(actor=job, today=date(2026, 2, 1))

    assert expired == 300
    assert points_balance(survivor) == 100
    assert points_balance(duplicate) == 0
    expiry = Journal.objects.get(code="points.expire")
    assert expiry.idempotency_key == f"points.expire:{survivor.pk}:2026-02-01"
    assert verify_points_lots() == []


def test_yearly_clearing_date(member, earn, job, org):
    # given clearing on 31 December and lots of 12 months earned in 2025 and on 2026-01-02
    _settings(org, clearing_month=12, clearing_day=31)
    earn(member, 200, date(2025, 5, 1))
    earn(member, 50, date(2025, 12, 30))
    earn(member, 30, date(2026, 1, 2))
    conf = expiry_settings(org.pk)
    assert clearing_date_before(conf, date(2026, 1, 1)) == date(2025, 12, 31)
    assert clearing_date_before(conf, date(2025, 12, 31)) == date(2024, 12, 31)
    assert clearing_date_next(conf, date(2025, 12, 2)) == date(2025, 12, 31)

    # the reminder of 2025-12-01 (31 days) names the clearing date for every lot earned before it
    assert points_expiry_reminders_due(organisation_id=org.pk, today=date(2025, 12, 30)) == [
        (member.pk, date(2025, 12, 31), 250)
    ]
    # the points are valid on the clearing day itself
    assert points_expire_due(actor=job, today=date(2025, 12, 31)) == 0

    # when the job of 2026-01-01 runs
    expired = points_expire_due(actor=job, today=date(2026, 1, 1))
    # then the lots earned before 31 December expired on it; the January lot stays
    assert expired == 250
    assert points_balance(member) == 30
    assert points_expire_due(actor=job, today=date(2026, 1, 3)) == 0
    assert points_expiry_reminders_due(organisation_id=org.pk, today=date(2026, 12, 1)) == [
        (member.pk, date(2026, 12, 31), 30)
    ]
    assert verify_ledger() == []
    assert verify_points_lots() == []


def test_clearing_on_29_february_is_the_28th_in_other_years(org):
    _settings(org, clearing_month=2, clearing_day=29)
    conf = expiry_settings(org.pk)
    assert clearing_date_before(conf, date(2027, 3, 1)) == date(2027, 2, 28)
    assert clearing_date_next(conf, date(2028, 1, 1)) == date(2028, 2, 29)


def test_reminder_groups_by_member_and_date_and_can_be_switched_off(make_member, store1, earn, job, org):
    a, b = make_member(store1), make_member(store1)
    earn(a, 100, date(2025, 9, 10))
    earn(a, 20, date(2025, 9, 10))
    earn(a, 5, date(2025, 9, 20))
    earn(b, 70, date(2025, 10, 1))
    earn(b, 9, date(2025, 12, 1))  # beyond the window

    assert points_expiry_reminders_due(organisation_id=org.pk, today=date(2026, 9, 1)) == [
        (a.pk, date(2026, 9, 10), 120),
        (a.pk, date(2026, 9, 20), 5),
        (b.pk, date(2026, 10, 1), 70),
    ]
    _settings(org, expiry_reminder_days=0)
    assert points_expiry_remind(actor=job, today=date(2026, 9, 1)) == 0
    assert not Message.objects.exists()
    _settings(org, expiry_reminder_days=10)
    assert points_expiry_remind(actor=job, today=date(2026, 9, 1)) == 1
    assert list(Message.objects.values_list("idempotency_key", flat=True)) == [f"points.expiring:{a.pk}:2026-09-10"]


def test_the_jobs_need_a_system_actor_or_the_adjust_permission(member, earn, cashier):
    earn(member, 100, date(2025, 1, 5))
    before = ledger_state()
    with pytest.raises(PermissionDenied):
        points_expire_due(actor=cashier, today=date(2026, 2, 1))
    with pytest.raises(PermissionDenied):
        points_expiry_remind(actor=cashier, today=date(2026, 1, 1))
    assert ledger_state() == before
    assert points_balance(member) == 100
    assert not Message.objects.exists()


def test_the_commands(member, earn, cashier, org):
    _s08_member(member, earn, cashier)
    out = StringIO()

    call_command("points_expiry_remind", "--date", "2026-08-01", stdout=out, stderr=StringIO())
    call_command("points_expire", "--date", "2026-09-02", "--batch", "1", stdout=out, stderr=StringIO())
    call_command("points_expire", "--date", "2026-09-02", stdout=out, stderr=StringIO())

    assert f"points_expiry_remind {org.code} 2026-08-01: 1 told" in out.getvalue()
    assert f"points_expire {org.code} 2026-09-02: 300 points of 1 members" in out.getvalue()
    assert f"points_expire {org.code} 2026-09-02: 0 points of 0 members" in out.getvalue()
    assert points_balance(member) == 0
