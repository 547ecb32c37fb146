"""Posting, balances, idempotency and reversal through the ledger services."""

from __future__ import annotations

import pytest

from meiye.core.errors import ApplicationError, Conflict, ValidationFailed
from meiye.ledger import services
from meiye.ledger.models import Balance, Entry, Journal
from meiye.ledger.selectors import account_history, balance_of, journal_entries
from meiye.ledger.services import Leg, account_get_or_create, journal_post, journal_reverse
from meiye.ledger.verification import verify_ledger
from tests.ledger.support import ORG, OTHER_ORG, ledger_state

pytestmark = pytest.mark.django_db


# --- accounts ----------------------------------------------------------------------------------------------


def test_account_get_or_create_creates_the_account_once_with_a_zero_balance():
    # given / when
    first = account_get_or_create(organisation_id=ORG, owner_type="member", owner_id=7, asset="PTS", kind="points")
    again = account_get_or_create(organisation_id=ORG, owner_type="member", owner_id=7, asset="PTS", kind="points")

    # then
    assert again.pk == first.pk
    assert balance_of(first) == 0
    balance = Balance.objects.get(account=first)
    assert (balance.may_go_negative, balance.version) == (False, 0)


def test_account_get_or_create_refuses_a_different_may_go_negative_setting(make_account):
    # given
    make_account(owner_id=7, kind="wallet_principal")

    # when / then
    with pytest.raises(Conflict) as refused:
        make_account(owner_id=7, kind="wallet_principal", may_go_negative=True)
    assert refused.value.code == "ledger.account_flag_mismatch"
    assert Balance.objects.get(account__owner_id=7).may_go_negative is False


# --- posting -------------------------------------------------------------------------------------------------


def test_post_moves_the_amounts_and_writes_one_journal_with_its_entries(make_account, tender):
    # given
    wallet = make_account()
    cash = tender()

    # when
    journal = journal_post(
        organisation_id=ORG,
        code="wallet.recharge",
        entries=[Leg(wallet, 50_000), Leg(cash, -50_000)],
        reference_type="recharge",
        reference_id="R-1",
        staff_id=3,
        store_id=4,
        memo="充值 500 元",
    )

    # then
    assert balance_of(wallet) == 50_000
    assert balance_of(cash) == -50_000
    assert (journal.code, journal.reference_type, journal.reference_id) == ("wallet.recharge", "recharge", "R-1")
    assert (journal.staff_id, journal.store_id, journal.organisation_id) == (3, 4, ORG)
    assert [(e.account_id, e.amount, e.asset) for e in journal_entries(journal)] == [
        (wallet.pk, 50_000, "CNY"),
        (cash.pk, -50_000, "CNY"),
    ]
    assert Balance.objects.get(account=wallet).version == 1
    assert verify_ledger() == []


def test_post_over_two_assets_nets_each_asset_separately(make_account, tender, fund):
    # given: a member pays 30 yuan with 3000 points converted at the counter
    wallet = make_account(kind="wallet_principal")
    points = make_account(kind="points", asset="PTS")
    fund(points, 5_000)

    # when
    journal_post(
        organisation_id=ORG,
        code="points.redeem",
        entries=[(points, -3_000), (tender("PTS"), 3_000), (wallet, 3_000), (tender("CNY"), -3_000)],
    )

    # then
    assert (balance_of(points), balance_of(wallet)) == (2_000, 3_000)
    assert verify_ledger() == []


def test_post_with_two_lines_on_one_account_applies_their_sum(make_account, fund):
    # given
    wallet = make_account()
    other = make_account()
    fund(wallet, 1_000)

    # when
    journal_post(organisation_id=ORG, code="test.split", entries=[(wallet, -700), (wallet, 200), (other, 500)])

    # then
    assert (balance_of(wallet), balance_of(other)) == (500, 500)
    assert Balance.objects.get(account=wallet).version == 2
    assert verify_ledger() == []


def test_post_refuses_entries_that_do_not_net_to_zero_and_writes_nothing(make_account, tender):
    # given
    wallet = make_account()
    cash = tender()
    before = ledger_state()

    # when
    with pytest.raises(ValidationFailed) as refused:
        journal_post(organisation_id=ORG, code="test.bad", entries=[(wallet, 100), (cash, -99)])

    # then
    assert refused.value.code == "ledger.unbalanced"
    assert ledger_state() == before


def test_post_refuses_amounts_that_net_to_zero_only_across_assets(make_account, tender):
    # given
    wallet = make_account()
    points_tender = tender("PTS")
    before = ledger_state()

    # when
    with pytest.raises(ValidationFailed) as refused:
        journal_post(organisation_id=ORG, code="test.bad", entries=[(wallet, 100), (points_tender, -100)])

    # then
    assert refused.value.code == "ledger.unbalanced"
    assert ledger_state() == before


