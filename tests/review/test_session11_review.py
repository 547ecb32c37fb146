# ruff: noqa: F811 - the API and package fixtures are imported into this module
"""Review of session 11: the API idempotency layer looks its record up only after a failure (9539031), and the
one-shot checkout earns by the process's copy of the earning rules, keyed by a version read with the store
(792ce27).

The review found three defects of 9539031, mended in the commit that followed it (the layer now looks its record
up first for every handler but the one-shot checkout, which opted out; see ``api.idempotency``), and pinned here:

- the approval PIN is taken out of the body (``detach_approval_pins``) before the layer decides whether the body
  carries a typed secret, so a repeat of a PIN-approved sale ran ``approval_pin_check`` again: its count of
  wrong PINs lives in the cache and outlives the rollback (repeats locked the manager out, or reset her count);
- a repeat of ``PUT /rules/`` wrote its rolled-back rules into the shared rules cache (``rules_config`` reads
  the row inside the transaction), so ``bill_complete``, check-ins and ``GET /rules/`` used stale rules;
- a service whose own replay check compares what it derives from today's state (the store-local day, the
  default card product) answered ``idempotency.key_reused`` to a repeat of the same HTTP request, and the layer
  re-raised that code without looking its record up: 409 instead of the first answer."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.db import OperationalError, transaction
from django.utils import timezone
from rest_framework.response import Response

from meiye.api.idempotency import run_idempotent
from meiye.audit.models import AuditLog
from meiye.core.idempotency import idempotency_purge
from meiye.core.models import IdempotencyRecord
from meiye.core.money import Money
from meiye.loyalty import rules as loyalty_rules
from meiye.loyalty.models import RulesSettings
from meiye.loyalty.rules import rules_config, rules_settings_save
from meiye.loyalty.selectors import local_today
from meiye.members.models import Member
from meiye.org.services import approval_pin_check
from meiye.packages.models import SessionUse
from meiye.sales.models import Bill
from meiye.sales.services import (
    LineInput,
    TenderInput,
    _checkout_store_and_config,
    bill_add_line,
    bill_checkout,
    bill_complete,
    bill_open,
)
from meiye.wallet.models import Recharge
from meiye.wallet.services import CardProductInput, card_product_save
from tests.api.conftest import client_for, hq_api, reception_api, token_for  # noqa: F401 - fixtures
from tests.api.conftest_sales import (  # noqa: F401 - fixtures
    api_manager_pin,
    care,
    cashier_actor,
    hq_actor,
    manager_api,
    ref_categories,
    ref_items,
    setup_keys,
    shopper,
    top_up,
)
from tests.packages.conftest import cashier, facial_card, hq, sell, services  # noqa: F401 - fixtures
from tests.sales.support import balances, sales_state

pytestmark = pytest.mark.usefixtures("fresh_rules_cache")

ONE_SHOT = "/api/v1/bills/checkout/"
BILLS = "/api/v1/bills/"
MEMBERS = "/api/v1/members/"
RULES = "/api/v1/rules/"
WRONG_PIN = "0000"
ZONE = ZoneInfo("Asia/Shanghai")


def _post(client, url, body, key):  # type: ignore[no-untyped-def]
    return client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def _pin_failures(staff) -> Any:  # type: ignore[no-untyped-def]
    return cache.get(f"meiye:approval-pin-failures:{staff.pk}")


def _at(day: date) -> Any:
    return mock.patch("django.utils.timezone.now", return_value=datetime.combine(day, time(12), tzinfo=ZONE))


def _approved_sale(member, care, manager, pin: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """480.00 for 600.00: 80% of the member price, below the 95% floor, so the manager's PIN is checked."""
    return {
        "member_id": member.pk,
        "lines": [{"item_id": care.pk, "unit_price": "480.00", "approver_id": manager.pk, "approval_pin": pin}],
        "tenders": [{"kind": "wechat", "amount": "480.00", "external_ref": "wx-480"}],
    }


