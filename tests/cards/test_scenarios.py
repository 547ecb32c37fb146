"""S-17 (payment password, one-time codes, lock-out) and S-18 (loss and replacement) with the numbers of
SCENARIOS.md."""

from __future__ import annotations

import pytest
from django.db import transaction

from meiye.audit.models import AuditLog
from meiye.cards.models import CardStatus, MemberCard, PaymentPassword
from meiye.cards.services import (
    card_for_number,
    card_issue,
    card_replace,
    card_report_lost,
    payment_code_send,
    payment_password_set,
    stored_value_authorize,
)
from meiye.core.errors import ApplicationError
from meiye.ledger.models import Entry, Journal
from meiye.notify.models import Message
from meiye.notify.services import SECRET_MASK, message_deliver
from meiye.wallet.selectors import wallet_balance


def _refused(expected: str, call, /, **kwargs) -> ApplicationError:  # type: ignore[no-untyped-def]
    with pytest.raises(ApplicationError) as caught:
        call(**kwargs)
    assert caught.value.code == expected, caught.value
    return caught.value


def _member_entries(member) -> int:  # type: ignore[no-untyped-def]
    return Entry.objects.filter(account__owner_type="member", account__owner_id=member.pk).count()


# --- S-18 -----------------------------------------------------------------------------------------------------


def test_S18_lost_card_refused_replacement_carries_everything_old_number_dead_fee_and_audit(
    cashier, member, product, recharge, store_rules
):
    # Given card MY00012345 holding 3,000.00 principal, 100.00 bonus and 500.00 pending bonus (充3000送600 in 6 parts)
    card = card_issue(
        actor=cashier, member=member, product=product, medium="physical", number="MY00012345", idempotency_key="i1"
    )
    recharge(member, "3000.00", product=product)
    before = wallet_balance(member)
    assert (before.principal.fen, before.bonus.fen, before.pending.fen) == (300000, 10000, 50000)
    store_rules(fee="10.00")

    # When the card is reported lost
    card_report_lost(actor=cashier, card=card, reason="顾客丢失")

    # Then every charge with it is refused, by number or not, while the balance stays visible
    _refused("card.lost", stored_value_authorize, actor=cashier, member=member, card_number="MY00012345")
    _refused("card.lost", stored_value_authorize, actor=cashier, member=member)
    assert wallet_balance(member) == before

    # When it is replaced, the 10.00 fee paid in cash
    entries_before = _member_entries(member)
    new = card_replace(actor=cashier, card=card, fee_tender="cash", idempotency_key="replace-1")

    # Then the new card carries the whole principal, bonus and pending bonus (no member account moved)
    assert new.number.startswith("MY") and new.number != "MY00012345"
    assert new.product == product and new.status == CardStatus.ACTIVE and new.member == member
    assert wallet_balance(member) == before
    assert _member_entries(member) == entries_before
    # and the old number never works again
    card.refresh_from_db()
    assert card.status == CardStatus.REPLACED and card.replaced_by == new
    error = _refused("card.replaced", card_for_number, actor=cashier, number="MY00012345")
    assert error.extra["replaced_by"] == new.number
    _refused("card.replaced", stored_value_authorize, actor=cashier, member=member, card_number="MY00012345")
    assert card_for_number(cashier, new.number) == new
    stored_value_authorize(actor=cashier, member=member, card_number=new.number)
    # and 10.00 is charged: store tender_cash −10.00, store revenue +10.00
    fee = Journal.objects.get(code="cards.replace_fee")
    legs = sorted((e.account.kind, e.amount) for e in Entry.objects.filter(journal=fee).select_related("account"))
    assert legs == [("revenue", 1000), ("tender_cash", -1000)]
    # and both events are in the audit log
    actions = set(AuditLog.objects.filter(action__startswith="cards.").values_list("action", flat=True))
    assert {"cards.report_lost", "cards.replace"} <= actions
    lost = AuditLog.objects.get(action="cards.report_lost")
    assert lost.object_id == str(card.pk) and lost.detail["reason"] == "顾客丢失"
    replaced = AuditLog.objects.get(action="cards.replace")
    assert replaced.detail["old"] == "MY00012345" and replaced.detail["new"] == new.number
    assert replaced.detail["fee"] == "10.00" and replaced.detail["fee_tender"] == "cash"


