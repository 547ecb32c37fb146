"""Card lifecycle, settings, transfer, closing, import, merge/export and the password/code rules."""

from __future__ import annotations

import re

import pytest

from meiye.audit.models import AuditLog
from meiye.cards.models import CardAlias, CardSettings, CardStatus, MemberCard, PaymentCode, PaymentPassword
from meiye.cards.selectors import card_settings, payment_auth_required
from meiye.cards.services import (
    card_bind,
    card_close,
    card_for_number,
    card_freeze,
    card_issue,
    card_replace,
    card_report_lost,
    card_settings_set,
    card_transfer_balance,
    card_unfreeze,
    cards_import,
    payment_code_send,
    payment_password_set,
    stored_value_authorize,
)
from meiye.core.errors import ApplicationError
from meiye.core.money import Money
from meiye.ledger.models import Journal
from meiye.members.services import member_export, member_merge
from meiye.wallet.selectors import wallet_balance


def _refused(expected: str, call, /, **kwargs) -> ApplicationError:  # type: ignore[no-untyped-def]
    with pytest.raises(ApplicationError) as caught:
        call(**kwargs)
    assert caught.value.code == expected, caught.value
    return caught.value


# --- Issue, bind, status ------------------------------------------------------------------------------------


def test_issue_virtual_card_gets_a_generated_number_and_is_audited(cashier, member, product):
    card = card_issue(actor=cashier, member=member, product=product, idempotency_key="k1")
    assert re.fullmatch(r"MY\d{8}", card.number)
    assert card.medium == "virtual" and card.named and card.status == CardStatus.ACTIVE
    assert card.issued_store == cashier.store and card.issued_by == cashier.staff
    assert AuditLog.objects.filter(action="cards.issue", object_id=str(card.pk)).exists()


def test_issue_uses_the_default_product(cashier, member, product):
    product.is_default = True
    product.save()
    assert card_issue(actor=cashier, member=member, idempotency_key="k1").product == product


def test_issue_replay_returns_the_card_and_a_different_body_is_a_conflict(cashier, member, make_member, store1):
    card = card_issue(actor=cashier, member=member, idempotency_key="k1")
    assert card_issue(actor=cashier, member=member, idempotency_key="k1") == card
    other = make_member(store1)
    _refused("idempotency.key_reused", card_issue, actor=cashier, member=other, idempotency_key="k1")
    assert MemberCard.objects.count() == 1


def test_one_live_card_per_member(cashier, member):
    card = card_issue(actor=cashier, member=member, idempotency_key="k1")
    error = _refused("card.already_has_card", card_issue, actor=cashier, member=member, idempotency_key="k2")
    assert error.extra["card_number"] == card.number


def test_physical_number_is_normalised_and_unique(cashier, member, make_member, store1):
    card = card_issue(actor=cashier, member=member, medium="physical", number=" ab 1234 ", idempotency_key="k1")
    assert card.number == "AB1234"
    other = make_member(store1)
    _refused(
        "card.number_taken",
        card_issue,
        actor=cashier,
        member=other,
        medium="physical",
        number="ab1234",
        idempotency_key="k2",
    )
    _refused(
        "card.invalid_number",
        card_issue,
        actor=cashier,
        member=other,
        medium="physical",
        number="#!",
        idempotency_key="k3",
    )
    _refused("input.required", card_issue, actor=cashier, member=other, medium="physical", idempotency_key="k4")
    _refused(
        "card.virtual_number_generated",
        card_issue,
        actor=cashier,
        member=other,
        medium="virtual",
        number="X1234",
        idempotency_key="k5",
    )


def test_a_beautician_may_not_issue(actor_for, beautician, store1, member):
    _refused(
        "auth.permission_denied", card_issue, actor=actor_for(beautician, store1), member=member, idempotency_key="k"
    )


def test_bind_puts_a_physical_number_on_a_virtual_card_and_the_virtual_number_still_works(cashier, member):
    card = card_issue(actor=cashier, member=member, idempotency_key="k1")
    virtual = card.number
    card_bind(actor=cashier, card=card, number="P0001")
    card.refresh_from_db()
    assert card.number == "P0001" and card.medium == "physical"
    assert card_for_number(cashier, virtual) == card
    assert card_for_number(cashier, "p0001") == card
    _refused("card.not_virtual", card_bind, actor=cashier, card=card, number="P0002")