# --- 9539031: a repeat runs its work again — the approval PIN -------------------------------------------------


def test_repeats_of_an_approved_checkout_with_a_mistyped_pin_do_not_lock_the_manager_out(
    reception_api, shopper, care, manager, api_manager_pin
):
    # given: a sale the manager approved with her PIN
    first = _post(reception_api, ONE_SHOT, _approved_sale(shopper, care, manager, api_manager_pin), "pin-sale")
    assert first.status_code == 201, first.json()
    state = sales_state()

    # when: the till repeats it five times, the PIN mistyped (the PIN is not part of the fingerprint)
    for _ in range(5):
        again = _post(reception_api, ONE_SHOT, _approved_sale(shopper, care, manager, WRONG_PIN), "pin-sale")
        assert (again.status_code, again["Idempotent-Replayed"]) == (201, "true")
        assert again.json() == first.json()

    # then: nothing written, nothing counted against the manager — she can still approve the next sale
    assert sales_state() == state
    assert _pin_failures(manager) is None
    second = _post(reception_api, ONE_SHOT, _approved_sale(shopper, care, manager, api_manager_pin), "pin-sale-2")
    assert second.status_code == 201, second.json()


def test_a_repeat_of_an_approved_line_does_not_reset_the_managers_failed_pin_count(
    reception_api, shopper, care, manager, api_manager_pin
):
    bill = _post(reception_api, BILLS, {"member_id": shopper.pk}, "open-1").json()
    line = {"item_id": care.pk, "unit_price": "480.00", "approver_id": manager.pk, "approval_pin": api_manager_pin}
    first = _post(reception_api, f"{BILLS}{bill['id']}/lines/", line, "line-1")
    assert first.status_code == 201, first.json()
    # someone then guesses her PIN three times at the till
    for _ in range(3):
        assert approval_pin_check(staff=manager, pin=WRONG_PIN) is False
    assert _pin_failures(manager) == 3

    again = _post(reception_api, f"{BILLS}{bill['id']}/lines/", line, "line-1")

    assert (again.status_code, again["Idempotent-Replayed"]) == (201, "true")
    assert len(again.json()["lines"]) == 1
    assert _pin_failures(manager) == 3  # a replay writes nothing, not even the PIN count


# --- 9539031: a repeat runs its work again — the rules cache --------------------------------------------------


def _rules_round(hq_api) -> Any:  # type: ignore[no-untyped-def]
    """Rules saved with key r-1 (member day the 8th), then changed with key r-2 (the 9th); r-1 is repeated."""
    first_body = {"member_day": 8, "member_day_multiplier_bp": 20_000}
    first = hq_api.put(RULES, first_body, format="json", HTTP_IDEMPOTENCY_KEY="r-1")
    assert first.status_code == 200, first.json()
    assert hq_api.put(RULES, {"member_day": 9}, format="json", HTTP_IDEMPOTENCY_KEY="r-2").status_code == 200
    again = hq_api.put(RULES, first_body, format="json", HTTP_IDEMPOTENCY_KEY="r-1")
    assert (again.status_code, again["Idempotent-Replayed"], again.json()) == (200, "true", first.json())
    assert RulesSettings.objects.get().member_day == 9  # the repeat's save rolled back
    return again


def test_a_repeated_rules_save_leaves_no_rolled_back_rules_in_the_cache(hq_api, org):
    _rules_round(hq_api)

    assert rules_config(org.pk).member_day == 9
    assert hq_api.get(RULES).json()["member_day"] == 9