def test_S18_replacement_without_a_fee_posts_nothing_and_a_retry_returns_the_same_card(cashier, member, product):
    card = card_issue(actor=cashier, member=member, product=product, idempotency_key="i1")
    card_report_lost(actor=cashier, card=card)
    new = card_replace(actor=cashier, card=card, idempotency_key="replace-1")
    again = card_replace(actor=cashier, card=card, idempotency_key="replace-1")
    assert again == new
    assert not Journal.objects.filter(code="cards.replace_fee").exists()
    assert MemberCard.objects.filter(member=member).count() == 2


def test_S18_fee_from_stored_value_needs_the_password(cashier, member, product, recharge, store_rules, codes):
    card = card_issue(actor=cashier, member=member, product=product, idempotency_key="i1")
    recharge(member, "100.00")
    payment_code_send(actor=cashier, member=member, purpose="password")
    payment_password_set(actor=cashier, member=member, password="135790", code=codes.last)
    store_rules(fee="10.00")
    card_report_lost(actor=cashier, card=card)

    _refused(
        "wallet.payment_password_wrong",
        card_replace,
        actor=cashier,
        card=card,
        fee_tender="stored_value",
        password="000111",
        idempotency_key="r1",
    )
    assert MemberCard.objects.filter(member=member).count() == 1
    new = card_replace(actor=cashier, card=card, fee_tender="stored_value", password="135790", idempotency_key="r1")
    assert wallet_balance(member).principal.fen == 9000
    assert new.status == CardStatus.ACTIVE


# --- S-17 -----------------------------------------------------------------------------------------------------


def test_S17_five_wrong_passwords_lock_for_30_minutes_success_resets(cashier, member, codes, clock):
    # Given the member set her password after a code sent to her phone
    payment_code_send(actor=cashier, member=member, purpose="password")
    payment_password_set(actor=cashier, member=member, password="135790", code=codes.last)

    # When she types a wrong password four times, each try says how many are left
    for left in (4, 3, 2, 1):
        error = _refused(
            "wallet.payment_password_wrong", stored_value_authorize, actor=cashier, member=member, password="111222"
        )
        assert error.extra["tries_left"] == left
    # and the fifth locks stored-value payment for 30 minutes
    error = _refused("wallet.payment_locked", stored_value_authorize, actor=cashier, member=member, password="111222")
    state = PaymentPassword.objects.get(member=member)
    assert state.locked_until == clock.now + (state.locked_until - clock.now)
    assert int((state.locked_until - clock.now).total_seconds()) == 30 * 60
    assert error.extra["locked_until"] == state.locked_until.isoformat()

    # Then even the right password is refused until then
    clock.advance(minutes=29)
    _refused("wallet.payment_locked", stored_value_authorize, actor=cashier, member=member, password="135790")

    # After 30 minutes the right password works, and the count starts again from 5
    clock.advance(minutes=1, seconds=1)
    stored_value_authorize(actor=cashier, member=member, password="135790")
    error = _refused(
        "wallet.payment_password_wrong", stored_value_authorize, actor=cashier, member=member, password="111222"
    )
    assert error.extra["tries_left"] == 4
    stored_value_authorize(actor=cashier, member=member, password="135790")
    assert PaymentPassword.objects.get(member=member).failures == 0
    assert AuditLog.objects.filter(action="cards.payment_locked").count() == 1


def test_S17_a_one_time_code_pays_once(cashier, member, codes, clock):
    payment_code_send(actor=cashier, member=member, purpose="password")
    payment_password_set(actor=cashier, member=member, password="135790", code=codes.last)
    _refused("wallet.payment_auth_required", stored_value_authorize, actor=cashier, member=member)

    clock.advance(seconds=61)
    payment_code_send(actor=cashier, member=member, purpose="payment")
    stored_value_authorize(actor=cashier, member=member, code=codes.last)
    # used once: the same code again counts as a wrong try
    error = _refused("wallet.payment_code_wrong", stored_value_authorize, actor=cashier, member=member, code=codes.last)
    assert error.extra["tries_left"] == 4


