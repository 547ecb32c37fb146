"""Property tests of the principal/bonus split, and S-24's concurrent charges against one wallet."""

from __future__ import annotations

import threading
from fractions import Fraction

import pytest
from django.db import connection, transaction
from hypothesis import given
from hypothesis import strategies as st

from meiye.core.errors import ApplicationError
from meiye.core.money import Money
from meiye.ledger.services import Leg, journal_post
from meiye.ledger.verification import verify_ledger
from meiye.wallet.models import SpendOrder
from meiye.wallet.selectors import wallet_balance, wallet_history
from meiye.wallet.services import split_amount, store_account, wallet_spend_legs, wallet_split

balances = st.tuples(st.integers(0, 10**12), st.integers(0, 10**12)).filter(lambda pb: pb[0] + pb[1] > 0)


@st.composite
def payments(draw: st.DrawFn) -> tuple[int, int, int]:
    principal, bonus = draw(balances)
    amount = draw(st.integers(1, principal + bonus))
    return amount, principal, bonus


@given(payments())
def test_proportional_split_adds_up_stays_within_a_fen_of_the_share_and_within_each_balance(payment):
    amount, principal, bonus = payment

    parts = split_amount(
        amount_fen=amount, principal_fen=principal, bonus_fen=bonus, spend_order=SpendOrder.PROPORTIONAL
    )

    assert sum(parts) == amount
    total = principal + bonus
    for part, held in zip(parts, (principal, bonus), strict=True):
        assert 0 <= part <= held
        assert abs(part - Fraction(amount * held, total)) < 1


@given(payments(), st.sampled_from([SpendOrder.PRINCIPAL_FIRST, SpendOrder.BONUS_FIRST]))
def test_ordered_split_empties_one_balance_before_touching_the_other(payment, order):
    amount, principal, bonus = payment

    taken_principal, taken_bonus = split_amount(
        amount_fen=amount, principal_fen=principal, bonus_fen=bonus, spend_order=order
    )

    assert taken_principal + taken_bonus == amount
    assert 0 <= taken_principal <= principal and 0 <= taken_bonus <= bonus
    if order == SpendOrder.PRINCIPAL_FIRST:
        assert taken_bonus == 0 or taken_principal == principal
    else:
        assert taken_principal == 0 or taken_bonus == bonus


@pytest.mark.django_db(transaction=True)
def test_S24_concurrent_charges_never_overdraw_the_wallet(make_member, store1, receptionist, manager, actor_for):
    # given a wallet holding 1,000.00 (800.00 principal + 200.00 bonus)
    from meiye.wallet.services import wallet_recharge

    member = make_member(store1)
    wallet_recharge(
        actor=actor_for(manager, store1),
        member=member,
        amount=Money(80_000),
        bonus=Money(20_000),
        tender="cash",
        idempotency_key="top-up",
    )
    results: list[str] = []
    barrier = threading.Barrier(20)

    def charge(n: int) -> None:
        try:
            barrier.wait()
            with transaction.atomic():
                split = wallet_split(member=member, store=store1, amount=Money(10_000))
                journal_post(
                    organisation_id=member.organisation_id,
                    code="test.bill",
                    entries=[
                        *wallet_spend_legs(member=member, split=split),
                        Leg(store_account(store=store1, kind="revenue"), 10_000),
                    ],
                    idempotency_key=f"bill-{n}",
                )
            results.append("ok")
        except ApplicationError as refused:
            results.append(refused.code)
        finally:
            connection.close()

    # when 20 charges of 100.00 arrive at once
    threads = [threading.Thread(target=charge, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then exactly 10 succeed, 10 are refused, and the wallet is empty
    assert sorted(results) == ["ok"] * 10 + ["wallet.insufficient_balance"] * 10
    assert wallet_balance(member).total == Money(0)
    assert len(wallet_history(member, limit=None)) == 11
    assert verify_ledger() == []