def test_after_a_repeated_rules_save_both_checkouts_earn_by_the_saved_rules(hq_api, cashier_actor, shopper, care):
    _rules_round(hq_api)
    wechat = [TenderInput(kind="wechat", amount=Money.parse("600.00"))]

    with _at(date(2026, 12, 9)):
        one_shot = bill_checkout(
            actor=cashier_actor, member=shopper, lines=[LineInput(item_id=care.pk)], tenders=wechat, idempotency_key="a"
        )
        opened = bill_open(actor=cashier_actor, member=shopper)
        bill_add_line(actor=cashier_actor, bill=opened, item=care)
        completed = bill_complete(actor=cashier_actor, bill=opened, tenders=wechat, idempotency_key="b")

    assert one_shot.points_earned == 1_200  # the 9th is the member day now: ×2
    assert completed.points_earned == 1_200


# --- 9539031: a service's own replay check answers key_reused to the same HTTP request -----------------------


def test_a_session_use_repeated_the_next_day_gets_the_first_answer(reception_api, sell, facial_card, shopper, store1):
    (package,) = sell(facial_card, shopper, on=local_today(store1))
    item = package.items.get()
    url = f"/api/v1/member-packages/{package.pk}/use/"
    first = _post(reception_api, url, {"member_item_id": item.pk, "sessions": 1}, "use-1")
    assert first.status_code == 201, first.json()

    with mock.patch("django.utils.timezone.now", return_value=timezone.now() + timedelta(days=1)):
        again = _post(reception_api, url, {"member_item_id": item.pk, "sessions": 1}, "use-1")

    # a 409 tells the client the key was used for another request: it retries with a new key, and uses twice
    assert (again.status_code, again.json()) == (201, first.json())
    assert SessionUse.objects.count() == 1


def test_a_recharge_repeated_after_a_default_product_was_set_gets_the_first_answer(manager_api, hq_actor, shopper):
    body = {"amount": "1000.00", "tender": "wechat", "external_ref": "wx-1000"}
    first = _post(manager_api, f"/api/v1/members/{shopper.pk}/wallet/recharge/", body, "rc-1")
    assert first.status_code == 201, first.json()
    card_product_save(actor=hq_actor, data=CardProductInput(code="gold", name="金卡", is_default=True))

    again = _post(manager_api, f"/api/v1/members/{shopper.pk}/wallet/recharge/", body, "rc-1")

    assert (again.status_code, again.json()) == (201, first.json())
    assert Recharge.objects.count() == 1


# --- 9539031: what holds -------------------------------------------------------------------------------------


def test_a_repeated_update_after_a_later_one_replays_and_keeps_the_later_change(reception_api, shopper):
    url = f"{MEMBERS}{shopper.pk}/"
    first = reception_api.patch(url, {"name": "王丽"}, format="json", HTTP_IDEMPOTENCY_KEY="u-1")
    assert first.status_code == 200, first.json()
    assert reception_api.patch(url, {"name": "李娜"}, format="json", HTTP_IDEMPOTENCY_KEY="u-2").status_code == 200
    audits = AuditLog.objects.count()

    # the repeat's work succeeds (it renames her again), then clashes on the record's key and rolls back
    again = reception_api.patch(url, {"name": "王丽"}, format="json", HTTP_IDEMPOTENCY_KEY="u-1")

    assert (again.status_code, again["Idempotent-Replayed"], again.json()) == (200, "true", first.json())
    assert Member.objects.get(pk=shopper.pk).name == "李娜"
    assert AuditLog.objects.count() == audits
    assert IdempotencyRecord.objects.filter(key__in=["u-1", "u-2"]).count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_repeat_whose_work_succeeds_clashes_at_commit_and_writes_nothing(client_for, receptionist, shopper):
    """Outermost transaction: on PostgreSQL the record's INSERT is queued with the COMMIT, and fails there."""
    api = client_for(receptionist)
    url = f"{MEMBERS}{shopper.pk}/"
    first = api.patch(url, {"name": "王丽"}, format="json", HTTP_IDEMPOTENCY_KEY="c-1")
    assert api.patch(url, {"name": "李娜"}, format="json", HTTP_IDEMPOTENCY_KEY="c-2").status_code == 200
    audits = AuditLog.objects.count()

    again = api.patch(url, {"name": "王丽"}, format="json", HTTP_IDEMPOTENCY_KEY="c-1")

    assert (again.status_code, again.json()) == (200, first.json())
    assert Member.objects.get(pk=shopper.pk).name == "李娜"
    assert AuditLog.objects.count() == audits
    # and the connection is usable at once
    assert api.patch(url, {"name": "张敏"}, format="json", HTTP_IDEMPOTENCY_KEY="c-3").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_repeated_checkout_at_commit_sends_no_second_notice(client_for, receptionist, shopper, care, top_up):
    top_up(shopper, "600.00")
    api = client_for(receptionist)
    body = {
        "member_id": shopper.pk,
        "lines": [{"item_id": care.pk}],
        "tenders": [{"kind": "stored_value", "amount": "600.00"}],
    }
    with mock.patch("meiye.sales.services.bill_notify_member") as notify:
        first = _post(api, ONE_SHOT, body, "n-1")
        assert first.status_code == 201, first.json()
        state = sales_state()
        again = _post(api, ONE_SHOT, body, "n-1")

    assert (again.status_code, again.json()) == (201, first.json())
    assert notify.call_count == 1
    assert sales_state() == state