@pytest.mark.parametrize("entries", [[], "zero"])
def test_post_refuses_no_entries_and_zero_entries(make_account, tender, entries):
    # given
    wallet = make_account()
    if entries == "zero":
        entries = [(wallet, 0), (tender(), 0)]
    before = ledger_state()

    # when
    with pytest.raises(ValidationFailed) as refused:
        journal_post(organisation_id=ORG, code="test.bad", entries=entries)

    # then
    assert refused.value.code in {"ledger.no_entries", "ledger.invalid_amount"}
    assert ledger_state() == before


def test_post_refuses_an_account_of_another_organisation_and_writes_nothing(make_account, tender):
    # given
    foreign = make_account(organisation_id=OTHER_ORG)
    cash = tender()
    before = ledger_state()

    # when
    with pytest.raises(ValidationFailed) as refused:
        journal_post(organisation_id=ORG, code="test.bad", entries=[(foreign, 100), (cash, -100)])

    # then
    assert refused.value.code == "ledger.foreign_account"
    assert ledger_state() == before


def test_post_refuses_to_take_a_non_negative_account_below_zero_and_writes_nothing(make_account, tender, fund):
    # given
    wallet = make_account()
    fund(wallet, 1_000)
    before = ledger_state()

    # when
    with pytest.raises(ApplicationError) as refused:
        journal_post(organisation_id=ORG, code="wallet.spend", entries=[(wallet, -1_001), (tender(), 1_001)])

    # then
    assert refused.value.code == "ledger.insufficient_balance"
    assert refused.value.extra == {"account_id": wallet.pk, "balance": 1_000, "change": -1_001}
    assert refused.value.message_zh.startswith("余额不足")
    assert ledger_state() == before
    assert balance_of(wallet) == 1_000


def test_post_may_spend_a_non_negative_account_down_to_exactly_zero(make_account, tender, fund):
    # given
    wallet = make_account()
    fund(wallet, 1_000)

    # when
    journal_post(organisation_id=ORG, code="wallet.spend", entries=[(wallet, -1_000), (tender(), 1_000)])

    # then
    assert balance_of(wallet) == 0


def test_post_lets_an_account_that_may_go_negative_go_negative(make_account, tender):
    # given
    revenue = make_account(owner_type="store", kind="revenue", may_go_negative=True)

    # when
    journal_post(organisation_id=ORG, code="test.adjust", entries=[(revenue, -250), (tender(), 250)])

    # then
    assert balance_of(revenue) == -250
    assert verify_ledger() == []


# --- idempotency ------------------------------------------------------------------------------------------


def test_replay_with_the_same_key_and_payload_returns_the_first_journal_and_writes_nothing(make_account, tender):
    # given
    wallet = make_account()
    first = journal_post(
        organisation_id=ORG, code="wallet.recharge", entries=[(wallet, 500), (tender(), -500)], idempotency_key="k-1"
    )
    before = ledger_state()

    # when: the same request again, lines in another order
    again = journal_post(
        organisation_id=ORG, code="wallet.recharge", entries=[(tender(), -500), (wallet, 500)], idempotency_key="k-1"
    )

    # then
    assert again.pk == first.pk
    assert ledger_state() == before
    assert balance_of(wallet) == 500


def test_same_key_with_a_different_payload_is_a_conflict_and_writes_nothing(make_account, tender):
    # given
    wallet = make_account()
    journal_post(
        organisation_id=ORG, code="wallet.recharge", entries=[(wallet, 500), (tender(), -500)], idempotency_key="k-1"
    )
    before = ledger_state()

    # when
    with pytest.raises(Conflict) as refused:
        journal_post(
            organisation_id=ORG,
            code="wallet.recharge",
            entries=[(wallet, 600), (tender(), -600)],
            idempotency_key="k-1",
        )

    # then
    assert refused.value.code == "ledger.idempotency_conflict"
    assert ledger_state() == before


def test_the_same_key_in_another_organisation_is_a_different_request(make_account, tender):
    # given
    journal_post(organisation_id=ORG, code="t", entries=[(make_account(), 5), (tender(), -5)], idempotency_key="k-1")
    foreign = make_account(organisation_id=OTHER_ORG)

    # when
    journal_post(
        organisation_id=OTHER_ORG,
        code="t",
        entries=[(foreign, 9), (tender(organisation_id=OTHER_ORG), -9)],
        idempotency_key="k-1",
    )

    # then
    assert balance_of(foreign) == 9
    assert Journal.objects.filter(idempotency_key="k-1").count() == 2


def test_a_refused_post_leaves_its_key_free_for_a_retry(make_account, tender, fund):
    # given
    wallet = make_account()
    with pytest.raises(ApplicationError):
        journal_post(organisation_id=ORG, code="t", entries=[(wallet, -10), (tender(), 10)], idempotency_key="k-2")
    fund(wallet, 10)

    # when
    journal = journal_post(
        organisation_id=ORG, code="t", entries=[(wallet, -10), (tender(), 10)], idempotency_key="k-2"
    )

    # then
    assert journal.idempotency_key == "k-2"
    assert balance_of(wallet) == 0


