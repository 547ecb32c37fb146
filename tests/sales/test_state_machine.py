"""A hypothesis state machine over recharge, checkout, refund and replays.

Invariants after every step: every balance equals the sum of its entries, no forbidden negative balance,
every journal nets to zero (``verify_ledger``), the points lots agree with the balances, the store's
revenue equals what its bills took minus what its refunds gave back, and a refused or replayed request
changes nothing. Each example runs inside a savepoint that is rolled back at teardown, so examples are
independent while the catalogue and staff are set up once.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from meiye.core.errors import ApplicationError
from meiye.core.money import Money
from meiye.ledger.selectors import balance_of
from meiye.ledger.verification import verify_ledger
from meiye.loyalty.selectors import points_balance
from meiye.loyalty.services import points_earn, verify_points_lots
from meiye.members.models import Member
from meiye.org.context import Actor
from meiye.sales.models import Bill, BillLine, Refund
from meiye.sales.services import LineInput, TenderInput, bill_checkout, bill_refund
from meiye.wallet.selectors import wallet_balance
from meiye.wallet.services import store_account, wallet_recharge
from tests.sales.support import sales_state


@dataclass
class World:
    cashier: Actor
    refunder: Actor
    members: list[Member]
    item_ids: list[int]
    prices: dict[int, int]  # item id -> price in fen


class CheckoutMachine(RuleBasedStateMachine):
    bills = Bundle("bills")

    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world
        self.keys = itertools.count(1)
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._atomic = transaction.atomic()
        self._atomic.__enter__()

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    def _key(self) -> str:
        return f"sm-{next(self.keys)}"

    def _refused_changes_nothing(self, call: Any) -> Any:
        before = sales_state()
        try:
            return call()
        except ApplicationError:
            assert sales_state() == before
            return None

    # --- rules ------------------------------------------------------------------------------------------

    @rule(who=st.integers(0, 1), amount=st.integers(1, 2_000), bonus=st.integers(0, 400))
    def recharge(self, who: int, amount: int, bonus: int) -> None:
        request = {
            "actor": self.world.refunder,  # the store manager: only money.adjust may give a bonus
            "member": self.world.members[who],
            "amount": Money.yuan(amount),
            "bonus": Money.yuan(bonus),
            "tender": "wechat",
            "idempotency_key": self._key(),
        }
        wallet_recharge(**request)
        self.requests.append(("recharge", request))

    @rule(who=st.integers(0, 1), points=st.integers(1, 5_000))
    def earn_points(self, who: int, points: int) -> None:
        key = self._key()
        points_earn(
            actor=self.world.cashier,
            member=self.world.members[who],
            points=points,
            source_code="test.gift",
            reference_type="test",
            reference_id=key,
            idempotency_key=key,
        )

    @rule(
        target=bills,
        who=st.one_of(st.none(), st.integers(0, 1)),
        picks=st.lists(st.tuples(st.integers(0, 2), st.integers(1, 3)), min_size=1, max_size=3),
        points_share=st.integers(0, 100),
        stored_share=st.integers(0, 100),
    )
    def checkout(self, who: int | None, picks: list[tuple[int, int]], points_share: int, stored_share: int) -> Any:
        member = self.world.members[who] if who is not None else None
        lines = [LineInput(item_id=self.world.item_ids[i], quantity=q) for i, q in picks]
        payable = sum(self.world.prices[self.world.item_ids[i]] * q for i, q in picks)
        tenders: list[TenderInput] = []
        left = payable
        if member is not None:
            # points up to the 10% cap, stored value up to the wallet; a share above 95% asks for a bit
            # more than the member has, which must be refused with nothing written
            overshoot = 50 if points_share > 95 else 0
            points = min(payable // 10, max(points_balance(member), 0) + overshoot) * points_share // 100
            if points > 0:
                tenders.append(TenderInput(kind="points", points=points))
                left -= points  # 100 points per 元: one point is one fen
            overshoot = 5_000 if stored_share > 95 else 0
            stored = min(left, wallet_balance(member).total.fen + overshoot) * stored_share // 100
            if stored > 0:
                tenders.append(TenderInput(kind="stored_value", amount=Money(stored)))
                left -= stored
        if left > 0:
            tenders.append(TenderInput(kind="cash", amount=Money(left), received=Money(left + 1_000)))
        request = {"actor": self.world.cashier, "member": member, "lines": lines, "tenders": tenders}
        request["idempotency_key"] = self._key()
        bill = self._refused_changes_nothing(lambda: bill_checkout(**request))
        if bill is None:
            return multiple()
        self.requests.append(("checkout", request))
        return bill.pk

    @rule(bill_id=bills)
    def refund_all(self, bill_id: int) -> None:
        request = {
            "actor": self.world.refunder,
            "bill": Bill.objects.get(pk=bill_id),
            "reason": "hypothesis",
            "idempotency_key": self._key(),
        }
        refund = self._refused_changes_nothing(lambda: bill_refund(**request))
        if refund is not None:
            self.requests.append(("refund", request))

    @rule(bill_id=bills, line_index=st.integers(0, 2), quantity=st.integers(1, 3), to_wallet=st.booleans())
    def refund_line(self, bill_id: int, line_index: int, quantity: int, to_wallet: bool) -> None:
        bill = Bill.objects.get(pk=bill_id)
        line_ids = list(BillLine.objects.filter(bill=bill).order_by("pk").values_list("pk", flat=True))
        line_id = line_ids[line_index % len(line_ids)]
        request = {
            "actor": self.world.refunder,
            "bill": bill,
            "lines": [(line_id, quantity)],
            "destination": "stored_value" if to_wallet and bill.member_id else "original",
            "reason": "hypothesis",
            "idempotency_key": self._key(),
        }
        refund = self._refused_changes_nothing(lambda: bill_refund(**request))
        if refund is not None:
            self.requests.append(("refund", request))

    @precondition(lambda self: bool(self.requests))
    @rule(index=st.integers(0, 10_000))
    def replay(self, index: int) -> None:
        kind, request = self.requests[index % len(self.requests)]
        call = {"recharge": wallet_recharge, "checkout": bill_checkout, "refund": bill_refund}[kind]
        before = sales_state()
        call(**request)
        assert sales_state() == before

    # --- invariants ------------------------------------------------------------------------------------

    @invariant()
    def ledger_is_consistent(self) -> None:
        assert verify_ledger() == []
        assert verify_points_lots() == []

    @invariant()
    def wallets_never_negative(self) -> None:
        for member in self.world.members:
            wallet = wallet_balance(member)
            assert wallet.principal.fen >= 0 and wallet.bonus.fen >= 0

    @invariant()
    def revenue_is_bills_minus_refunds(self) -> None:
        store = self.world.cashier.store
        taken = sum(Bill.objects.filter(store=store, status="completed").values_list("payable_total_fen", flat=True))
        given_back = sum(Refund.objects.filter(store=store).values_list("amount_fen", flat=True))
        assert balance_of(store_account(store=store, kind="revenue")) == taken - given_back


@pytest.mark.django_db
def test_checkout_state_machine(cashier, manager_at_till, make_member, store1, care, lifting, serum):
    world = World(
        cashier=cashier,
        refunder=manager_at_till,
        members=[make_member(store1), make_member(store1)],
        item_ids=[care.pk, lifting.pk, serum.pk],
        prices={item.pk: item.price_fen for item in (care, lifting, serum)},
    )
    run_state_machine_as_test(
        lambda: CheckoutMachine(world),
        settings=settings(
            max_examples=15,
            stateful_step_count=12,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
