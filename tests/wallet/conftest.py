"""Fixtures for stored value: acting staff, members, and recharges through the services only."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import date, datetime, time
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from meiye.core.money import Money
from meiye.members.models import Member
from meiye.org.context import Actor
from meiye.wallet.models import CardProduct, Recharge, RechargeRule
from meiye.wallet.services import (
    CardProductInput,
    RechargeRuleInput,
    card_product_save,
    recharge_rule_save,
    wallet_recharge,
)
from tests.ledger.support import fire_deferred_checks


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
def member(make_member, store1) -> Member:
    return make_member(store1)


@pytest.fixture
def recharge(cashier: Actor, manager: Any, actor_for: Any, store1: Any) -> Callable[..., Recharge]:
    """Recharge a member (yuan strings; a fresh idempotency key each call); with a bonus, as the store
    manager (only roles with money.adjust may give one)."""
    keys = itertools.count(1)

    def run(member: Member, amount: str, bonus: str = "0", *, tender: str = "wechat", actor: Actor | None = None):
        return wallet_recharge(
            actor=actor or (actor_for(manager, store1) if Money.parse(bonus).fen else cashier),
            member=member,
            amount=Money.parse(amount),
            bonus=Money.parse(bonus),
            tender=tender,
            idempotency_key=f"recharge-{next(keys)}",
        )

    return run


# --- Card products, recharge rules, dates (issue 5) --------------------------------------------------------

ZONE = ZoneInfo("Asia/Shanghai")


def at(day: date, hour: int = 12) -> Any:
    """Freeze the clock on ``day`` at ``hour`` in the stores' zone (Asia/Shanghai)."""
    return mock.patch("django.utils.timezone.now", return_value=datetime.combine(day, time(hour), tzinfo=ZONE))


@pytest.fixture
def hq(hq_admin: Any, actor_for: Any, store1: Any) -> Actor:
    return actor_for(hq_admin, store1)


@pytest.fixture
def refunder(manager: Any, actor_for: Any, store1: Any) -> Actor:
    """The store manager: ``prepaid.refund``."""
    return actor_for(manager, store1)


@pytest.fixture
def product(hq: Actor) -> CardProduct:
    """The default stored-value card: cooling-off 7 days, no cap."""
    return card_product_save(actor=hq, data=CardProductInput(code="standard", name="储值卡", is_default=True))


@pytest.fixture
def s13_rule(hq: Actor, product: CardProduct) -> RechargeRule:
    """充3000送600, the bonus in 6 monthly parts, plus 300 points (S-13)."""
    return recharge_rule_save(
        actor=hq,
        product=product,
        data=RechargeRuleInput(threshold_fen=300_000, bonus_fen=60_000, instalments=6, bonus_points=300),
    )


@pytest.fixture
def s13_recharge(cashier: Actor, member: Member, s13_rule: RechargeRule) -> Recharge:
    """The member recharges 3,000.00 by WeChat on 2026-01-15."""
    with at(date(2026, 1, 15), 10):
        return wallet_recharge(
            actor=cashier, member=member, amount=Money.parse("3000.00"), tender="wechat", idempotency_key="s13"
        )
