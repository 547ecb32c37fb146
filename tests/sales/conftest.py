"""Fixtures for checkout: the reference configuration of shared/SCENARIOS.md, built through the services.

Categories basic care / anti-ageing / retail earn 1 / 3 / 2 points per 元; 基础护理 costs 600.00, 抗衰紧致
1,000.00, 精华液 (retail) 250.00. The S-05 member holds principal 1,000.00, bonus 200.00 and 12,000 points.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection

from meiye.catalog.models import Category, Item
from meiye.catalog.services import category_save, item_save
from meiye.core.money import Money
from meiye.loyalty.services import earning_rate_set, points_earn
from meiye.members.models import Member
from meiye.org.context import Actor
from meiye.org.models import Staff
from meiye.org.services import approval_pin_set
from meiye.wallet.services import wallet_recharge
from tests.ledger.support import fire_deferred_checks

MANAGER_PIN = "2468"


@pytest.fixture(autouse=True)
def _deferred_checks_before_rollback() -> Iterator[None]:
    """On PostgreSQL, end every test as COMMIT would: pending deferred checks run (and fail the test)."""
    yield
    if connection.vendor == "postgresql" and connection.in_atomic_block and not connection.needs_rollback:
        fire_deferred_checks()


@pytest.fixture
def hq(hq_admin: Staff, actor_for: Callable[..., Actor], store1: Any) -> Actor:
    return actor_for(hq_admin, store1)


@pytest.fixture
def cashier(receptionist: Staff, store1: Any, actor_for: Callable[..., Actor]) -> Actor:
    return actor_for(receptionist, store1)


@pytest.fixture
def manager_at_till(manager: Staff, store1: Any, actor_for: Callable[..., Actor]) -> Actor:
    return actor_for(manager, store1)


@pytest.fixture
def manager_pin(manager: Staff) -> str:
    approval_pin_set(staff=manager, pin=MANAGER_PIN)
    return MANAGER_PIN


@pytest.fixture
def categories(hq: Actor) -> dict[str, Category]:
    made = {
        "basic_care": category_save(
            actor=hq,
            code="basic-care",
            name="基础护理",
            kind="service",
            earning_category="basic_care",
            commission_category="service",
        ),
        "anti_ageing": category_save(
            actor=hq,
            code="anti-ageing",
            name="抗衰",
            kind="service",
            earning_category="anti_ageing",
            commission_category="service",
        ),
        "retail": category_save(
            actor=hq,
            code="retail",
            name="零售产品",
            kind="product",
            earning_category="retail",
            commission_category="product",
        ),
    }
    for earning_category, rate in (("basic_care", 1), ("anti_ageing", 3), ("retail", 2)):
        earning_rate_set(actor=hq, earning_category=earning_category, points_per_yuan=rate)
    return made


@pytest.fixture
def care(hq: Actor, categories: dict[str, Category]) -> Item:
    return item_save(
        actor=hq,
        code="basic-facial",
        name="基础护理",
        category=categories["basic_care"],
        price=Money.parse("600.00"),
        duration_minutes=60,
    )


@pytest.fixture
def lifting(hq: Actor, categories: dict[str, Category]) -> Item:
    return item_save(
        actor=hq,
        code="lifting",
        name="抗衰紧致",
        category=categories["anti_ageing"],
        price=Money.parse("1000.00"),
        duration_minutes=90,
    )


@pytest.fixture
def serum(hq: Actor, categories: dict[str, Category]) -> Item:
    return item_save(actor=hq, code="serum", name="精华液", category=categories["retail"], price=Money.parse("250.00"))


@pytest.fixture
def member(make_member: Callable[..., Member], store1: Any) -> Member:
    return make_member(store1, name="林小姐")


@pytest.fixture
def keys() -> Callable[[str], str]:
    counter = itertools.count(1)
    return lambda prefix="k": f"{prefix}-{next(counter)}"


@pytest.fixture
def recharge(cashier: Actor, keys: Callable[[str], str]) -> Callable[..., Any]:
    def run(member: Member, amount: str, bonus: str = "0", tender: str = "wechat") -> Any:
        return wallet_recharge(
            actor=cashier,
            member=member,
            amount=Money.parse(amount),
            bonus=Money.parse(bonus),
            tender=tender,
            idempotency_key=keys("recharge"),
        )

    return run


@pytest.fixture
def give_points(cashier: Actor, keys: Callable[[str], str]) -> Callable[[Member, int], Any]:
    def run(member: Member, points: int) -> Any:
        return points_earn(
            actor=cashier,
            member=member,
            points=points,
            source_code="test.opening",
            reference_type="test",
            reference_id="opening",
            idempotency_key=keys("points"),
        )

    return run


@pytest.fixture
def s05_member(member: Member, recharge: Callable[..., Any], give_points: Callable[[Member, int], Any]) -> Member:
    """Regular member with principal 1,000.00, bonus 200.00 and 12,000 points (S-05)."""
    recharge(member, "1000.00", bonus="200.00")
    give_points(member, 12_000)
    return member