def test_freeze_stops_stored_value_payment_until_unfrozen(cashier, member):
    card = card_issue(actor=cashier, member=member, idempotency_key="k1")
    _refused("input.required", card_freeze, actor=cashier, card=card, reason=" ")
    card_freeze(actor=cashier, card=card, reason="会员要求")
    _refused("card.frozen", stored_value_authorize, actor=cashier, member=member)
    _refused("card.frozen", card_freeze, actor=cashier, card=card, reason="again")
    card_unfreeze(actor=cashier, card=card, reason="会员要求解冻")
    stored_value_authorize(actor=cashier, member=member, card_number=card.number)
    actions = AuditLog.objects.filter(action__in=["cards.freeze", "cards.unfreeze"]).order_by("pk")
    assert list(actions.values_list("action", flat=True)) == ["cards.freeze", "cards.unfreeze"]


def test_a_found_card_can_be_unblocked(cashier, member):
    card = card_issue(actor=cashier, member=member, idempotency_key="k1")
    card_report_lost(actor=cashier, card=card)
    card_unfreeze(actor=cashier, card=card, reason="找到了")
    stored_value_authorize(actor=cashier, member=member, card_number=card.number)


def test_another_members_card_is_refused(cashier, member, make_member, store1):
    other = make_member(store1)
    card = card_issue(actor=cashier, member=other, idempotency_key="k1")
    _refused("card.wrong_member", stored_value_authorize, actor=cashier, member=member, card_number=card.number)


def test_a_card_of_a_store_you_cannot_see_is_not_found(cashier, member, actor_for, receptionist2, store2):
    card = card_issue(actor=cashier, member=member, idempotency_key="k1")
    other_store = actor_for(receptionist2, store2)
    _refused("card.not_found", card_for_number, actor=other_store, number=card.number)
    _refused("card.not_found", card_freeze, actor=other_store, card=card, reason="x")
    _refused("card.not_found", card_for_number, actor=cashier, number="NOSUCH")


# --- Settings ------------------------------------------------------------------------------------------------


def test_settings_need_store_manage_and_are_audited(cashier, hq, store1):
    _refused(
        "auth.permission_denied",
        card_settings_set,
        actor=cashier,
        store=store1,
        replacement_fee=Money(1000),
        allow_balance_transfer=True,
        require_payment_auth=False,
    )
    assert card_settings(store1).replacement_fee_fen == 0
    card_settings_set(
        actor=hq, store=store1, replacement_fee=Money(1000), allow_balance_transfer=True, require_payment_auth=True
    )
    saved = CardSettings.objects.get(store=store1)
    assert (saved.replacement_fee_fen, saved.allow_balance_transfer, saved.require_payment_auth) == (1000, True, True)
    assert AuditLog.objects.filter(action="cards.settings_set").count() == 1
    _refused(
        "cards.invalid_fee",
        card_settings_set,
        actor=hq,
        store=store1,
        replacement_fee=Money(-1),
        allow_balance_transfer=True,
        require_payment_auth=True,
    )


def test_replacement_with_a_fee_needs_a_tender(cashier, member, store_rules):
    store_rules(fee="10.00")
    card = card_issue(actor=cashier, member=member, idempotency_key="k1")
    error = _refused("cards.fee_tender_required", card_replace, actor=cashier, card=card, idempotency_key="r1")
    assert error.extra["fee"] == "10.00"
    card.refresh_from_db()
    assert card.status == CardStatus.ACTIVE and not Journal.objects.filter(code="cards.replace_fee").exists()


def test_a_replaced_card_cannot_be_replaced_again(cashier, member):
    card = card_issue(actor=cashier, member=member, idempotency_key="k1")
    card_replace(actor=cashier, card=card, idempotency_key="r1")
    _refused("card.replaced", card_replace, actor=cashier, card=card, idempotency_key="r2")


# --- Transfer and closing -----------------------------------------------------------------------------------


def test_transfer_only_where_the_store_allows_it(boss, cashier, member, make_member, store1, recharge, store_rules):
    card = card_issue(actor=cashier, member=member, idempotency_key="k1")
    friend = make_member(store1)
    recharge(member, "500.00")
    _refused(
        "card.transfer_not_allowed",
        card_transfer_balance,
        actor=boss,
        card=card,
        target=friend,
        idempotency_key="t1",
        reason="转给朋友",
    )
    store_rules(transfer=True)
    _refused(
        "auth.permission_denied",
        card_transfer_balance,
        actor=cashier,
        card=card,
        target=friend,
        idempotency_key="t1",
        reason="转给朋友",
    )
    journal = card_transfer_balance(actor=boss, card=card, target=friend, idempotency_key="t1", reason="转给朋友")
    assert journal.code == "wallet.transfer"
    assert wallet_balance(member).total.fen == 0 and wallet_balance(friend).principal.fen == 50000
    assert AuditLog.objects.filter(action="cards.transfer").count() == 1


