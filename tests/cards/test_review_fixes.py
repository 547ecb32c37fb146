"""Review findings on member cards (each test failed before its fix): the target's cap on a card transfer,
the lock order of a card close and of a replacement fee paid from stored value, and the payment password
of a merged member."""

from __future__ import annotations

from typing import Any

import pytest

from meiye.cards import services as card_services
from meiye.cards.models import CardStatus, PaymentPassword
from meiye.cards.services import (
    card_close,
    card_issue,
    card_replace,
    card_transfer_balance,
    payment_code_send,
    payment_password_set,
    stored_value_authorize,
)
from meiye.core.errors import ApplicationError
from meiye.ledger.models import Journal
from meiye.members.services import member_merge
from meiye.wallet import services as wallet_services
from meiye.wallet.models import CardProduct
from meiye.wallet.selectors import wallet_balance
from tests.ledger.support import ledger_state


def _refused(expected: str, call: Any, /, **kwargs: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        call(**kwargs)
    assert caught.value.code == expected, caught.value
    return caught.value


@pytest.fixture
def lock_spy(monkeypatch) -> list[tuple[str, set[tuple[str, str]]]]:
    """Every balance lock taken through wallet and cards: ("accounts_lock", {(owner_type, kind), …}) or
    ("wallet_balance", {("member", "*")}) for a separate lock of a member's wallet rows."""
    calls: list[tuple[str, set[tuple[str, str]]]] = []
    real_lock, real_balance = wallet_services.accounts_lock, wallet_services.wallet_balance

    def lock(**kwargs: Any) -> Any:
        keys = list(kwargs["keys"])
        calls.append(("accounts_lock", {(k.owner_type, k.kind) for k in keys}))
        return real_lock(organisation_id=kwargs["organisation_id"], keys=keys)

    def balance(member: Any, *, lock: bool = False) -> Any:
        if lock:
            calls.append(("wallet_balance", {("member", "*")}))
        return real_balance(member, lock=lock)

    monkeypatch.setattr(wallet_services, "accounts_lock", lock)
    monkeypatch.setattr(wallet_services, "wallet_balance", balance)
    monkeypatch.setattr(card_services, "accounts_lock", lock, raising=False)
    return calls


# --- 2. The target's cap on a card transfer -------------------------------------------------------------------


def test_card_transfer_applies_the_cap_of_the_targets_live_card(
    boss, cashier, member, make_member, store1, recharge, store_rules, org
):
    store_rules(transfer=True)
    silver = CardProduct.objects.create(organisation=org, code="silver", name="银卡", named_cap_fen=500_000)
    friend = make_member(store1)
    card = card_issue(actor=cashier, member=member, idempotency_key="k1")
    card_issue(actor=cashier, member=friend, product=silver, idempotency_key="k2")
    recharge(friend, "4000.00", product=silver)
    recharge(member, "3000.00")
    before = ledger_state()
    error = _refused(
        "wallet.cap_exceeded",
        card_transfer_balance,
        actor=boss,
        card=card,
        target=friend,
        idempotency_key="t1",
        reason="转给朋友",
    )
    assert error.field == "target" and error.extra["cap_fen"] == 500_000 and error.extra["room_fen"] == 100_000
    assert "银卡" in error.message_zh
    assert ledger_state() == before
    assert wallet_balance(friend).principal.fen == 400_000 and wallet_balance(member).principal.fen == 300_000


def test_card_transfer_to_a_member_without_a_card_uses_the_default_products_cap(
    boss, cashier, member, make_member, store1, recharge, store_rules, org
):
    store_rules(transfer=True)
    CardProduct.objects.create(organisation=org, code="std", name="标准卡", named_cap_fen=500_000, is_default=True)
    friend = make_member(store1)
    card = card_issue(actor=cashier, member=member, idempotency_key="k1")
    recharge(friend, "4000.00")
    recharge(member, "3000.00")
    _refused(
        "wallet.cap_exceeded",
        card_transfer_balance,
        actor=boss,
        card=card,
        target=friend,
        idempotency_key="t1",
        reason="转给朋友",
    )


# --- 3. Lock order: one accounts_lock with the store accounts, no separate lock of her balances ------------------


def test_card_close_locks_everything_in_one_statement(boss, cashier, member, recharge, lock_spy):
    card = card_issue(actor=cashier, member=member, idempotency_key="k1")
    recharge(member, "200.00")
    lock_spy.clear()
    closure = card_close(actor=boss, card=card, tender="cash", idempotency_key="c1", reason="会员退卡")
    assert closure is not None and closure.principal_fen == 20_000
    assert [name for name, _keys in lock_spy] == ["accounts_lock"]
    assert {("member", "wallet_principal"), ("store", "tender_cash"), ("store", "bonus_forfeited")} <= lock_spy[0][1]


def test_card_close_of_an_empty_wallet_needs_no_tender_and_locks_no_member_row_alone(boss, cashier, member, lock_spy):
    card = card_issue(actor=cashier, member=member, idempotency_key="k1")
    assert card_close(actor=boss, card=card, tender="", idempotency_key="c1", reason="不用了") is None
    card.refresh_from_db()
    assert card.status == CardStatus.CLOSED
    assert ("wallet_balance", {("member", "*")}) not in lock_spy


def test_card_close_refuses_a_bad_tender_when_there_is_money(boss, cashier, member, recharge):
    card = card_issue(actor=cashier, member=member, idempotency_key="k1")
    recharge(member, "200.00")
    _refused("wallet.invalid_tender", card_close, actor=boss, card=card, tender="", idempotency_key="c1", reason="x")
    card.refresh_from_db()
    assert card.status == CardStatus.ACTIVE


def test_replacement_fee_from_stored_value_locks_wallet_and_revenue_together(
    cashier, member, recharge, store_rules, lock_spy
):
    store_rules(fee="10.00")
    card = card_issue(actor=cashier, member=member, idempotency_key="k1")
    recharge(member, "100.00")
    lock_spy.clear()
    card_replace(actor=cashier, card=card, fee_tender="stored_value", idempotency_key="r1")
    assert [name for name, _keys in lock_spy] == ["accounts_lock"]
    assert lock_spy[0][1] == {("member", "wallet_principal"), ("member", "wallet_bonus"), ("store", "revenue")}
    journal = Journal.objects.get(code="cards.replace_fee")
    assert sorted(e.amount for e in journal.entries.all()) == [-1_000, 1_000]
    assert wallet_balance(member).principal.fen == 9_000


def test_replacement_fee_by_cash_still_posts(cashier, member, store_rules, lock_spy):
    store_rules(fee="10.00")
    card = card_issue(actor=cashier, member=member, idempotency_key="k1")
    card_replace(actor=cashier, card=card, fee_tender="cash", idempotency_key="r1")
    assert lock_spy == [("accounts_lock", {("store", "tender_cash"), ("store", "revenue")})]
    assert Journal.objects.filter(code="cards.replace_fee").count() == 1


# --- 5. A merged member's payment password ---------------------------------------------------------------------


def _set_password(cashier: Any, member: Any, codes: Any, password: str) -> None:
    payment_code_send(actor=cashier, member=member, purpose="password")
    payment_password_set(actor=cashier, member=member, password=password, code=codes.last)


def test_merge_carries_the_password_to_a_survivor_without_one(cashier, hq, member, make_member, store1, codes):
    twin = make_member(store1, phone="13800135679")
    _set_password(cashier, twin, codes, "135790")
    member_merge(actor=hq, survivor=member, merged=twin)
    _refused("wallet.payment_auth_required", stored_value_authorize, actor=cashier, member=member)
    _refused("wallet.payment_password_wrong", stored_value_authorize, actor=cashier, member=member, password="246801")
    stored_value_authorize(actor=cashier, member=member, password="135790")


def test_merge_carries_the_password_onto_the_survivors_empty_row(cashier, hq, member, make_member, store1, codes):
    twin = make_member(store1, phone="13800135679")
    PaymentPassword.objects.create(member=member, failures=1)  # a wrong code counted, no password
    _set_password(cashier, twin, codes, "135790")
    member_merge(actor=hq, survivor=member, merged=twin)
    stored_value_authorize(actor=cashier, member=member, password="135790")
    assert not PaymentPassword.objects.get(member=twin).is_set


def test_merge_keeps_the_survivors_password_when_both_have_one(cashier, hq, member, make_member, store1, codes):
    twin = make_member(store1, phone="13800135679")
    _set_password(cashier, member, codes, "135790")
    _set_password(cashier, twin, codes, "246813")
    member_merge(actor=hq, survivor=member, merged=twin)
    stored_value_authorize(actor=cashier, member=member, password="135790")
    _refused("wallet.payment_password_wrong", stored_value_authorize, actor=cashier, member=member, password="246813")
