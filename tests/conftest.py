"""Shared fixtures: one organisation with two stores and a staff member of each position.

``actor_for(staff, store)`` builds the acting context that every service takes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from meiye.members.services import MemberInput, member_create
from meiye.org.context import Actor
from meiye.org.models import Organisation, Staff, Store
from meiye.org.roles import Position
from tests.factories import OrganisationFactory, StaffFactory, StoreFactory


@pytest.fixture
def org(db: None) -> Organisation:
    return OrganisationFactory()


@pytest.fixture
def store1(org: Organisation) -> Store:
    return StoreFactory(organisation=org, code="s1", name="静安店")


@pytest.fixture
def store2(org: Organisation) -> Store:
    return StoreFactory(organisation=org, code="s2", name="徐汇店")


def _staff(org: Organisation, position: str, stores: list[Store], username: str) -> Staff:
    return StaffFactory(organisation=org, position=position, stores=stores, username=username)


@pytest.fixture
def receptionist(org: Organisation, store1: Store) -> Staff:
    return _staff(org, Position.RECEPTIONIST, [store1], "reception1")


@pytest.fixture
def receptionist2(org: Organisation, store2: Store) -> Staff:
    return _staff(org, Position.RECEPTIONIST, [store2], "reception2")


@pytest.fixture
def manager(org: Organisation, store1: Store) -> Staff:
    return _staff(org, Position.STORE_MANAGER, [store1], "manager1")


@pytest.fixture
def beautician(org: Organisation, store1: Store) -> Staff:
    return _staff(org, Position.BEAUTICIAN, [store1], "beautician1")


@pytest.fixture
def hq_admin(org: Organisation, store1: Store, store2: Store) -> Staff:
    return _staff(org, Position.HQ_ADMIN, [], "hqadmin")


@pytest.fixture
def actor_for() -> Callable[..., Actor]:
    def make(staff: Staff | None, store: Store | None = None, ip: str = "127.0.0.1") -> Actor:
        assert staff is None or staff.organisation is not None
        organisation = staff.organisation if staff is not None else Organisation.objects.get()
        if store is None and staff is not None:
            store = staff.stores.order_by("id").first() or Store.objects.filter(organisation=organisation).first()
        return Actor(staff=staff, organisation=organisation, store=store, ip=ip)  # type: ignore[arg-type]

    return make


@pytest.fixture
def make_member(actor_for: Callable[..., Actor], hq_admin: Staff) -> Callable[..., object]:
    """Create a member through the service (as HQ admin unless an actor is given)."""
    counter = {"n": 0}

    def make(store: Store, *, actor: Actor | None = None, phone: str | None = None, **fields: object):  # type: ignore[no-untyped-def]
        counter["n"] += 1
        data = MemberInput(
            name=str(fields.pop("name", f"会员{counter['n']}")),
            phone=phone or f"139{counter['n']:08d}",
            home_store_id=store.pk,
            **fields,  # type: ignore[arg-type]
        )
        return member_create(actor=actor or actor_for(hq_admin, store), data=data)

    return make


@pytest.fixture(autouse=True)
def _checkout_copies_forgotten() -> None:
    """Each test starts with no store's time zone remembered by the checkout (``sales.services._STORE_ZONES``) and
    no items copied (``_ITEMS_COPY``): a store of an earlier test may have had the same id."""
    from meiye.sales.services import _ITEMS_COPY, _STORE_ZONES

    _STORE_ZONES.clear()
    _ITEMS_COPY.clear()


@pytest.fixture(autouse=True)
def _ledger_consistent_after_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """After every test that touched the database: on PostgreSQL run the deferred ledger checks as COMMIT
    would, and if the test moved money, recompute every balance from its entries (``ledger_verify``)."""
    uses_db = request.node.get_closest_marker("django_db") is not None or bool(
        {"db", "transactional_db", "live_server"} & set(request.fixturenames)
    )
    if not uses_db or request.node.get_closest_marker("ledger_drift") is not None:
        yield
        return
    request.getfixturevalue("_django_db_helper")
    yield
    from django.db import connection

    from meiye.ledger.models import Journal
    from meiye.ledger.verification import verify_ledger

    if connection.in_atomic_block and connection.needs_rollback:
        return
    if connection.vendor == "postgresql" and connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    if Journal.objects.exists():
        assert verify_ledger() == [], "ledger_verify found drift after this test"