def test_close_pays_out_and_the_number_never_works_again(boss, cashier, member, recharge):
    card = card_issue(actor=cashier, member=member, idempotency_key="k1")
    recharge(member, "200.00")
    closure = card_close(actor=boss, card=card, tender="cash", idempotency_key="c1", reason="会员退卡")
    assert closure is not None and closure.principal_fen == 20000
    card.refresh_from_db()
    assert card.status == CardStatus.CLOSED and card.closed_at is not None
    assert wallet_balance(member).total.fen == 0
    _refused("card.closed", card_for_number, actor=cashier, number=card.number)
    again = card_close(actor=boss, card=card, tender="cash", idempotency_key="c1", reason="会员退卡")
    assert again == closure
    _refused("card.closed", card_close, actor=boss, card=card, tender="cash", idempotency_key="c2", reason="x")


def test_close_an_empty_card(boss, cashier, member):
    card = card_issue(actor=cashier, member=member, idempotency_key="k1")
    assert card_close(actor=boss, card=card, tender="cash", idempotency_key="c1", reason="不用了") is None
    card.refresh_from_db()
    assert card.status == CardStatus.CLOSED
    # a new card may be issued afterwards
    assert card_issue(actor=cashier, member=member, idempotency_key="k2").status == CardStatus.ACTIVE


# --- Import -------------------------------------------------------------------------------------------------------


def test_import_dry_run_then_real(cashier, member, make_member, store1, product):
    other = make_member(store1, phone="13900001111")
    live = card_issue(actor=cashier, member=other, idempotency_key="k1")
    text = f"旧卡号,会员,卡种\nOLD-0001,13800135678,gold\nOLD-0002,{other.member_no},\nOLD-0003,13800135678,gold\n"
    preview = cards_import(cashier, text, dry_run=True)
    assert preview.ok and preview.cards_created == 1 and preview.aliases_created == 3
    assert [(r.line, r.old_number, r.card_number) for r in preview.rows] == [
        (2, "OLD-0001", ""),
        (3, "OLD-0002", live.number),
        (4, "OLD-0003", ""),
    ]
    assert not CardAlias.objects.exists()

    result = cards_import(cashier, text, dry_run=False)
    assert result.cards_created == 1 and result.aliases_created == 3
    new = MemberCard.objects.get(member=member)
    assert new.product == product
    assert card_for_number(cashier, "old-0001") == new == card_for_number(cashier, "OLD-0003")
    assert card_for_number(cashier, "OLD-0002") == live
    assert AuditLog.objects.filter(action="cards.import").count() == 1


def test_import_reports_each_bad_row_and_writes_nothing(cashier, member, product):
    card_issue(actor=cashier, member=member, medium="physical", number="TAKEN1", idempotency_key="k1")
    text = "OLD-1,13800135678,gold\nOLD-1,13800135678,gold\nTAKEN1,13800135678,gold\nOLD-4,19999999999,gold\nOLD-5,13800135678,nope\n#!,13800135678\nonly-one\n"
    preview = cards_import(cashier, text, dry_run=True)
    found = [(e.line, e.column, e.code) for e in preview.errors]
    assert found == [
        (2, "old_number", "cards.import_duplicate"),
        (3, "old_number", "card.number_taken"),
        (4, "member", "member.not_found"),
        (5, "product_code", "card.product_not_found"),
        (6, "old_number", "card.invalid_number"),
        (7, "", "cards.import_columns"),
    ]
    assert "第 4 行" in preview.errors[2].zh and "line 4" in preview.errors[2].en
    error = _refused("cards.import_invalid", cards_import, actor=cashier, csv_text=text, dry_run=False)
    assert len(error.extra["errors"]) == 6
    assert not CardAlias.objects.exists() and MemberCard.objects.count() == 1


# --- Merge and export -----------------------------------------------------------------------------------------------


def test_merge_moves_cards_and_retires_the_second_live_card(cashier, hq, member, make_member, store1):
    twin = make_member(store1)
    mine = card_issue(actor=cashier, member=member, idempotency_key="k1")
    hers = card_issue(actor=cashier, member=twin, idempotency_key="k2")
    member_merge(actor=hq, survivor=member, merged=twin)
    hers.refresh_from_db()
    assert hers.member == member and hers.status == CardStatus.REPLACED and hers.replaced_by == mine
    error = _refused("card.replaced", card_for_number, actor=cashier, number=hers.number)
    assert error.extra["replaced_by"] == mine.number


def test_merge_moves_a_live_card_to_a_survivor_without_one(cashier, hq, member, make_member, store1):
    twin = make_member(store1)
    hers = card_issue(actor=cashier, member=twin, idempotency_key="k2")
    member_merge(actor=hq, survivor=member, merged=twin)
    assert card_for_number(cashier, hers.number).member == member


