"""Fixtures for checkout: the reference configuration of shared/SCENARIOS.md, built through the services.

Categories basic care / anti-ageing / retail earn 1 / 3 / 2 points per 元; 基础护理 costs 600.00, 抗衰紧致
1,000.00, 精华液 (retail) 250.00. The S-05 member holds principal 1,000.00, bonus 200.00 and 12,000 points.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from meiye.catalog.models import Category, Item
from meiye.core.money import Money
from meiye.loyalty.services import points_earn
from meiye.members.models import Member
from meiye.org.context import Actor
from meiye.org.models import Staff
from meiye.org.services import approval_pin_set
from meiye.wallet.services import wallet_recharge
from tests.reference import reference_categories, reference_items

MANAGER_PIN = "2468"


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
    return reference_categories(hq)


@pytest.fixture
def reference(hq: Actor, categories: dict[str, Category]) -> dict[str, Item]:
    return reference_items(hq, categories)


@pytest.fixture
def care(reference: dict[str, Item]) -> Item:
    return reference["care"]


@pytest.fixture
def lifting(reference: dict[str, Item]) -> Item:
    return reference["lifting"]


@pytest.fixture
def serum(reference: dict[str, Item]) -> Item:
    return reference["serum"]


@pytest.fixture
def member(make_member: Callable[..., Member], store1: Any) -> Member:
    return make_member(store1, name="林小姐")


@pytest.fixture
def keys() -> Callable[[str], str]:
    counter = itertools.count(1)
    return lambda prefix="k": f"{prefix}-{next(counter)}"


@pytest.fixture
def recharge(manager_at_till: Actor, keys: Callable[[str], str]) -> Callable[..., Any]:
    """Recharge as the store manager (only roles with money.adjust may give a bonus)."""

    def run(member: Member, amount: str, bonus: str = "0", tender: str = "wechat") -> Any:
        return wallet_recharge(
            actor=manager_at_till,
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
