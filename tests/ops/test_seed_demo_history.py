"""seed_demo = the members part plus a few days of front-desk history through the real services."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from meiye.catalog.models import Item
from meiye.ledger.verification import verify_ledger
from meiye.loyalty.models import PointsLot
from meiye.sales.models import Bill, BillStatus, Refund
from meiye.wallet.models import Recharge


def test_seed_demo_adds_bills_recharges_and_refunds_and_the_ledger_is_clean(db):
    out = io.StringIO()
    call_command("seed_demo", members=40, days=3, stdout=out)

    bills = Bill.objects.filter(status=BillStatus.COMPLETED)
    assert Item.objects.filter(kind__in=["service", "product"]).count() == 11
    assert Item.objects.filter(kind="package").count() == 2  # the demo's count card and combo package
    assert bills.count() == 3 * 3 * 4  # 3 stores x 3 days x 4 bills, none refused
    assert Recharge.objects.count() >= 1
    assert PointsLot.objects.exists()
    assert "refused" not in out.getvalue()
    assert "储值与卡 Cards and prepaid: 2 recharge rules, 2 packages, 5 member cards, 2 gift cards" in out.getvalue()
    assert verify_ledger() == []

    counts = (Bill.objects.count(), Recharge.objects.count(), Refund.objects.count(), PointsLot.objects.count())
    call_command("seed_demo", members=40, days=3, stdout=io.StringIO())
    assert (Bill.objects.count(), Recharge.objects.count(), Refund.objects.count(), PointsLot.objects.count()) == counts


def test_seed_demo_history_is_backdated_to_the_days_before_today(db):
    call_command("seed_demo", members=20, days=2, quiet=True)
    from django.utils import timezone

    today = timezone.localdate()
    days = {timezone.localtime(b.completed_at).date() for b in Bill.objects.all()}
    assert days and all(0 < (today - d).days <= 2 for d in days)


@pytest.mark.parametrize("value", ["-1", "367", "abc"])
def test_bad_days_flag_names_the_flag(db, value):
    with pytest.raises(CommandError, match="--days"):
        call_command("seed_demo", "--days", value, stdout=io.StringIO())
    assert Bill.objects.count() == 0
