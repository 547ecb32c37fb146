"""Fixtures for the catalogue, bills and wallet API tests (imported by ``tests/api/conftest.py``).

The reference configuration of shared/SCENARIOS.md, built through the services: categories basic care /
anti-ageing / retail earning 1 / 3 / 2 points per 元; 基础护理 600.00, 抗衰紧致 1,000.00, 精华液 (retail,
barcode 6901234567890) 250.00.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from meiye.catalog.models import Category, Item
from meiye.core.money import Money
from meiye.loyalty.services import points_earn
from meiye.members.models import Member
from meiye.org.context import Actor
from meiye.org.models import Staff, Store
from meiye.org.services import approval_pin_set
from meiye.wallet.services import wallet_recharge
from tests.reference import reference_categories, reference_items

API_MANAGER_PIN = "2468"


@pytest.fixture
def hq_actor(hq_admin: Staff, actor_for: Callable[..., Actor], store1: Store) -> Actor:
    return actor_for(hq_admin, store1)


@pytest.fixture
def cashier_actor(receptionist: Staff, store1: Store, actor_for: Callable[..., Actor]) -> Actor:
    return actor_for(receptionist, store1)


@pytest.fixture
def manager_api(client_for: Callable[..., APIClient], manager: Staff) -> APIClient:
    return client_for(manager)


@pytest.fixture
def api_manager_pin(manager: Staff) -> str:
    approval_pin_set(staff=manager, pin=API_MANAGER_PIN)
    return API_MANAGER_PIN


@pytest.fixture
def ref_categories(hq_actor: Actor) -> dict[str, Category]:
    return reference_categories(hq_actor)


@pytest.fixture
def ref_items(hq_actor: Actor, ref_categories: dict[str, Category]) -> dict[str, Item]:
    return reference_items(hq_actor, ref_categories)


@pytest.fixture
def care(ref_items: dict[str, Item]) -> Item:
    return ref_items["care"]


@pytest.fixture
def lifting(ref_items: dict[str, Item]) -> Item:
    return ref_items["lifting"]


@pytest.fixture
def serum(ref_items: dict[str, Item]) -> Item:
    return ref_items["serum"]


@pytest.fixture
def shopper(make_member: Callable[..., Member], store1: Store) -> Member:
    return make_member(store1, name="林小姐", phone="13800000001")


@pytest.fixture
def shopper2(make_member: Callable[..., Member], store2: Store) -> Member:
    """A member of store 2 (invisible to store-1 staff)."""
    return make_member(store2, name="徐汇会员", phone="13900002222")


@pytest.fixture
def setup_keys() -> Callable[[str], str]:
    counter = itertools.count(1)
    return lambda prefix="setup": f"{prefix}-{next(counter)}"


@pytest.fixture
def top_up(hq_actor: Actor, setup_keys: Callable[[str], str]) -> Callable[..., Any]:
    """``top_up(member, "1000.00", bonus="200.00")``: a recharge through the service (test set-up)."""

    def run(member: Member, amount: str, bonus: str = "0", actor: Actor | None = None) -> Any:
        return wallet_recharge(
            actor=actor or hq_actor,
            member=member,
            amount=Money.parse(amount),
            bonus=Money.parse(bonus),
            tender="wechat",
            idempotency_key=setup_keys("recharge"),
        )

    return run


@pytest.fixture
def gift_points(cashier_actor: Actor, setup_keys: Callable[[str], str]) -> Callable[[Member, int], Any]:
    def run(member: Member, points: int) -> Any:
        return points_earn(
            actor=cashier_actor,
            member=member,
            points=points,
            source_code="test.opening",
            reference_type="test",
            reference_id="opening",
            idempotency_key=setup_keys("points"),
        )

    return run


@pytest.fixture
def s05_shopper(shopper: Member, top_up: Callable[..., Any], gift_points: Callable[[Member, int], Any]) -> Member:
    """The Regular member of S-05: principal 1,000.00, bonus 200.00, 12,000 points."""
    top_up(shopper, "1000.00", bonus="200.00")
    gift_points(shopper, 12_000)
    return shopper
