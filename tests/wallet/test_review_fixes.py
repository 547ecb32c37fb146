"""Review findings on stored value (each test failed before its fix): the cooling-off refund after a member
merge, the cap on a transfer, the lock order of a merge, the instalment job's re-read and its guard, and
replays of a refund, a close and a concurrent duplicate recharge."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django.db.models.query import QuerySet

from meiye.core.errors import ApplicationError
from meiye.core.money import Money
from meiye.members.services import member_merge
from meiye.wallet import services as wallet_services
from meiye.wallet.models import BonusInstalment, CardProduct, InstalmentStatus, Recharge, WalletClosure
from meiye.wallet.selectors import recharge_refundable
from meiye.wallet.services import (
    CardProductInput,
    card_product_save,
    wallet_bonus_release_due,
    wallet_close,
    wallet_recharge,
    wallet_recharge_refund,
    wallet_transfer,
)
from tests.ledger.support import ledger_state
from tests.wallet.conftest import at
from tests.wallet.test_stored_value import fen, spend

JAN15, JAN16 = date(2026, 1, 15), date(2026, 1, 16)


def _refused(expected: str, call: Any, /, **kwargs: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        call(**kwargs)
    assert caught.value.code == expected, caught.value
    return caught.value


def _recharge(actor: Any, member: Any, amount: str, key: str, day: date = JAN15, **kwargs: Any) -> Recharge:
    with at(day, 10):
        return wallet_recharge(
            actor=actor, member=member, amount=Money.parse(amount), tender="wechat", idempotency_key=key, **kwargs
        )


@pytest.fixture
def capped(hq: Any) -> CardProduct:
    """The default product: named cards capped at 5,000.00, cooling-off 7 days."""
    return card_product_save(
        actor=hq, data=CardProductInput(code="capped", name="储值卡", named_cap_fen=500_000, is_default=True)
    )


# --- 1. A recharge moved by a merge gets no cooling-off refund --------------------------------------------------


def test_a_recharge_moved_by_a_merge_is_not_refunded_after_she_spent_from_it(
    hq, cashier, refunder, product, member, make_member, store1
):
    survivor = make_member(store1)
    _recharge(cashier, survivor, "1000.00", "own")
    hers = _recharge(cashier, member, "3000.00", "hers")
    spend(cashier, hq, member, "500.00", JAN15, "bill-1")
    with at(JAN16):
        member_merge(actor=hq, survivor=survivor, merged=member)
    hers.refresh_from_db()
    assert hers.member_id == survivor.pk
    assert hers.cooling_off_until == JAN15  # ended the day before the merge
    assert not recharge_refundable(hers, JAN16)
    before = ledger_state()
    with at(JAN16):
        _refused(
            "wallet.recharge_merged",
            wallet_recharge_refund,
            actor=refunder,
            recharge=hers,
            tender="wechat",
            idempotency_key="cool",
            reason="不想要了",
        )
    assert ledger_state() == before
    assert fen(survivor) == (350_000, 0, 0)


def test_the_merge_check_holds_even_for_a_recharge_whose_cooling_off_date_was_not_ended(
    hq, cashier, refunder, product, member, make_member, store1
):
    """Recharges merged before the fix kept their dates: the ledger still names the original member."""
    survivor = make_member(store1)
    hers = _recharge(cashier, member, "3000.00", "hers")
    with at(JAN16):
        member_merge(actor=hq, survivor=survivor, merged=member)
    Recharge.objects.filter(pk=hers.pk).update(cooling_off_until=JAN15 + timedelta(days=7))
    with at(JAN16):
        _refused(
            "wallet.recharge_merged",
            wallet_recharge_refund,
            actor=refunder,
            recharge=hers,
            tender="wechat",
            idempotency_key="cool",
            reason="不想要了",
        )


def test_the_survivors_own_recharge_keeps_its_cooling_off(hq, cashier, refunder, product, member, make_member, store1):
    survivor = make_member(store1)
    own = _recharge(cashier, survivor, "1000.00", "own")
    _recharge(cashier, member, "3000.00", "hers")
    with at(JAN16):
        member_merge(actor=hq, survivor=survivor, merged=member)
        refunded = wallet_recharge_refund(
            actor=refunder, recharge=own, tender="wechat", idempotency_key="cool", reason="不想要了"
        )
    assert refunded.refund_journal is not None
    assert fen(survivor) == (300_000, 0, 0)


# --- 2. The target's cap applies to a transfer --------------------------------------------------------------------


def test_a_transfer_may_not_take_the_target_over_her_cap(cashier, refunder, capped, member, make_member, store1):
    target = make_member(store1)
    _recharge(cashier, target, "4000.00", "t")
    _recharge(cashier, member, "3000.00", "s")
    before = ledger_state()
    error = _refused(
        "wallet.cap_exceeded",
        wallet_transfer,
        actor=refunder,
        source=member,
        target=target,
        idempotency_key="x",
        reason="转给女儿",
    )
    assert error.field == "target"
    assert error.extra["room_fen"] == 100_000 and error.extra["amount_fen"] == 300_000
    assert "5000.00" in error.message_en and "5000.00" in error.message_zh
    assert ledger_state() == before
    assert fen(target) == (400_000, 0, 0) and fen(member) == (300_000, 0, 0)


def test_a_transfer_up_to_the_cap_is_allowed(cashier, refunder, capped, member, make_member, store1):
    target = make_member(store1)
    _recharge(cashier, target, "2000.00", "t")
    _recharge(cashier, member, "3000.00", "s")
    wallet_transfer(actor=refunder, source=member, target=target, idempotency_key="x", reason="转给女儿")
    assert fen(target) == (500_000, 0, 0)


def test_a_merge_is_not_capped(hq, cashier, capped, member, make_member, store1):
    survivor = make_member(store1)
    _recharge(cashier, survivor, "4000.00", "t")
    _recharge(cashier, member, "3000.00", "s")
    member_merge(actor=hq, survivor=survivor, merged=member)
    assert fen(survivor) == (700_000, 0, 0)


# --- 3. A merge locks the balances before it touches recharge and instalment rows --------------------------------


def test_merge_locks_balances_before_updating_rows(hq, member, make_member, store1, s13_recharge, monkeypatch):
    survivor = make_member(store1)
    events: list[str] = []
    real_lock, real_update = wallet_services.accounts_lock, QuerySet.update

    def lock(**kwargs: Any) -> Any:
        events.append("lock")
        return real_lock(**kwargs)

    def update(self: QuerySet, **kwargs: Any) -> int:
        if self.model in (Recharge, BonusInstalment):
            events.append(f"update {self.model.__name__}")
        return real_update(self, **kwargs)

    monkeypatch.setattr(wallet_services, "accounts_lock", lock)
    monkeypatch.setattr(QuerySet, "update", update)
    member_merge(actor=hq, survivor=survivor, merged=member)
    assert events[0] == "lock" and events.count("lock") == 1
    assert "update Recharge" in events and "update BonusInstalment" in events
    assert fen(survivor) == (300_000, 10_000, 50_000)


# --- 4. The instalment job: moved instalments and a failing batch ---------------------------------------------


def test_release_skips_an_instalment_moved_after_the_batch_was_read(
    refunder, member, make_member, store1, s13_recharge, monkeypatch
):
    other = make_member(store1)
    real = wallet_services._lock_wallets_of

    def move_then_lock(organisation_id: int, member_ids: Any) -> Any:
        # A transfer commits between the job's read of the batch and its locks.
        wallet_transfer(actor=refunder, source=member, target=other, idempotency_key="mv", reason="转给女儿")
        monkeypatch.setattr(wallet_services, "_lock_wallets_of", real)
        return real(organisation_id, member_ids)

    monkeypatch.setattr(wallet_services, "_lock_wallets_of", move_then_lock)
    assert wallet_bonus_release_due(on=date(2026, 2, 15)) == 0
    assert fen(other) == (300_000, 10_000, 50_000)
    # the next run releases it for its new holder
    assert wallet_bonus_release_due(on=date(2026, 2, 15)) == 1
    assert fen(other) == (300_000, 20_000, 40_000)


def test_a_failing_batch_is_logged_and_the_run_goes_on(
    cashier, member, make_member, store1, s13_rule, monkeypatch, caplog
):
    second = make_member(store1)
    for who, key in ((member, "a"), (second, "b")):
        _recharge(cashier, who, "3000.00", key)
    real = wallet_services._release_batch
    calls = {"n": 0}

    def flaky(organisation_id: int, items: Any, on: date, notify: bool) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom")
        return real(organisation_id, items, on, notify)

    monkeypatch.setattr(wallet_services, "_release_batch", flaky)
    # one instalment per batch: the first member's fails, the second member's is released
    assert wallet_bonus_release_due(on=date(2026, 2, 15), batch_size=1) == 1
    assert "wallet.bonus_release" in caplog.text and "boom" in caplog.text
    assert fen(member) == (300_000, 10_000, 50_000)
    assert fen(second) == (300_000, 20_000, 40_000)
    monkeypatch.setattr(wallet_services, "_release_batch", real)
    assert wallet_bonus_release_due(on=date(2026, 2, 15)) == 1
    assert fen(member) == (300_000, 20_000, 40_000)


# --- 6. Replays ------------------------------------------------------------------------------------------------


def test_a_refund_replay_with_another_tender_or_reason_is_a_conflict(refunder, member, s13_recharge):
    with at(JAN16):
        first = wallet_recharge_refund(
            actor=refunder, recharge=s13_recharge, tender="wechat", idempotency_key="cool", reason="不想要了"
        )
        again = wallet_recharge_refund(
            actor=refunder, recharge=s13_recharge, tender="wechat", idempotency_key="cool", reason="不想要了"
        )
        assert again.pk == first.pk
        for tender, reason in (("cash", "不想要了"), ("wechat", "另一个原因")):
            _refused(
                "idempotency.key_reused",
                wallet_recharge_refund,
                actor=refunder,
                recharge=s13_recharge,
                tender=tender,
                idempotency_key="cool",
                reason=reason,
            )


def test_a_close_replay_with_another_reason_is_a_conflict(refunder, cashier, member, product):
    _recharge(cashier, member, "200.00", "r")
    first = wallet_close(actor=refunder, member=member, tender="cash", idempotency_key="c", reason="会员退卡")
    assert wallet_close(actor=refunder, member=member, tender="cash", idempotency_key="c", reason="会员退卡") == first
    _refused(
        "idempotency.key_reused",
        wallet_close,
        actor=refunder,
        member=member,
        tender="cash",
        idempotency_key="c",
        reason="搬家了",
    )
    assert WalletClosure.objects.count() == 1


def test_a_duplicate_recharge_that_waited_on_the_lock_replays_instead_of_hitting_the_cap(
    cashier, capped, member, monkeypatch
):
    """The first request commits while the second waits in ``accounts_lock``: the second must answer with the
    first recharge, not ``wallet.cap_exceeded`` (3,000.00 twice would pass a 5,000.00 cap)."""
    real = wallet_services.accounts_lock
    first: list[Recharge] = []
    waiting = {"done": False}

    def lock(**kwargs: Any) -> Any:
        if not waiting["done"]:
            waiting["done"] = True
            first.append(_recharge(cashier, member, "3000.00", "dup"))
        return real(**kwargs)

    monkeypatch.setattr(wallet_services, "accounts_lock", lock)
    second = _recharge(cashier, member, "3000.00", "dup")
    assert second.pk == first[0].pk
    assert Recharge.objects.filter(member=member).count() == 1
    assert fen(member) == (300_000, 0, 0)
    assert BonusInstalment.objects.filter(status=InstalmentStatus.PENDING).count() == 0


def test_the_daily_task_goes_on_past_a_failing_organisation(org, monkeypatch, caplog):
    from meiye.wallet import tasks
    from tests.factories import OrganisationFactory

    other = OrganisationFactory(code="other-org", name="另一家")
    seen: list[int] = []

    def release(*, on: date, organisation_id: int) -> int:
        seen.append(organisation_id)
        if organisation_id == org.pk:
            raise RuntimeError("boom")
        return 0

    monkeypatch.setattr(tasks, "wallet_bonus_release_due", release)
    tasks.wallet_bonus_release_task.call_local()
    assert seen == sorted([org.pk, other.pk])
    assert "boom" in caplog.text
