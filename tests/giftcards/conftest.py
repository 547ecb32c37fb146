"""Fixtures for gift cards: acting staff, a sell helper (through the service) and a helper that pays a bill
with a card the way the checkout does (the bill's CNY journal by hand, then ``gift_card_after_use``)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from django.db import transaction

from meiye.core.money import Money
from meiye.giftcards.models import GiftCard
from meiye.giftcards.services import (
    gift_card_account_key,
    gift_card_after_refund,
    gift_card_after_use,
    gift_card_check,
    gift_card_sell,
)
from meiye.ledger.models import Account, Journal
from meiye.ledger.selectors import account_find, balance_of
from meiye.ledger.services import Leg, Posting, accounts_lock, journals_post
from meiye.loyalty.selectors import local_today
from meiye.org.context import Actor
from meiye.org.models import Staff, Store
from meiye.wallet.services import store_account_key


@pytest.fixture
def cashier(receptionist: Staff, store1: Store, actor_for: Callable[..., Actor]) -> Actor:
    return actor_for(receptionist, store1)


@pytest.fixture
def boss(manager: Staff, store1: Store, actor_for: Callable[..., Actor]) -> Actor:
    return actor_for(manager, store1)


@pytest.fixture
def today(store1: Store) -> date:
    return local_today(store1)


@pytest.fixture
def sell(cashier: Actor, today: date) -> Callable[..., list[GiftCard]]:
    """``sell(face="500.00", price="450.00", **kw)`` through ``gift_card_sell`` (a fresh key each call)."""
    counter = itertools.count(1)

    def run(face: str = "500.00", price: str | None = None, *, actor: Actor | None = None, **kw: Any) -> list[GiftCard]:
        kw.setdefault("tender", "wechat")
        kw.setdefault("expires_on", today + timedelta(days=365))
        kw.setdefault("idempotency_key", f"sell-{next(counter)}")
        return gift_card_sell(actor=actor or cashier, face=Money.parse(face), price=Money.parse(price or face), **kw)

    return run


def store_balance(store: Store, kind: str) -> int:
    """The store's CNY account ``kind`` (0 when it does not exist yet)."""
    account = account_find(
        organisation_id=store.organisation_id, owner_type="store", owner_id=store.pk, asset="CNY", kind=kind
    )
    return 0 if account is None else balance_of(account)


def legs_of(journal: Journal) -> list[tuple[str, int, str, int]]:
    """``(owner_type, owner_id, kind, amount)`` of each entry, sorted."""
    return sorted(
        (e.account.owner_type, e.account.owner_id, e.account.kind, e.amount)
        for e in journal.entries.select_related("account")
    )


@pytest.fixture
def pay(cashier: Actor, today: date) -> Callable[..., int]:
    """Pay bill ``bill_id`` in store 1: ``card_fen`` with the card and ``cash_fen`` in cash, as the checkout will.
    Returns the card's balance afterwards."""

    def run(card: GiftCard, card_fen: int, bill_id: int, *, cash_fen: int = 0, on: date | None = None) -> int:
        store = cashier.store
        assert store is not None
        card_key = gift_card_account_key(card)
        cash_key = store_account_key(store=store, kind="tender_cash")
        revenue_key = store_account_key(store=store, kind="revenue")
        with transaction.atomic():
            locked = accounts_lock(organisation_id=store.organisation_id, keys=[card_key, cash_key, revenue_key])
            balance = locked.balance(locked.get(card_key))
            gift_card_check(card, card_fen, on or today, balance)
            entries: list[tuple[Account, int]] = [Leg(locked.get(card_key), -card_fen)]
            if cash_fen:
                entries.append(Leg(locked.get(cash_key), -cash_fen))
            entries.append(Leg(locked.get(revenue_key), card_fen + cash_fen))
            journals_post(
                organisation_id=store.organisation_id,
                postings=[
                    Posting(
                        code="sales.bill",
                        entries=entries,
                        reference_type="sales.Bill",
                        reference_id=str(bill_id),
                        store_id=store.pk,
                        idempotency_key=f"bill-{bill_id}:cny",
                    )
                ],
                locked=locked,
            )
            gift_card_after_use(
                actor=cashier, card=card, amount_fen=card_fen, bill_id=bill_id, balance_after_fen=balance - card_fen
            )
        return balance - card_fen

    return run


@pytest.fixture
def refund(cashier: Actor) -> Callable[..., GiftCard]:
    """Refund ``amount_fen`` of bill ``bill_id`` back to the card, as the checkout's refund will."""
    counter = itertools.count(1)

    def run(card: GiftCard, amount_fen: int, bill_id: int) -> GiftCard:
        store = cashier.store
        assert store is not None
        card_key = gift_card_account_key(card)
        revenue_key = store_account_key(store=store, kind="revenue")
        with transaction.atomic():
            locked = accounts_lock(organisation_id=store.organisation_id, keys=[card_key, revenue_key])
            journals_post(
                organisation_id=store.organisation_id,
                postings=[
                    Posting(
                        code="sales.refund",
                        entries=[Leg(locked.get(card_key), amount_fen), Leg(locked.get(revenue_key), -amount_fen)],
                        reference_type="sales.Bill",
                        reference_id=str(bill_id),
                        store_id=store.pk,
                        idempotency_key=f"refund-{bill_id}-{next(counter)}:cny",
                    )
                ],
                locked=locked,
            )
            return gift_card_after_refund(actor=cashier, bill_id=bill_id, amount_fen=amount_fen, card=card)

    return run


@pytest.fixture
def api_for() -> Callable[..., Any]:
    """``api_for(staff)``: an APIClient with the staff member's real API token (the production path)."""
    from rest_framework.test import APIClient

    from meiye.org.services import api_token_create

    def make(staff: Staff, **headers: Any) -> APIClient:
        _token, secret = api_token_create(actor=Actor.system(staff.organisation), staff=staff, name="tests")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}", **headers)
        return client

    return make