def test_a_concurrent_first_post_with_the_same_key_is_answered_with_the_winner(make_account, tender, monkeypatch):
    """Two requests with one key both miss the first lookup; the loser hits the unique constraint and
    must then return the winner's journal (or a conflict), not an IntegrityError."""
    # given: the winner has committed; the loser's first lookup ran before that
    wallet = make_account()
    winner = journal_post(organisation_id=ORG, code="t", entries=[(wallet, 70), (tender(), -70)], idempotency_key="k-3")
    real_lookup = services._replayed
    calls = []

    def lookup_missing_the_first_time(**kwargs):
        calls.append(kwargs["key"])
        return None if len(calls) == 1 else real_lookup(**kwargs)

    monkeypatch.setattr(services, "_replayed", lookup_missing_the_first_time)
    before = ledger_state()

    # when
    loser = journal_post(organisation_id=ORG, code="t", entries=[(wallet, 70), (tender(), -70)], idempotency_key="k-3")

    # then
    assert loser.pk == winner.pk
    assert calls == ["k-3", "k-3"]
    assert ledger_state() == before


# --- reversal -----------------------------------------------------------------------------------------------


def test_reverse_posts_the_mirror_image_and_restores_the_balances(make_account, tender, fund):
    # given
    wallet = make_account()
    other = make_account()
    fund(wallet, 1_000)
    transfer = journal_post(
        organisation_id=ORG,
        code="wallet.transfer",
        entries=[(wallet, -400), (other, 400)],
        reference_type="transfer",
        reference_id="T-9",
        store_id=4,
    )

    # when
    reversal = journal_reverse(journal=transfer, staff_id=5, memo="操作失误")

    # then
    assert (balance_of(wallet), balance_of(other)) == (1_000, 0)
    assert reversal.reversal_of_id == transfer.pk
    assert (reversal.code, reversal.reference_type, reversal.reference_id) == (
        "wallet.transfer.reversal",
        "transfer",
        "T-9",
    )
    assert (reversal.staff_id, reversal.store_id, reversal.memo) == (5, 4, "操作失误")
    assert [(e.account_id, e.amount) for e in journal_entries(reversal)] == [(wallet.pk, 400), (other.pk, -400)]
    assert verify_ledger() == []


def test_a_journal_reversed_twice_is_refused_and_nothing_is_written(make_account, fund):
    # given
    wallet = make_account()
    recharge = fund(wallet, 1_000)
    journal_reverse(journal=recharge)
    before = ledger_state()

    # when
    with pytest.raises(Conflict) as refused:
        journal_reverse(journal=recharge)

    # then
    assert refused.value.code == "ledger.already_reversed"
    assert ledger_state() == before


def test_a_reversal_that_would_overdraw_a_non_negative_account_is_refused(make_account, tender, fund):
    # given: 1000 recharged, 600 of it already spent
    wallet = make_account()
    recharge = fund(wallet, 1_000)
    journal_post(organisation_id=ORG, code="wallet.spend", entries=[(wallet, -600), (tender(), 600)])
    before = ledger_state()

    # when
    with pytest.raises(ApplicationError) as refused:
        journal_reverse(journal=recharge)

    # then
    assert refused.value.code == "ledger.insufficient_balance"
    assert ledger_state() == before
    assert not Journal.objects.filter(reversal_of=recharge).exists()


def test_a_reversal_replayed_with_its_key_returns_the_same_reversal(make_account, fund):
    # given
    wallet = make_account()
    recharge = fund(wallet, 300)
    reversal = journal_reverse(journal=recharge, idempotency_key="rev-1")
    before = ledger_state()

    # when
    again = journal_reverse(journal=recharge, idempotency_key="rev-1")

    # then
    assert again.pk == reversal.pk
    assert ledger_state() == before


def test_a_reversal_can_itself_be_reversed_once(make_account, fund):
    # given
    wallet = make_account()
    recharge = fund(wallet, 300)
    reversal = journal_reverse(journal=recharge)

    # when
    journal_reverse(journal=reversal)

    # then
    assert balance_of(wallet) == 300
    assert verify_ledger() == []


# --- selectors ----------------------------------------------------------------------------------------------


def test_account_history_lists_movements_newest_first_with_the_running_balance(make_account, tender, fund):
    # given
    wallet = make_account()
    fund(wallet, 1_000)
    journal_post(organisation_id=ORG, code="wallet.spend", entries=[(wallet, -300), (tender(), 300)])
    fund(wallet, 50)

    # when
    history = account_history(wallet)

    # then
    assert [(line.code, line.amount, line.balance_after) for line in history] == [
        ("test.fund", 50, 750),
        ("wallet.spend", -300, 700),
        ("test.fund", 1_000, 1_000),
    ]
    assert Entry.objects.filter(account=wallet).count() == 3