def test_S17_a_code_expires_after_5_minutes(cashier, member, codes, clock, store_rules):
    store_rules(require_auth=True)
    payment_code_send(actor=cashier, member=member, purpose="payment")
    clock.advance(minutes=5, seconds=1)
    _refused("wallet.payment_code_wrong", stored_value_authorize, actor=cashier, member=member, code=codes.last)


def test_S17_failure_count_is_committed_though_the_caller_fails(cashier, member, codes):
    payment_code_send(actor=cashier, member=member, purpose="password")
    payment_password_set(actor=cashier, member=member, password="135790", code=codes.last)
    # The caller's own operation then fails and rolls back: the count stays.
    with pytest.raises(ApplicationError):
        stored_value_authorize(actor=cashier, member=member, password="999000")
    with pytest.raises(RuntimeError), transaction.atomic():
        raise RuntimeError("the checkout failed")
    assert PaymentPassword.objects.get(member=member).failures == 1


@pytest.mark.django_db(transaction=True)
def test_S17_failure_count_survives_a_real_commit(receptionist, store1, actor_for, make_member, codes):
    cashier = actor_for(receptionist, store1)
    member = make_member(store1, phone="13800135678")
    payment_code_send(actor=cashier, member=member, purpose="password")
    payment_password_set(actor=cashier, member=member, password="135790", code=codes.last)
    for _ in range(2):
        with pytest.raises(ApplicationError):
            stored_value_authorize(actor=cashier, member=member, password="999000")
    assert PaymentPassword.objects.get(member=member).failures == 2


def test_S17_no_password_and_no_store_rule_needs_nothing(cashier, member):
    stored_value_authorize(actor=cashier, member=member)


def test_S17_store_requiring_auth_asks_members_without_a_password_for_a_code(cashier, member, codes, store_rules):
    store_rules(require_auth=True)
    error = _refused("wallet.payment_auth_required", stored_value_authorize, actor=cashier, member=member)
    assert error.extra["has_password"] is False
    payment_code_send(actor=cashier, member=member, purpose="payment")
    stored_value_authorize(actor=cashier, member=member, code=codes.last)


def test_S17_staff_never_read_the_code_the_sms_carries_it(cashier, member, codes, monkeypatch):
    sent: list[str] = []

    class Provider:
        name = "fake"

        def send(self, message):  # type: ignore[no-untyped-def]
            from meiye.notify.providers import SendResult

            sent.append(message.body)
            return SendResult(status="sent", provider_ref="x")

    monkeypatch.setattr("meiye.notify.services.provider_for", lambda channel: Provider())
    record = payment_code_send(actor=cashier, member=member, purpose="payment")
    message = Message.objects.get(event="wallet.payment_code")
    assert codes.last not in message.body and SECRET_MASK in message.body
    assert record.code_hash != codes.last

    message_deliver(message_id=message.pk)

    assert len(sent) == 1 and codes.last in sent[0]
    message.refresh_from_db()
    assert codes.last not in message.body and SECRET_MASK in message.body
    assert codes.last not in str(list(AuditLog.objects.values_list("detail", flat=True)))


def test_S17_a_used_code_is_not_sent_late(cashier, member, codes, store_rules, monkeypatch):
    sent: list[str] = []

    class Provider:
        name = "fake"

        def send(self, message):  # type: ignore[no-untyped-def]
            sent.append(message.body)

    monkeypatch.setattr("meiye.notify.services.provider_for", lambda channel: Provider())
    store_rules(require_auth=True)
    payment_code_send(actor=cashier, member=member, purpose="payment")
    stored_value_authorize(actor=cashier, member=member, code=codes.last)
    message = Message.objects.get(event="wallet.payment_code")
    result = message_deliver(message_id=message.pk)
    assert sent == [] and result is not None and result.status == "failed"
