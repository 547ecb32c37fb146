"""Fixtures for stored value: acting staff, members, and recharges through the services only."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection

from meiye.core.money import Money
from meiye.members.models import Member
from meiye.org.context import Actor
from meiye.wallet.models import Recharge
from meiye.wallet.services import wallet_recharge
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
