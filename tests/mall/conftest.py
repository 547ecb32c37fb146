"""Fixtures for the points mall: acting staff, a member with points earned through loyalty's service,
and mall items created through the mall's services (S-07's 面膜礼盒: 5,000 points, stock 3)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from meiye.loyalty.services import points_earn
from meiye.mall.models import MallItem, MallItemKind
from meiye.mall.services import MallItemInput, mall_item_create
from meiye.members.models import Member
from meiye.org.context import Actor
from meiye.org.models import Staff, Store


@pytest.fixture
def cashier(receptionist: Staff, store1: Store, actor_for: Callable[..., Actor]) -> Actor:
    return actor_for(receptionist, store1)


@pytest.fixture
def boss(manager: Staff, store1: Store, actor_for: Callable[..., Actor]) -> Actor:
    """The store manager of store 1, who approves."""
    return actor_for(manager, store1)


@pytest.fixture
def hq(hq_admin: Staff, store1: Store, actor_for: Callable[..., Actor]) -> Actor:
    return actor_for(hq_admin, store1)


@pytest.fixture
def member(make_member: Callable[..., Member], store1: Store) -> Member:
    return make_member(store1, name="林小姐")


@pytest.fixture
def earn(cashier: Actor) -> Callable[..., None]:
    """Give a member points through loyalty's ``points_earn`` (a fresh key each call)."""
    counter = itertools.count(1)

    def run(member: Member, points: int, earned_on: date | None = None) -> None:
        n = next(counter)
        points_earn(
            actor=cashier,
            member=member,
            points=points,
            source_code="earn.test",
            reference_type="test.Bill",
            reference_id=f"B{n}",
            idempotency_key=f"test-earn-{member.pk}-{n}",
            earned_on=earned_on,
        )

    return run


@pytest.fixture
def make_item(hq: Actor) -> Callable[..., MallItem]:
    counter = itertools.count(1)

    def make(name: str, points: int, stock: int | None = 3, **fields: Any) -> MallItem:
        data = MallItemInput(
            kind=fields.pop("kind", MallItemKind.GIFT),
            name=name,
            points_price=points,
            stock_limited=stock is not None,
            **fields,
        )
        return mall_item_create(
            actor=hq, data=data, initial_stock=stock or 0, idempotency_key=f"test-item-{next(counter)}"
        )

    return make


@pytest.fixture
def mask_box(make_item: Callable[..., MallItem]) -> MallItem:
    """S-07: the gift 面膜礼盒 costs 5,000 points, stock 3."""
    return make_item("面膜礼盒", 5_000, stock=3)


@pytest.fixture
def keys() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"redeem-{next(counter)}"


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
