"""Fixtures for member cards: acting staff, a card product with a 充3000送600 rule paid in six monthly
parts, members, a known one-time code, and a clock the services read (``meiye.cards.services._now``)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from meiye.cards import services as card_services
from meiye.cards.services import card_settings_set
from meiye.core.money import Money
from meiye.members.models import Member
from meiye.org.context import Actor
from meiye.wallet.models import CardProduct, Recharge, RechargeRule
from meiye.wallet.services import wallet_recharge
from tests.frontdesk.support import compile_translations
from tests.ledger.support import fire_deferred_checks


@pytest.fixture(scope="session", autouse=True)
def _translations() -> None:
    compile_translations()


@pytest.fixture(autouse=True)
def _deferred_checks_before_rollback() -> Iterator[None]:
    """On PostgreSQL, end every test as COMMIT would: pending deferred checks run (and fail the test)."""
    yield
    if connection.vendor == "postgresql" and connection.in_atomic_block and not connection.needs_rollback:
        fire_deferred_checks()


@pytest.fixture
def cashier(receptionist, store1, actor_for) -> Actor:
    return actor_for(receptionist, store1)


@pytest.fixture
def boss(manager, store1, actor_for) -> Actor:
    return actor_for(manager, store1)


@pytest.fixture
def hq(hq_admin, store1, actor_for) -> Actor:
    return actor_for(hq_admin, store1)


@pytest.fixture
def member(make_member, store1) -> Member:
    return make_member(store1, phone="13800135678")


@pytest.fixture
def product(org) -> CardProduct:
    """金卡: 充3000送600, the bonus in six monthly parts (100.00 at once, 500.00 pending)."""
    gold = CardProduct.objects.create(organisation=org, code="gold", name="金卡")
    RechargeRule.objects.create(organisation=org, product=gold, threshold_fen=300000, bonus_fen=60000, instalments=6)
    return gold


@pytest.fixture
def recharge(cashier: Actor) -> Callable[..., Recharge]:
    keys = itertools.count(1)

    def run(member: Member, amount: str, *, product: CardProduct | None = None, tender: str = "wechat") -> Recharge:
        return wallet_recharge(
            actor=cashier,
            member=member,
            amount=Money.parse(amount),
            tender=tender,
            idempotency_key=f"recharge-{next(keys)}",
            product=product,
        )

    return run


@pytest.fixture
def store_rules(hq: Actor, store1) -> Callable[..., Any]:
    def run(*, fee: str = "0", transfer: bool = False, require_auth: bool = False) -> Any:
        return card_settings_set(
            actor=hq,
            store=store1,
            replacement_fee=Money.parse(fee),
            allow_balance_transfer=transfer,
            require_payment_auth=require_auth,
        )

    return run


class Codes:
    """The codes the service generates, in order (``next`` sets the next one)."""

    def __init__(self) -> None:
        self.queue: list[str] = []
        self.sent: list[str] = []

    def make(self) -> str:
        code = self.queue.pop(0) if self.queue else f"{len(self.sent) + 100000:06d}"
        self.sent.append(code)
        return code

    @property
    def last(self) -> str:
        return self.sent[-1]


@pytest.fixture
def codes(monkeypatch) -> Codes:
    known = Codes()
    monkeypatch.setattr(card_services, "_new_code", known.make)
    return known


class Clock:
    def __init__(self) -> None:
        self.now: datetime = timezone.now()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    moving = Clock()
    monkeypatch.setattr(card_services, "_now", moving)
    return moving


@pytest.fixture
def client_for() -> Callable[..., Client]:
    """A front-desk client signed in as ``staff`` (optionally with English as the interface language)."""

    def make(staff: Any, *, language: str | None = None) -> Client:
        client = Client()
        client.force_login(staff)
        if language:
            client.cookies["django_language"] = language
        return client

    return make


@pytest.fixture
def api_for() -> Callable[..., Any]:
    """``api_for(staff)``: an APIClient sending a real per-staff bearer token (the production path)."""
    from rest_framework.test import APIClient

    from meiye.org.services import api_token_create

    def make(staff: Any, **headers: Any) -> APIClient:
        _token, secret = api_token_create(actor=Actor.system(staff.organisation), staff=staff, name="tests")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}", **headers)
        return client

    return make
