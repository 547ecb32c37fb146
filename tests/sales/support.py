"""Plain helpers for the sales tests (fixtures are in conftest.py)."""

from __future__ import annotations

from typing import Any

from meiye.audit.models import AuditLog
from meiye.loyalty.selectors import growth_balance, points_balance
from meiye.members.models import Member
from meiye.sales.models import Bill, BillLine, Refund, RefundLine, RefundTender, Tender
from meiye.wallet.selectors import wallet_balance
from tests.ledger.support import ledger_state


def balances(member: Member) -> dict[str, int]:
    """The member's principal and bonus (fen), points and growth (fen)."""
    wallet = wallet_balance(member)
    return {
        "principal": wallet.principal.fen,
        "bonus": wallet.bonus.fen,
        "points": points_balance(member),
        "growth": growth_balance(member),
    }


def sales_state() -> dict[str, Any]:
    """Everything a refused sales operation must leave unchanged (ledger, sales rows, audit log)."""
    return {
        **ledger_state(),
        "bills": list(Bill.objects.values_list("pk", "status", "payable_total_fen").order_by("pk")),
        "lines": list(BillLine.objects.values_list("pk", "refunded_quantity", "unit_price_fen").order_by("pk")),
        "tenders": Tender.objects.count(),
        "refunds": Refund.objects.count(),
        "refund_lines": RefundLine.objects.count(),
        "refund_tenders": RefundTender.objects.count(),
        "audit": AuditLog.objects.count(),
    }