def test_export_lists_cards_never_the_password(cashier, hq, member, codes):
    card = card_issue(actor=cashier, member=member, idempotency_key="k1")
    payment_code_send(actor=cashier, member=member, purpose="password")
    payment_password_set(actor=cashier, member=member, password="135790", code=codes.last)
    data = member_export(actor=hq, member=member)
    assert data["cards"]["cards"][0]["number"] == card.number
    assert data["cards"]["payment_password_set"] is True
    assert "135790" not in str(data)


# --- Password and code rules ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("password", ["000000", "123456", "654321", "777777", "345678", "135678", "12345", "abcdef"])
def test_trivial_or_malformed_passwords_are_refused_before_the_code_is_used(cashier, member, codes, password):
    payment_code_send(actor=cashier, member=member, purpose="password")
    error = _refused(
        "cards.password_trivial" if password.isdigit() and len(password) == 6 else "cards.password_invalid",
        payment_password_set,
        actor=cashier,
        member=member,
        password=password,
        code=codes.last,
    )
    assert error.field == "password"
    assert PaymentCode.objects.get().used_at is None


def test_setting_needs_a_valid_code_for_that_purpose(cashier, member, codes, clock):
    _refused("cards.code_required", payment_password_set, actor=cashier, member=member, password="135790", code="")
    payment_code_send(actor=cashier, member=member, purpose="payment")
    _refused("cards.code_wrong", payment_password_set, actor=cashier, member=member, password="135790", code=codes.last)
    assert not payment_auth_required(member, None)
    clock.advance(seconds=61)
    payment_code_send(actor=cashier, member=member, purpose="password")
    payment_password_set(actor=cashier, member=member, password="135790", code=codes.last)
    assert payment_auth_required(member, None)
    state = PaymentPassword.objects.get(member=member)
    assert state.password_hash and "135790" not in state.password_hash
    assert AuditLog.objects.filter(action="cards.payment_password_set").get().detail == {"reset": False}


def test_a_code_allows_five_wrong_tries(cashier, member, codes):
    payment_code_send(actor=cashier, member=member, purpose="password")
    for _ in range(5):
        _refused(
            "cards.code_wrong", payment_password_set, actor=cashier, member=member, password="135790", code="000001"
        )
    _refused("cards.code_wrong", payment_password_set, actor=cashier, member=member, password="135790", code=codes.last)


def test_codes_are_rate_limited(cashier, member, codes, clock):
    payment_code_send(actor=cashier, member=member, purpose="payment")
    error = _refused("cards.code_too_soon", payment_code_send, actor=cashier, member=member, purpose="payment")
    assert 0 < error.extra["retry_after"] <= 60
    for _ in range(9):
        clock.advance(seconds=61)
        payment_code_send(actor=cashier, member=member, purpose="payment")
    clock.advance(seconds=61)
    _refused("cards.code_daily_limit", payment_code_send, actor=cashier, member=member, purpose="payment")
    clock.advance(days=1)
    payment_code_send(actor=cashier, member=member, purpose="payment")


def test_a_new_code_replaces_the_previous_one(cashier, member, codes, clock, store_rules):
    store_rules(require_auth=True)
    payment_code_send(actor=cashier, member=member, purpose="payment")
    first = codes.last
    clock.advance(seconds=61)
    payment_code_send(actor=cashier, member=member, purpose="payment")
    _refused("wallet.payment_code_wrong", stored_value_authorize, actor=cashier, member=member, code=first)
    stored_value_authorize(actor=cashier, member=member, code=codes.last)


# --- Job ----------------------------------------------------------------------------------------------------------


def test_codes_purge_wipes_expired_codes_and_deletes_old_ones(cashier, member, codes, clock):
    from datetime import timedelta

    from django.core.management import call_command

    first = payment_code_send(actor=cashier, member=member, purpose="payment")
    clock.advance(minutes=6)
    second = payment_code_send(actor=cashier, member=member, purpose="password")
    PaymentCode.objects.filter(pk=first.pk).update(created_at=clock.now - timedelta(days=40), code_sealed="123456")
    from meiye.cards.services import payment_codes_purge_due

    today = clock.now.date()
    assert payment_codes_purge_due(on=today) == 2  # first: wiped (expired) and deleted (40 days old)
    assert list(PaymentCode.objects.values_list("pk", flat=True)) == [second.pk]
    assert PaymentCode.objects.get().code_sealed == codes.last  # still valid: kept for its SMS
    assert payment_codes_purge_due(on=today) == 0
    call_command("payment_codes_purge", "--date", today.isoformat())
