"""Fixtures for packages: S-19's services and package products, built through the services, and a fake
bill line to sell them through ``packages_issue_for_bill`` (the checkout's wiring is the lead's)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import pytest

from meiye.catalog.models import Item
from meiye.catalog.services import category_save, item_save
from meiye.core.money import Money
from meiye.members.models import Member
from meiye.org.context import Actor
from meiye.org.models import Staff, Store
from meiye.packages.models import MemberPackage, PackageProduct
from meiye.packages.services import ProductItemInput, package_product_save, packages_issue_for_bill

PURCHASE = date(2026, 1, 10)


@dataclass(frozen=True)
class FakeLine:
    pk: int
    item_id: int
    quantity: int
    line_total_fen: int


@pytest.fixture
def cashier(receptionist: Staff, store1: Store, actor_for: Callable[..., Actor]) -> Actor:
    return actor_for(receptionist, store1)


@pytest.fixture
def boss(manager: Staff, store1: Store, actor_for: Callable[..., Actor]) -> Actor:
    return actor_for(manager, store1)


@pytest.fixture
def hq(hq_admin: Staff, store1: Store, actor_for: Callable[..., Actor]) -> Actor:
    return actor_for(hq_admin, store1)


@pytest.fixture
def member(make_member: Callable[..., Member], store1: Store) -> Member:
    return make_member(store1, name="林小姐")


@pytest.fixture
def services(hq: Actor) -> dict[str, Item]:
    care = category_save(
        actor=hq,
        code="basic-care",
        name="基础护理",
        kind="service",
        earning_category="basic_care",
        commission_category="service",
    )
    return {
        "facial": item_save(
            actor=hq,
            code="basic-facial",
            name="基础面部护理",
            category=care,
            price=Money.parse("298.00"),
            duration_minutes=60,
        ),
        "neck": item_save(
            actor=hq,
            code="neck-shoulder",
            name="肩颈护理",
            category=care,
            price=Money.parse("198.00"),
            duration_minutes=45,
        ),
        "bath": item_save(
            actor=hq, code="spa-bath", name="水疗", category=care, price=Money.parse("100.00"), duration_minutes=30
        ),
    }


@pytest.fixture
def facial_card(hq: Actor, services: dict[str, Item]) -> PackageProduct:
    """S-19: 面部护理10次卡, 1,980.00, 10 × basic facial (list 298.00), valid 12 months."""
    return package_product_save(
        actor=hq,
        code="facial-10",
        name="面部护理10次卡",
        price=Money.parse("1980.00"),
        kind="count",
        items=[ProductItemInput(service_id=services["facial"].pk, count=10, validity_value=12)],
    )


@pytest.fixture
def combo(hq: Actor, services: dict[str, Item]) -> PackageProduct:
    """S-19: 5 facials valid 6 months and 3 neck-and-shoulder sessions valid 12 months."""
    return package_product_save(
        actor=hq,
        code="combo",
        name="面部肩颈套餐",
        price=Money.parse("1800.00"),
        kind="combo",
        transferable=True,
        items=[
            ProductItemInput(service_id=services["facial"].pk, count=5, validity_value=6),
            ProductItemInput(service_id=services["neck"].pk, count=3, validity_value=12),
        ],
    )


@pytest.fixture
def time_card(hq: Actor, services: dict[str, Item]) -> PackageProduct:
    """A month of spa baths: unlimited, at most 1 a day, at least 2 days apart."""
    return package_product_save(
        actor=hq,
        code="spa-month",
        name="水疗月卡",
        price=Money.parse("900.00"),
        kind="time",
        items=[
            ProductItemInput(
                service_id=services["bath"].pk,
                count=None,
                validity_value=30,
                validity_unit="days",
                daily_limit=1,
                min_days_between=2,
            )
        ],
    )


_line_ids = itertools.count(9000)


@pytest.fixture
def sell(cashier: Actor) -> Callable[..., list[MemberPackage]]:
    """Sell a product to a member on a fake bill (quantity units, total = price × quantity by default)."""

    def run(
        product: PackageProduct,
        member: Member,
        *,
        quantity: int = 1,
        total_fen: int | None = None,
        on: date = PURCHASE,
        actor: Actor | None = None,
    ) -> list[MemberPackage]:
        line_id = next(_line_ids)
        total = product.item.price_fen * quantity if total_fen is None else total_fen
        return packages_issue_for_bill(
            actor=actor or cashier,
            bill_id=line_id,
            member=member,
            lines=[FakeLine(pk=line_id, item_id=product.item_id, quantity=quantity, line_total_fen=total)],
            on=on,
        )

    return run


@pytest.fixture
def api_for() -> Callable[..., object]:
    """``api_for(staff)``: an APIClient sending ``Authorization: Bearer <token>`` (the production path)."""
    from rest_framework.test import APIClient

    from meiye.org.services import api_token_create

    def make(staff: Staff) -> APIClient:
        _token, secret = api_token_create(actor=Actor.system(staff.organisation), staff=staff, name="tests")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        return client

    return make
