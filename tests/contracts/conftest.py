"""Fixtures for prepaid contracts: a contract made the way the desk makes one (a recharge), and PNGs."""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection
from PIL import Image, ImageDraw

from meiye.contracts.models import Contract
from meiye.core.money import Money
from meiye.members.models import Member
from meiye.org.context import Actor
from meiye.wallet.models import Recharge
from meiye.wallet.services import wallet_recharge
from tests.ledger.support import fire_deferred_checks


@pytest.fixture(autouse=True)
def _deferred_checks_before_rollback() -> Iterator[None]:
    yield
    if connection.vendor == "postgresql" and connection.in_atomic_block and not connection.needs_rollback:
        fire_deferred_checks()


def png(width: int = 400, height: int = 160, *, blank: bool = False) -> bytes:
    """A signature as the pad sends it: transparent background, dark strokes."""
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    if not blank:
        draw = ImageDraw.Draw(image)
        draw.line(
            [(20, height - 30), (width // 3, 20), (width // 2, height - 40), (width - 30, 30)],
            fill=(20, 20, 20, 255),
            width=4,
        )
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def cashier(receptionist, store1, actor_for) -> Actor:
    return actor_for(receptionist, store1)


@pytest.fixture
def member(make_member, store1) -> Member:
    return make_member(store1, name="王丽", phone="13812345678")


@pytest.fixture
def recharge(cashier: Actor) -> Callable[..., Recharge]:
    keys = itertools.count(1)

    def run(member: Member, amount: str, *, tender: str = "wechat", actor: Actor | None = None) -> Recharge:
        return wallet_recharge(
            actor=actor or cashier,
            member=member,
            amount=Money.parse(amount),
            tender=tender,
            idempotency_key=f"contracts-recharge-{next(keys)}",
        )

    return run


@pytest.fixture
def contract(recharge: Callable[..., Recharge], member: Member) -> Contract:
    made = recharge(member, "3000.00")
    assert made.contract is not None
    return made.contract


@pytest.fixture
def other_store_member(make_member, store2) -> Member:
    return make_member(store2, name="李娜", phone="13900001111")


@pytest.fixture
def api_for() -> Callable[..., Any]:
    """``api_for(staff, store)``: an APIClient with the staff member's real API token, acting in ``store``."""
    from rest_framework.test import APIClient

    from meiye.org.services import api_token_create

    def make(staff: Any, store: Any = None) -> APIClient:
        _token, secret = api_token_create(actor=Actor.system(staff.organisation), staff=staff, name="tests")
        client = APIClient()
        headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
        if store is not None:
            headers["HTTP_X_STORE_ID"] = str(store.pk)
        client.credentials(**headers)
        return client

    return make
