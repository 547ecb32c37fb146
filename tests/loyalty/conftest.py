"""Fixtures for points and growth: a member, acting staff, and points earned through the services only."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import date

import pytest
from django.db import connection

from meiye.loyalty.models import PointsLot
from meiye.loyalty.services import points_earn
from meiye.members.models import Member
from meiye.org.context import Actor
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
def earn(cashier: Actor) -> Callable[..., PointsLot]:
    """Earn points for a member on a date (a fresh idempotency key each call)."""
    keys = itertools.count(1)

    def run(member: Member, points: int, earned_on: date, *, source_code: str = "earn.bill") -> PointsLot:
        n = next(keys)
        lot = points_earn(
            actor=cashier,
            member=member,
            points=points,
            source_code=source_code,
            reference_type="test.Bill",
            reference_id=f"B{n}",
            idempotency_key=f"earn-{n}",
            earned_on=earned_on,
        )
        assert lot is not None
        return lot

    return run
