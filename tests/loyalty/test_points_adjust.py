"""Manual points adjustment (issue 4 §2 anti-fraud): needs money.adjust and a reason, is audited, idempotent;
a credit is a lot through the earning path, a debit comes off the lots expiring first and never below zero."""

from __future__ import annotations

from datetime import date

import pytest

from meiye.audit.models import AuditLog
from meiye.core.errors import ApplicationError, Conflict, NotFound, PermissionDenied, ValidationFailed
from meiye.ledger.selectors import journal_entries
from meiye.ledger.verification import verify_ledger
from meiye.loyalty.models import PointsLot, PointsLotUse
from meiye.loyalty.services import (
    points_adjust,
    points_balance,
    points_spend,
    points_take_back,
    verify_points_lots,
)
from meiye.org.models import Organisation
from tests.factories import StaffFactory
from tests.ledger.support import ledger_state


@pytest.fixture
def boss(manager, store1, actor_for):
    return actor_for(manager, store1)


def test_a_credit_is_a_lot_from_the_earning_path(boss, member, store1):
    journal = points_adjust(
        actor=boss, member=member, points=300, reason="补录漏积分 missed points", idempotency_key="a1"
    )

    assert journal.code == "points.adjust"
    assert journal.memo == "补录漏积分 missed points"
    assert sorted(e.amount for e in journal_entries(journal)) == [-300, 300]
    lot = PointsLot.objects.get(journal=journal)
    assert (lot.source_code, lot.amount, lot.remaining) == ("adjust", 300, 300)
    assert lot.expires_on.year == lot.earned_on.year + 1  # the organisation's 12 months
    assert points_balance(member) == 300
    assert verify_ledger() == []
    assert verify_points_lots() == []


def test_a_debit_comes_off_the_lots_expiring_first(boss, member, earn):
    early = earn(member, 200, date(2026, 1, 5))
    late = earn(member, 500, date(2026, 6, 5))

    journal = points_adjust(actor=boss, member=member, points=-250, reason="重复积分 duplicate", idempotency_key="d1")

    assert list(PointsLotUse.objects.filter(journal=journal).order_by("pk").values_list("lot_id", "amount")) == [
        (early.pk, 200),
        (late.pk, 50),
    ]
    assert points_balance(member) == 450
    assert verify_ledger() == []
    assert verify_points_lots() == []


def test_a_debit_below_zero_is_refused_and_nothing_changes(boss, member, earn):
    earn(member, 200, date(2026, 1, 5))
    before = ledger_state()
    audits = AuditLog.objects.count()

    with pytest.raises(ApplicationError) as refused:
        points_adjust(actor=boss, member=member, points=-201, reason="扣减", idempotency_key="d1")

    assert refused.value.code == "points.insufficient"
    assert refused.value.field == "points"
    assert ledger_state() == before
    assert AuditLog.objects.count() == audits
    assert points_balance(member) == 200


def test_a_credit_to_a_member_in_debt_repays_it_first(boss, cashier, member, earn):
    lot = earn(member, 300, date(2026, 6, 1))
    points_spend(actor=cashier, member=member, points=300, reference_type="t", reference_id="1", idempotency_key="s")
    points_take_back(actor=cashier, earn_journal=lot.journal, idempotency_key="tb")
    assert points_balance(member) == -300

    journal = points_adjust(actor=boss, member=member, points=500, reason="补偿 goodwill", idempotency_key="a1")

    assert PointsLot.objects.get(journal=journal).remaining == 200
    assert points_balance(member) == 200
    assert verify_points_lots() == []


def test_the_adjustment_is_audited_with_the_reason(boss, member, manager):
    journal = points_adjust(actor=boss, member=member, points=120, reason="活动补发 event", idempotency_key="a1")

    log = AuditLog.objects.get(action="loyalty.points_adjust")
    assert (log.object_type, log.object_id, log.staff_id) == ("members.Member", str(member.pk), manager.pk)
    assert log.detail == {"points": 120, "reason": "活动补发 event", "journal": journal.pk, "balance_before": 0}


def test_a_reason_is_required(boss, member):
    before = ledger_state()
    for reason in ("", "   ", "x" * 201):
        with pytest.raises(ValidationFailed) as refused:
            points_adjust(actor=boss, member=member, points=100, reason=reason, idempotency_key="a1")
        assert refused.value.code == "points.reason_required"
        assert refused.value.field == "reason"
        assert "调整原因" in refused.value.message_zh
        assert "reason" in refused.value.message_en
    assert ledger_state() == before
    assert not AuditLog.objects.filter(action="loyalty.points_adjust").exists()


def test_zero_points_is_refused(boss, member):
    with pytest.raises(ValidationFailed) as refused:
        points_adjust(actor=boss, member=member, points=0, reason="x", idempotency_key="a1")
    assert (refused.value.code, refused.value.field) == ("points.invalid_amount", "points")


def test_the_permission_is_required(cashier, member, actor_for, beautician, store1):
    before = ledger_state()
    for actor in (cashier, actor_for(beautician, store1)):
        with pytest.raises(PermissionDenied):
            points_adjust(actor=actor, member=member, points=100, reason="想加 wants it", idempotency_key="a1")
    assert ledger_state() == before
    assert not AuditLog.objects.filter(action="loyalty.points_adjust").exists()


def test_a_member_of_another_organisation_is_not_found(member, actor_for):
    other = Organisation.objects.create(name="别家美业", code="other")
    stranger = StaffFactory(organisation=other, position="hq_admin", stores=[], username="stranger")

    with pytest.raises(NotFound):
        points_adjust(actor=actor_for(stranger), member=member, points=1, reason="x", idempotency_key="a1")


def test_a_replay_returns_the_first_journal_and_audits_once(boss, member):
    first = points_adjust(actor=boss, member=member, points=300, reason="补录", idempotency_key="a1")
    before = ledger_state()

    replay = points_adjust(actor=boss, member=member, points=300, reason="补录", idempotency_key="a1")

    assert replay.pk == first.pk
    assert ledger_state() == before
    assert PointsLot.objects.count() == 1
    assert AuditLog.objects.filter(action="loyalty.points_adjust").count() == 1

    with pytest.raises(Conflict) as conflict:
        points_adjust(actor=boss, member=member, points=301, reason="补录", idempotency_key="a1")
    assert conflict.value.code == "ledger.idempotency_conflict"
    assert ledger_state() == before