def test_a_repeated_checkout_after_the_record_was_purged_still_charges_once(reception_api, shopper, care, top_up):
    top_up(shopper, "1200.00")
    body = {
        "member_id": shopper.pk,
        "lines": [{"item_id": care.pk}],
        "tenders": [{"kind": "stored_value", "amount": "600.00"}],
    }
    first = _post(reception_api, ONE_SHOT, body, "old-1")
    assert first.status_code == 201
    idempotency_purge(today=date.today() + timedelta(days=400))
    assert not IdempotencyRecord.objects.exists()
    state, wallet = sales_state(), balances(shopper)

    again = _post(reception_api, ONE_SHOT, body, "old-1")

    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert sales_state() == state
    assert balances(shopper) == wallet
    assert Bill.objects.count() == 1


def _request(org: Any, key: str = "k-1") -> Any:
    return SimpleNamespace(
        headers={"Idempotency-Key": key},
        data={"amount": "10.00"},
        method="POST",
        path="/api/v1/things/",
        user=SimpleNamespace(pk=7, organisation_id=org.pk),
    )


def test_a_failing_look_up_after_a_failed_work_keeps_the_works_error_as_its_context(org):
    """Latent: the look-up after any failure may itself fail; the work's error then only survives as context."""

    def broken() -> Response:
        raise LookupError("the work's own failure")

    failing = mock.patch("meiye.core.idempotency._RECORD.first", side_effect=OperationalError("look-up failed"))
    with failing, pytest.raises(OperationalError) as raised:
        run_idempotent(request=_request(org), call=broken, required=True, look_up_first=False)

    assert isinstance(raised.value.__context__, LookupError)


def test_a_non_object_answer_is_stored_and_replayed_as_it_was(org):
    def listed() -> Response:
        return Response([1, "两", None], status=201)

    def never() -> Response:
        return Response({"second": True}, status=201)

    first = run_idempotent(request=_request(org, "list-1"), call=listed, required=True)
    again = run_idempotent(request=_request(org, "list-1"), call=never, required=True)

    assert (first.status_code, first.data) == (201, [1, "两", None])
    assert (again.status_code, again.data, again["Idempotent-Replayed"]) == (201, [1, "两", None], "true")
    assert IdempotencyRecord.objects.count() == 1


# --- 792ce27: the earning rules from the process's copy ------------------------------------------------------


def _checkout_on(day: date, actor, member, item, tenders, key: str) -> Bill:  # type: ignore[no-untyped-def]
    with _at(day):
        return bill_checkout(
            actor=actor, member=member, lines=[LineInput(item_id=item.pk)], tenders=tenders, idempotency_key=key
        )


