"""``manage.py ledger_verify``: silent success on a clean ledger, a non-zero exit on any drift."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from meiye.ledger.models import Journal
from meiye.ledger.services import journal_post
from meiye.ledger.verification import verify_ledger
from tests.ledger.support import ORG

pytestmark = pytest.mark.django_db


def test_ledger_verify_passes_on_a_clean_ledger(make_account, tender, fund):
    # given
    wallet = make_account()
    fund(wallet, 1_000)
    journal_post(organisation_id=ORG, code="wallet.spend", entries=[(wallet, -250), (tender(), 250)])
    out = StringIO()

    # when
    call_command("ledger_verify", stdout=out)

    # then
    assert "2 accounts, 2 journals (0 reversals), 4 entries checked" in out.getvalue()
    assert "no problems found" in out.getvalue()


@pytest.mark.ledger_drift
def test_ledger_verify_exits_non_zero_and_reports_an_injected_balance_drift(make_account, fund):
    # given: a balance edited behind the ledger's back (ledger_balance is not append-only)
    wallet = make_account()
    fund(wallet, 1_000)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_balance SET amount = amount + 7 WHERE account_id = %s", [wallet.pk])
    out = StringIO()

    # when
    with pytest.raises(CommandError) as failed:
        call_command("ledger_verify", stdout=out)

    # then
    assert failed.value.returncode == 1
    assert str(failed.value) == "ledger_verify: 1 problem(s) found"
    assert f"account {wallet.pk}: balance 1007 but entries sum to 1000 (drift +7)" in out.getvalue()


@pytest.mark.ledger_drift
def test_ledger_verify_reports_a_reversal_that_does_not_mirror_its_original(make_account, tender, fund):
    # given: a balanced "reversal" of the wrong amount written by raw SQL, balances kept in step
    wallet = make_account()
    recharge = fund(wallet, 1_000)
    cash = tender()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger_journal (organisation_id, code, reference_type, reference_id, payload_hash, "
            "reversal_of_id, memo, created_at) VALUES (%s, 'bogus', '', '', 'x', %s, '', CURRENT_TIMESTAMP)",
            [ORG, recharge.pk],
        )
    bogus_id = Journal.objects.get(reversal_of=recharge).pk
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger_entry (journal_id, account_id, amount, asset) VALUES (%s, %s, -50, 'CNY'), "
            "(%s, %s, 50, 'CNY')",
            [bogus_id, wallet.pk, bogus_id, cash.pk],
        )
        cursor.execute("UPDATE ledger_balance SET amount = amount - 50 WHERE account_id = %s", [wallet.pk])
        cursor.execute("UPDATE ledger_balance SET amount = amount + 50 WHERE account_id = %s", [cash.pk])

    # when
    problems = verify_ledger()

    # then
    assert problems == [f"journal {bogus_id}: does not mirror the journal {recharge.pk} it reverses"]
    with pytest.raises(CommandError):
        call_command("ledger_verify", stdout=StringIO())
