"""The one-shot checkout takes the store's bill number as its last write (the sequence row is held only to
COMMIT); the number the bill, its audit rows and its receipt show is the final one, and the numbers stay
consecutive."""

from __future__ import annotations

import re

from django.db import connection
from django.test.utils import CaptureQueriesContext

from meiye.audit.models import AuditLog
from meiye.core.money import Money
from meiye.ledger.models import Journal
from meiye.sales.models import Bill, BillSequence
from meiye.sales.services import PROVISIONAL_NUMBER, LineInput, TenderInput, bill_checkout


def _checkout(cashier, item, key: str) -> Bill:
    return bill_checkout(
        actor=cashier,
        lines=[LineInput(item_id=item.pk)],
        tenders=[TenderInput(kind="cash", amount=Money(60_000))],
        idempotency_key=key,
    )


def test_the_bill_number_is_taken_after_the_postings_and_shown_everywhere(cashier, care):
    first = _checkout(cashier, care, "first")
    with CaptureQueriesContext(connection) as ctx:
        second = _checkout(cashier, care, "second")

    # (on PostgreSQL the number is taken and written by one `WITH n AS (UPDATE …) UPDATE …`)
    writes = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith(("INSERT", "UPDATE", "WITH"))]
    number_at = next(i for i, sql in enumerate(writes) if "sales_billsequence" in sql)
    assert any("ledger_journal" in sql for sql in writes[:number_at])  # the postings come first
    assert all("sales_billsequence" not in sql for sql in writes[number_at + 1 :])

    prefix, n = first.number.rsplit("-", 1)
    assert re.fullmatch(r"\d{6}", n) and second.number == f"{prefix}-{int(n) + 1:06d}"
    assert Bill.objects.get(pk=second.pk).number == second.number
    assert not Bill.objects.filter(number__startswith=PROVISIONAL_NUMBER).exists()
    audit = AuditLog.objects.get(action="sales.bill_complete", object_id=str(second.pk))
    assert audit.object_repr == second.number
    assert Journal.objects.get(pk=second.cny_journal_id).reference_id == str(second.pk)


def test_the_millionth_bill_of_a_store_has_seven_digits_on_both_databases(cashier, care, store1):
    _checkout(cashier, care, "first")  # the store's sequence row exists from its first bill
    BillSequence.objects.filter(store=store1).update(next_value=999_999)

    last_of_six = _checkout(cashier, care, "six")
    first_of_seven = _checkout(cashier, care, "seven")

    prefix = store1.code.upper()
    assert (last_of_six.number, first_of_seven.number) == (f"{prefix}-999999", f"{prefix}-1000000")
    assert Bill.objects.get(pk=first_of_seven.pk).number == f"{prefix}-1000000"
