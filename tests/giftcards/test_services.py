"""Gift cards (礼品卡): selling (exact ledger legs), the code kept encrypted, the checkout's checks, single and
multiple use, refunds back to a card, void, and the expiry job (idempotent, breakage exact)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection

from meiye.audit.models import AuditLog
from meiye.core.errors import ApplicationError
from meiye.core.money import Money
from meiye.giftcards.models import GiftCard, GiftCardSale, GiftCardStatus, GiftCardUse
from meiye.giftcards.selectors import CODE_ALPHABET, format_code, gift_card_balance, gift_card_uses_for_bill, gift_cards
from meiye.giftcards.services import (
    gift_card_check,
    gift_card_for_code,
    gift_card_void,
    gift_cards_expire_due,
)
from meiye.ledger.models import Journal
from meiye.org.context import Actor
from meiye.org.roles import Position
from tests.factories import OrganisationFactory, StaffFactory, StoreFactory
from tests.giftcards.conftest import legs_of, store_balance


def _journal(code: str) -> Journal:
    return Journal.objects.get(code=code)


# --- selling ---------------------------------------------------------------------------------------------------


def test_a_face_500_card_sold_for_450_posts_exact_legs(sell, store1, receptionist):
    # when
    [card] = sell("500.00", "450.00", tender="wechat", external_ref="WX-1")

    # then: one giftcards.sell journal
    journal = _journal("giftcards.sell")
    assert legs_of(journal) == sorted(
        [
            ("store", store1.pk, "tender_wechat", -45_000),
            ("store", store1.pk, "gift_card_discount", -5_000),
            ("giftcard", card.pk, "gift_card", 50_000),
        ]
    )
    assert journal.store_id == store1.pk and journal.staff_id == receptionist.pk
    assert gift_card_balance(card) == Money(50_000)
    assert store_balance(store1, "tender_wechat") == -45_000
    assert store_balance(store1, "gift_card_discount") == -5_000
    card.refresh_from_db()
    assert (card.face_fen, card.price_fen, card.status, card.multi_use) == (50_000, 45_000, "active", True)
    assert card.store_id == store1.pk and card.sold_by_id == receptionist.pk and card.external_ref == "WX-1"
    audit = AuditLog.objects.get(action="giftcards.sell")
    assert audit.detail["cards"] == [card.masked_code]
    assert card.code not in str(audit.detail) and card.code not in audit.object_repr


def test_selling_three_at_face_value_has_no_discount_leg(sell, store1):
    cards = sell("200.00", quantity=3, tender="cash")

    assert len(cards) == 3
    assert len({card.code for card in cards}) == 3
    for card in cards:
        assert len(card.code) == 16 and set(card.code) <= set(CODE_ALPHABET)
    assert legs_of(_journal("giftcards.sell")) == sorted(
        [("store", store1.pk, "tender_cash", -60_000)] + [("giftcard", c.pk, "gift_card", 20_000) for c in cards]
    )
    assert store_balance(store1, "gift_card_discount") == 0


def test_a_replay_returns_the_same_cards_and_another_body_is_refused(sell):
    first = sell("500.00", "450.00", idempotency_key="k1")
    again = sell("500.00", "450.00", idempotency_key="k1")

    assert [c.pk for c in again] == [c.pk for c in first]
    assert again[0].code == first[0].code
    assert GiftCard.objects.count() == 1 and Journal.objects.filter(code="giftcards.sell").count() == 1
    with pytest.raises(ApplicationError) as refused:
        sell("500.00", "400.00", idempotency_key="k1")
    assert refused.value.code == "idempotency.key_reused"
    assert GiftCard.objects.count() == 1


@pytest.mark.parametrize(
    ("face", "price", "extra", "code", "field"),
    [
        ("500.00", "500.01", {}, "giftcard.invalid_price", "price"),
        ("0.00", "0.00", {}, "giftcard.invalid_face", "face"),
        ("500.00", "0.00", {}, "giftcard.invalid_price", "price"),
        ("500.00", "450.00", {"quantity": 0}, "giftcard.invalid_quantity", "quantity"),
        ("500.00", "450.00", {"quantity": 101}, "giftcard.invalid_quantity", "quantity"),
        ("500.00", "450.00", {"tender": "bitcoin"}, "giftcard.invalid_tender", "tender"),
        ("500.00", "450.00", {"external_ref": "x" * 65}, "input.too_long", "external_ref"),
    ],
)
def test_a_refused_sale_writes_nothing(sell, face, price, extra, code, field):
    with pytest.raises(ApplicationError) as refused:
        sell(face, price, **extra)

    assert (refused.value.code, refused.value.field) == (code, field)
    assert refused.value.message_zh and refused.value.message_en
    assert not GiftCard.objects.exists() and not GiftCardSale.objects.exists() and not Journal.objects.exists()


def test_expiry_before_today_is_refused_and_today_is_allowed(sell, today):
    with pytest.raises(ApplicationError) as refused:
        sell(expires_on=today - timedelta(days=1))
    assert refused.value.code == "giftcard.invalid_expiry"
    assert not GiftCard.objects.exists()
    assert sell(expires_on=today)[0].expires_on == today


def test_a_beautician_may_not_sell(sell, beautician, actor_for):
    with pytest.raises(ApplicationError) as refused:
        sell(actor=actor_for(beautician))
    assert refused.value.code == "auth.permission_denied"
    assert not GiftCard.objects.exists()


def test_buyer_is_recorded(sell, make_member, store1):
    buyer = make_member(store1, name="王女士")
    [card] = sell(buyer=buyer)
    assert card.buyer_id == buyer.pk and card.sale.buyer_id == buyer.pk


# --- the code -----------------------------------------------------------------------------------------------


def test_the_code_is_not_stored_in_plaintext(sell):
    [card] = sell()
    table = connection.ops.quote_name(GiftCard._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT code, code_index FROM {table} WHERE id = %s", [card.pk])  # noqa: S608
        raw_code, raw_index = cursor.fetchone()

    assert raw_code.startswith("v1.")
    assert card.code not in raw_code
    assert card.code not in raw_index and len(raw_index) == 64
    assert GiftCard.objects.get(pk=card.pk).code == card.code  # decrypted on read
    assert card.masked_code == f"****-****-****-{card.code[-4:]}"
    assert str(card) == f"GiftCard#{card.pk} ****-****-****-{card.code[-4:]}"


def test_found_by_code_however_it_is_typed(sell, cashier):
    [card] = sell()
    typed = format_code(card.code).lower()  # "abcd-efgh-..." with dashes, lower case
    assert gift_card_for_code(cashier, typed).pk == card.pk
    assert gift_card_for_code(cashier, f"  {card.code} ").pk == card.pk


def test_unknown_code_and_another_organisations_code_are_the_same_not_found(sell, cashier):
    other_org = OrganisationFactory(code="other", name="别家")
    other_store = StoreFactory(organisation=other_org)
    other_staff = StaffFactory(organisation=other_org, position=Position.RECEPTIONIST, stores=[other_store])
    [theirs] = sell(actor=Actor(staff=other_staff, organisation=other_org, store=other_store))

    errors = []
    for code in (theirs.code, "0000000000000000", "nonsense"):
        with pytest.raises(ApplicationError) as refused:
            gift_card_for_code(cashier, code)
        errors.append((refused.value.code, refused.value.message_en))
    assert errors == [errors[0]] * 3
    assert errors[0][0] == "giftcard.not_found"


def test_a_beautician_may_not_look_a_code_up(sell, beautician, actor_for):
    [card] = sell()
    with pytest.raises(ApplicationError) as refused:
        gift_card_for_code(actor_for(beautician), card.code)
    assert refused.value.code == "auth.permission_denied"


# --- redemption checks ------------------------------------------------------------------------------------------


def test_checks_refuse_expired_insufficient_and_allow_the_last_day(sell, today):
    [card] = sell("500.00", "450.00", expires_on=today + timedelta(days=10))
    last_day = today + timedelta(days=10)

    gift_card_check(card, 50_000, last_day)  # the whole card on its last day
    with pytest.raises(ApplicationError) as expired:
        gift_card_check(card, 100, last_day + timedelta(days=1))
    assert expired.value.code == "giftcard.expired"
    with pytest.raises(ApplicationError) as short:
        gift_card_check(card, 50_001, today)
    assert short.value.code == "giftcard.insufficient"
    assert short.value.extra["balance"] == "500.00" and short.value.extra["balance_fen"] == 50_000
    with pytest.raises(ApplicationError) as short_locked:
        gift_card_check(card, 30_001, today, balance_fen=30_000)
    assert short_locked.value.extra["balance_fen"] == 30_000
    with pytest.raises(ApplicationError) as zero:
        gift_card_check(card, 0, today)
    assert zero.value.code == "giftcard.invalid_amount"


def test_a_multi_use_card_pays_several_bills_until_used_up(sell, pay, store1, today):
    [card] = sell("500.00", "450.00")

    assert pay(card, 20_000, bill_id=101, cash_fen=5_000) == 30_000
    card.refresh_from_db()
    assert card.status == GiftCardStatus.ACTIVE
    assert pay(card, 30_000, bill_id=102) == 0

    card.refresh_from_db()
    assert card.status == GiftCardStatus.USED_UP
    assert gift_card_balance(card) == Money(0)
    assert [(u.bill_id, u.amount_fen, u.reversed) for u in card.uses.order_by("id")] == [
        (101, 20_000, False),
        (102, 30_000, False),
    ]
    # the bill's journal: card −200.00, cash −50.00, revenue +250.00 (a gift card earns nothing: no PTS journal)
    bill = Journal.objects.get(code="sales.bill", reference_id="101")
    assert legs_of(bill) == sorted(
        [
            ("giftcard", card.pk, "gift_card", -20_000),
            ("store", store1.pk, "tender_cash", -5_000),
            ("store", store1.pk, "revenue", 25_000),
        ]
    )
    assert store_balance(store1, "revenue") == 55_000
    with pytest.raises(ApplicationError) as used:
        gift_card_check(card, 100, today)
    assert used.value.code == "giftcard.used_up"


def test_a_single_use_card_is_used_once_and_its_rest_goes_to_breakage(sell, pay, store1, today):
    [card] = sell("500.00", "450.00", multi_use=False)

    assert pay(card, 32_000, bill_id=201) == 18_000

    card.refresh_from_db()
    assert card.status == GiftCardStatus.USED_UP
    assert gift_card_balance(card) == Money(0)
    breakage = _journal("giftcards.breakage")
    assert legs_of(breakage) == sorted(
        [("giftcard", card.pk, "gift_card", -18_000), ("store", store1.pk, "gift_card_breakage", 18_000)]
    )
    assert store_balance(store1, "gift_card_breakage") == 18_000
    with pytest.raises(ApplicationError) as again:
        gift_card_check(card, 100, today, balance_fen=18_000)
    assert again.value.code == "giftcard.used_up"


def test_a_single_use_card_spent_whole_sends_nothing_to_breakage(sell, pay):
    [card] = sell("300.00", multi_use=False)
    pay(card, 30_000, bill_id=202)
    card.refresh_from_db()
    assert card.status == GiftCardStatus.USED_UP
    assert not Journal.objects.filter(code="giftcards.breakage").exists()


def test_an_insufficient_card_writes_nothing(sell, pay):
    [card] = sell("100.00")
    with pytest.raises(ApplicationError) as refused:
        pay(card, 10_001, bill_id=301)
    assert refused.value.code == "giftcard.insufficient"
    assert not GiftCardUse.objects.exists() and not Journal.objects.filter(code="sales.bill").exists()
    assert gift_card_balance(card) == Money(10_000)


# --- refunds back to the card -------------------------------------------------------------------------------------


def test_a_refund_reactivates_a_used_up_card(sell, pay, refund, store1):
    [card] = sell("500.00", "450.00")
    pay(card, 50_000, bill_id=401)

    refunded = refund(card, 12_000, bill_id=401)

    assert refunded.status == GiftCardStatus.ACTIVE
    assert gift_card_balance(card) == Money(12_000)
    use = GiftCardUse.objects.get(bill_id=401)
    assert (use.refunded_fen, use.reversed) == (12_000, False)
    refund(card, 38_000, bill_id=401)
    use.refresh_from_db()
    assert (use.refunded_fen, use.reversed) == (50_000, True)
    assert gift_card_balance(card) == Money(50_000)
    assert store_balance(store1, "revenue") == 0


def test_a_refund_larger_than_the_use_is_refused(sell, pay, cashier):
    from django.db import transaction

    from meiye.giftcards.services import gift_card_after_refund

    [card] = sell("500.00")
    pay(card, 10_000, bill_id=402)
    with pytest.raises(ApplicationError) as refused, transaction.atomic():
        gift_card_after_refund(actor=cashier, bill_id=402, amount_fen=10_001)
    assert refused.value.code == "giftcard.refund_exceeds_use"
    assert GiftCardUse.objects.get(bill_id=402).refunded_fen == 0
    assert gift_card_uses_for_bill(organisation_id=card.organisation_id, bill_id=402)[0].card_id == card.pk


def test_refunding_a_single_use_card_in_full_makes_it_whole_again(sell, pay, refund, store1):
    [card] = sell("500.00", "450.00", multi_use=False)
    pay(card, 32_000, bill_id=403)

    refunded = refund(card, 32_000, bill_id=403)

    assert refunded.status == GiftCardStatus.ACTIVE
    assert gift_card_balance(card) == Money(50_000)
    assert store_balance(store1, "gift_card_breakage") == 0
    reversal = _journal("giftcards.breakage.reversal")
    assert legs_of(reversal) == sorted(
        [("giftcard", card.pk, "gift_card", 18_000), ("store", store1.pk, "gift_card_breakage", -18_000)]
    )
    # and it can be used once again
    assert pay(card, 50_000, bill_id=404) == 0


def test_a_refund_to_an_expired_card_leaves_it_expired_for_the_job(sell, pay, refund, cashier, today, store1):
    [card] = sell("500.00", expires_on=today)
    pay(card, 50_000, bill_id=405)
    GiftCard.objects.filter(pk=card.pk).update(expires_on=today - timedelta(days=1))  # a day has passed

    assert refund(card, 50_000, bill_id=405).status == GiftCardStatus.EXPIRED
    assert gift_cards_expire_due(on=today) == 50_000
    assert store_balance(store1, "gift_card_breakage") == 50_000


# --- void ---------------------------------------------------------------------------------------------------


def test_void_takes_an_unused_card_back_through_its_tender(sell, boss, store1):
    [card, keep] = sell("500.00", "450.00", quantity=2, tender="alipay")

    voided = gift_card_void(actor=boss, card=card, reason="收银员多售一张", idempotency_key="v1")

    assert voided.status == GiftCardStatus.VOID and voided.void_reason == "收银员多售一张"
    assert legs_of(_journal("giftcards.void")) == sorted(
        [
            ("giftcard", card.pk, "gift_card", -50_000),
            ("store", store1.pk, "tender_alipay", 45_000),
            ("store", store1.pk, "gift_card_discount", 5_000),
        ]
    )
    assert store_balance(store1, "tender_alipay") == -45_000
    assert store_balance(store1, "gift_card_discount") == -5_000
    assert gift_card_balance(keep) == Money(50_000)
    assert AuditLog.objects.filter(action="giftcards.void", object_id=str(card.pk)).count() == 1
    # replay: the same card back, nothing more written
    assert gift_card_void(actor=boss, card=card, reason="收银员多售一张", idempotency_key="v1").pk == card.pk
    assert Journal.objects.filter(code="giftcards.void").count() == 1
    with pytest.raises(ApplicationError) as again:
        gift_card_void(actor=boss, card=card, reason="x", idempotency_key="v2")
    assert again.value.code == "giftcard.void"
    with pytest.raises(ApplicationError) as void:
        gift_card_check(voided, 100, voided.expires_on)
    assert void.value.code == "giftcard.void"


def test_void_needs_money_adjust_a_reason_and_an_unused_card(sell, pay, boss, cashier):
    [card] = sell("500.00")
    with pytest.raises(ApplicationError) as cashier_refused:
        gift_card_void(actor=cashier, card=card, reason="x", idempotency_key="v1")
    assert cashier_refused.value.code == "auth.permission_denied"
    with pytest.raises(ApplicationError) as no_reason:
        gift_card_void(actor=boss, card=card, reason=" ", idempotency_key="v1")
    assert (no_reason.value.code, no_reason.value.field) == ("input.required", "reason")
    pay(card, 100, bill_id=501)
    with pytest.raises(ApplicationError) as used:
        gift_card_void(actor=boss, card=card, reason="x", idempotency_key="v1")
    assert used.value.code == "giftcard.already_used"
    card.refresh_from_db()
    assert card.status == GiftCardStatus.ACTIVE
    assert not Journal.objects.filter(code="giftcards.void").exists()


# --- expiry -------------------------------------------------------------------------------------------------------


def test_expiry_job_moves_what_is_left_to_breakage_once(sell, pay, store1, store2, today, hq_admin, actor_for):
    [partly] = sell("500.00", "450.00", expires_on=today)
    [whole] = sell("300.00", expires_on=today)
    [later] = sell("200.00", expires_on=today + timedelta(days=1))
    [other_store] = sell("100.00", expires_on=today, actor=actor_for(hq_admin, store2))
    pay(partly, 12_000, bill_id=601)  # 380.00 left

    # the last day is still valid
    assert gift_cards_expire_due(on=today) == 0
    assert not Journal.objects.filter(code="giftcards.expire").exists()

    # the day after: 380.00 + 300.00 in store 1, 100.00 in store 2
    assert gift_cards_expire_due(on=today + timedelta(days=1)) == 78_000
    assert store_balance(store1, "gift_card_breakage") == 68_000
    assert store_balance(store2, "gift_card_breakage") == 10_000
    expire = Journal.objects.get(code="giftcards.expire", reference_id=str(partly.pk))
    assert legs_of(expire) == sorted(
        [("giftcard", partly.pk, "gift_card", -38_000), ("store", store1.pk, "gift_card_breakage", 38_000)]
    )
    statuses = dict(GiftCard.objects.values_list("pk", "status"))
    assert statuses == {partly.pk: "expired", whole.pk: "expired", later.pk: "active", other_store.pk: "expired"}

    # running again changes nothing
    assert gift_cards_expire_due(on=today + timedelta(days=1)) == 0
    assert Journal.objects.filter(code="giftcards.expire").count() == 3
    assert store_balance(store1, "gift_card_breakage") == 68_000


def test_expiry_marks_a_used_up_card_no_more_and_skips_void_cards(sell, pay, boss, today):
    [used] = sell("100.00", expires_on=today)
    [voided] = sell("100.00", expires_on=today)
    pay(used, 10_000, bill_id=701)
    gift_card_void(actor=boss, card=voided, reason="错卖", idempotency_key="v")

    assert gift_cards_expire_due(on=today + timedelta(days=1)) == 0
    assert dict(GiftCard.objects.values_list("pk", "status")) == {used.pk: "used_up", voided.pk: "void"}


def test_expiry_of_one_organisation_only(sell, today, org):
    [card] = sell("100.00", expires_on=today)
    assert gift_cards_expire_due(on=today + timedelta(days=1), organisation_id=org.pk + 1000) == 0
    assert gift_cards_expire_due(on=today + timedelta(days=1), organisation_id=org.pk) == 10_000
    card.refresh_from_db()
    assert card.status == GiftCardStatus.EXPIRED


# --- the list is store-scoped --------------------------------------------------------------------------------------


def test_list_shows_the_cards_of_visible_stores(sell, hq_admin, actor_for, store2, receptionist2, cashier):
    [mine] = sell()
    [theirs] = sell(actor=actor_for(hq_admin, store2))
    assert [c.pk for c in gift_cards(cashier)] == [mine.pk]
    assert [c.pk for c in gift_cards(actor_for(receptionist2, store2))] == [theirs.pk]
    assert {c.pk for c in gift_cards(actor_for(hq_admin))} == {mine.pk, theirs.pk}


def test_the_command_expires_a_given_day(sell, pay, today, store1):
    from io import StringIO

    from django.core.management import call_command

    [card] = sell("500.00", "450.00", expires_on=today)
    pay(card, 12_000, bill_id=801)
    out = StringIO()

    call_command("gift_cards_expire", "--date", (today + timedelta(days=1)).isoformat(), stdout=out)
    call_command("gift_cards_expire", "--date", (today + timedelta(days=1)).isoformat(), stdout=StringIO())

    assert "1 cards, 380.00 to breakage" in out.getvalue()
    assert store_balance(store1, "gift_card_breakage") == 38_000
    assert Journal.objects.filter(code="giftcards.expire").count() == 1


def test_the_periodic_task_is_registered():
    from meiye.giftcards import tasks

    assert callable(tasks.gift_cards_expire_task)
