"""Fixtures and helpers for the checkout, bills, stored-value and catalogue pages (and their browser test).

Test modules take them with ``from tests.frontdesk.sales_fixtures import *``. The catalogue follows the
reference configuration of shared/SCENARIOS.md: basic care / anti-ageing / retail earn 1 / 3 / 2 points
per 元; 基础护理 costs 600.00, 抗衰紧致 1,000.00 and 精华液 (retail, barcode 6901234567890) 250.00.
"""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Callable
from typing import Any

import pytest

from meiye.audit.models import AuditLog
from meiye.catalog.models import Item
from meiye.core.money import Money
from meiye.ledger.models import Entry, Journal
from meiye.loyalty.selectors import points_balance
from meiye.loyalty.services import points_earn
from meiye.members.models import Member
from meiye.org.context import Actor
from meiye.org.models import Staff, Store
from meiye.org.services import approval_pin_set
from meiye.sales.models import Bill, BillLine, Refund, Tender
from meiye.sales.services import TenderInput, bill_add_line, bill_complete, bill_open
from meiye.wallet.models import Recharge
from meiye.wallet.selectors import wallet_balance
from meiye.wallet.services import wallet_recharge
from tests.reference import SERUM_BARCODE, reference_categories, reference_items

MANAGER_PIN = "2468"

__all__ = [
    "MANAGER_PIN",
    "SERUM_BARCODE",
    "balances",
    "catalogue",
    "completed_bill",
    "field_errors",
    "manager_pin",
    "sales_state",
    "store2_bill",
    "vip",
]


# --- Helpers ------------------------------------------------------------------------------------------------------


def balances(member: Member) -> dict[str, int]:
    """The member's principal and bonus (fen) and points."""
    wallet = wallet_balance(member)
    return {"principal": wallet.principal.fen, "bonus": wallet.bonus.fen, "points": points_balance(member)}


def sales_state() -> dict[str, Any]:
    """What a refused operation must leave unchanged."""
    return {
        "bills": list(Bill.objects.values_list("pk", "status", "payable_total_fen").order_by("pk")),
        "lines": list(
            BillLine.objects.values_list("pk", "quantity", "unit_price_fen", "refunded_quantity").order_by("pk")
        ),
        "tenders": Tender.objects.count(),
        "refunds": Refund.objects.count(),
        "recharges": Recharge.objects.count(),
        "journals": Journal.objects.count(),
        "entries": Entry.objects.count(),
        "audit": AuditLog.objects.count(),
    }


def field_errors(content: str, name: str) -> list[str]:
    """The error messages shown beside the field ``name`` (``<div … id="error-<name>">``)."""
    match = re.search(rf'<div class="[^"]*" id="error-{re.escape(name)}" role="alert">(.*?)</div>', content, re.S)
    if not match:
        return []
    return [html.unescape(e).strip() for e in re.findall(r"<p[^>]*>(.*?)</p>", match.group(1), re.S)]


# --- Fixtures -------------------------------------------------------------------------------------------------------


@pytest.fixture
def catalogue(hq_admin: Staff, store1: Store, actor_for: Callable[..., Actor]) -> dict[str, Item]:
    hq = actor_for(hq_admin, store1)
    items = reference_items(hq, reference_categories(hq))
    return {"facial": items["care"], "lifting": items["lifting"], "serum": items["serum"]}


@pytest.fixture
def manager_pin(manager: Staff) -> str:
    approval_pin_set(staff=manager, pin=MANAGER_PIN)
    return MANAGER_PIN


_keys = itertools.count(1)


@pytest.fixture
def vip(
    make_member: Callable[..., Member],
    store1: Store,
    receptionist: Staff,
    manager: Staff,
    actor_for: Callable[..., Actor],
) -> Member:
    """林小姐 of store 1: principal 1,000.00, bonus 200.00 and 12,000 points (as in S-05)."""
    member = make_member(store1, name="林小姐", phone="13812345678")
    cashier = actor_for(receptionist, store1)
    wallet_recharge(
        actor=actor_for(manager, store1),
        member=member,
        amount=Money.parse("1000.00"),
        bonus=Money.parse("200.00"),
        tender="wechat",
        idempotency_key=f"fixture-recharge-{next(_keys)}",
    )
    points_earn(
        actor=cashier,
        member=member,
        points=12_000,
        source_code="test.opening",
        reference_type="test",
        reference_id="opening",
        idempotency_key=f"fixture-points-{next(_keys)}",
    )
    return member


@pytest.fixture
def completed_bill(
    vip: Member, catalogue: dict[str, Item], receptionist: Staff, store1: Store, actor_for: Callable[..., Actor]
) -> Bill:
    """林小姐's bill: 基础护理 600.00 + 精华液 250.00, paid 500.00 stored value and 350.00 cash."""
    cashier = actor_for(receptionist, store1)
    bill = bill_open(actor=cashier, member=vip)
    bill_add_line(actor=cashier, bill=bill, item=catalogue["facial"])
    bill_add_line(actor=cashier, bill=bill, item=catalogue["serum"])
    return bill_complete(
        actor=cashier,
        bill=Bill.objects.get(pk=bill.pk),
        tenders=[
            TenderInput(kind="stored_value", amount=Money.parse("500.00")),
            TenderInput(kind="cash", amount=Money.parse("350.00"), received=Money.parse("400.00")),
        ],
        idempotency_key=f"fixture-bill-{next(_keys)}",
    )


@pytest.fixture
def store2_bill(
    make_member: Callable[..., Member],
    store2: Store,
    receptionist2: Staff,
    catalogue: dict[str, Item],
    actor_for: Callable[..., Actor],
) -> Bill:
    """A completed cash bill of store 2 (徐汇会员), which store-1 staff must not reach."""
    member = make_member(store2, name="徐汇会员", phone="13700000002")
    cashier = actor_for(receptionist2, store2)
    bill = bill_open(actor=cashier, member=member)
    bill_add_line(actor=cashier, bill=bill, item=catalogue["facial"])
    return bill_complete(
        actor=cashier,
        bill=Bill.objects.get(pk=bill.pk),
        tenders=[TenderInput(kind="cash", amount=Money.parse("600.00"))],
        idempotency_key=f"fixture-store2-{next(_keys)}",
    )