def _pay(actor, member, item, day: date) -> Bill:  # type: ignore[no-untyped-def]
    wechat = [TenderInput(kind="wechat", amount=Money(item.price_fen))]
    return _checkout_on(day, actor, member, item, wechat, uuid.uuid4().hex)


def test_the_store_read_carries_null_without_rules_zero_unstamped_and_the_stamp_after_a_save(cashier_actor, hq_actor):
    assert _checkout_store_and_config(cashier_actor)[1].rules_version is None

    saved = rules_settings_save(actor=hq_actor, member_day=8)
    assert _checkout_store_and_config(cashier_actor)[1].rules_version == saved.version > 0

    RulesSettings.objects.update(version=None)
    assert _checkout_store_and_config(cashier_actor)[1].rules_version == 0


def test_a_copy_made_inside_a_rolled_back_save_is_never_earned_by(cashier_actor, hq_actor, shopper, care):
    rules_settings_save(actor=hq_actor, member_day=8, member_day_multiplier_bp=20_000)
    assert _pay(cashier_actor, shopper, care, date(2026, 12, 8)).points_earned == 1_200

    with pytest.raises(RuntimeError), transaction.atomic():  # the save and the checkout roll back
        rules_settings_save(actor=hq_actor, member_day=9)
        assert _pay(cashier_actor, shopper, care, date(2026, 12, 9)).points_earned == 1_200  # copied here
        raise RuntimeError("rolled back")

    assert _pay(cashier_actor, shopper, care, date(2026, 12, 9)).points_earned == 600
    assert _pay(cashier_actor, shopper, care, date(2026, 12, 8)).points_earned == 1_200


def test_a_save_made_elsewhere_is_earned_by_a_process_holding_a_copy(cashier_actor, hq_actor, shopper, care, top_up):
    """Another process's save touches neither this process's copy nor (here) the cache: only the version moves."""
    rules_settings_save(actor=hq_actor, member_day=8, member_day_multiplier_bp=20_000)
    top_up(shopper, "1200.00")
    stored_value = [TenderInput(kind="stored_value", amount=Money.parse("600.00"))]
    # the copy is made; the member read by the payment gate carries its memo
    first = _checkout_on(date(2026, 12, 8), cashier_actor, shopper, care, stored_value, "sv-1")
    assert first.points_earned == 1_200
    copy = loyalty_rules._RULES_COPY[shopper.organisation_id]

    with mock.patch.object(loyalty_rules, "_forget_config"):  # as if saved by another process
        rules_settings_save(actor=hq_actor, member_day=9)
    assert loyalty_rules._RULES_COPY[shopper.organisation_id] is copy

    second = _checkout_on(date(2026, 12, 8), cashier_actor, shopper, care, stored_value, "sv-2")  # same instance
    assert second.points_earned == 600


def test_bill_complete_still_earns_through_the_cache_and_sees_a_save(cashier_actor, hq_actor, shopper, care):
    rules_settings_save(actor=hq_actor, member_day=8, member_day_multiplier_bp=20_000)
    assert _pay(cashier_actor, shopper, care, date(2026, 12, 8)).points_earned == 1_200  # the copy is made

    rules_settings_save(actor=hq_actor, member_day=9)
    with (
        _at(date(2026, 12, 9)),
        mock.patch(
            "meiye.sales.services.rules_view_known", side_effect=AssertionError("bill_complete must not use the copy")
        ),
    ):
        opened = bill_open(actor=cashier_actor, member=shopper)
        bill_add_line(actor=cashier_actor, bill=opened, item=care)
        wechat = [TenderInput(kind="wechat", amount=Money.parse("600.00"))]
        completed = bill_complete(actor=cashier_actor, bill=opened, tenders=wechat, idempotency_key="bc-1")

    assert completed.points_earned == 1_200
