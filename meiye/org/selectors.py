"""Reads of stores and staff, always scoped to what the acting staff member may see."""

from __future__ import annotations

from typing import Any, TypeVar

from django.db.models import Model, QuerySet

from meiye.core.db.prepared import PreparedQuery
from meiye.core.errors import not_found
from meiye.org.context import Actor
from meiye.org.models import Staff, Store
from meiye.org.roles import Perm

T = TypeVar("T", bound=Model)


def stores_visible(actor: Actor) -> QuerySet[Store]:
    """The stores this actor may see: all of the organisation for HQ roles, else their own."""
    staff = actor.staff
    return stores_visible_by_ids(actor.organisation.pk, None if staff is None or staff.sees_all_stores else staff.pk)


def visible_store_ids(actor: Actor) -> list[int]:
    return list(stores_visible(actor).values_list("id", flat=True))


def stores_visible_by_ids(organisation_id: int, staff_id: int | None = None) -> QuerySet[Store]:
    """``stores_visible`` from plain ids, for a prepared query (``meiye.core.db.prepared``): the organisation's
    stores, or with ``staff_id`` (a staff member who does not see every store) only hers."""
    qs = Store.objects.filter(organisation_id=organisation_id)
    return qs if staff_id is None else qs.filter(staff__id=staff_id)


# ``stores_visible(actor).get(pk=…)`` for each kind of actor, compiled once per connection (every API request
# reads its acting store).
_STORE_OF_ORGANISATION: PreparedQuery[Store] = PreparedQuery(
    lambda organisation_id, pk: stores_visible_by_ids(organisation_id).filter(pk=pk), [int, int]
)
_STORE_OF_STAFF: PreparedQuery[Store] = PreparedQuery(
    lambda organisation_id, pk, staff_id: stores_visible_by_ids(organisation_id, staff_id).filter(pk=pk),
    [int, int, int],
)


def first_in_scope(actor: Actor, every_store: PreparedQuery[T], own_stores: PreparedQuery[T], *args: Any) -> T | None:
    """The first row of a prepared read scoped as ``stores_visible`` scopes: ``every_store`` takes (organisation,
    *args) for an actor who sees every store; ``own_stores`` takes (organisation, *args, staff) for one who sees
    only hers."""
    if actor.staff is None or actor.staff.sees_all_stores:
        return every_store.first(actor.organisation.pk, *args)
    return own_stores.first(actor.organisation.pk, *args, actor.staff.pk)


def store_pk(store_id: int | str) -> int:
    """A store id as given (a header, a URL), or 404 ``store.not_found`` when it cannot be one."""
    try:
        pk = int(store_id)
    except (ValueError, TypeError):
        raise not_found("store.not_found", "门店", "Store") from None
    if not -(2**63) <= pk < 2**63:
        raise not_found("store.not_found", "门店", "Store")
    return pk


def store_get(actor: Actor, store_id: int | str) -> Store:
    store = first_in_scope(actor, _STORE_OF_ORGANISATION, _STORE_OF_STAFF, store_pk(store_id))
    if store is None:
        raise not_found("store.not_found", "门店", "Store")
    return store


def staff_list(actor: Actor) -> QuerySet[Staff]:
    actor.require(Perm.STAFF_VIEW)
    qs = Staff.objects.filter(organisation=actor.organisation).prefetch_related("stores")
    if actor.staff is not None and not actor.staff.sees_all_stores:
        qs = qs.filter(stores__in=visible_store_ids(actor)).distinct()
    return qs.order_by("id")


def staff_get(actor: Actor, staff_id: int | str) -> Staff:
    try:
        return staff_list(actor).get(pk=int(staff_id))
    except (Staff.DoesNotExist, ValueError, TypeError):
        raise not_found("staff.not_found", "员工", "Staff member") from None


def colleagues(actor: Actor, store: Store) -> list[Staff]:
    """The active staff of a store the actor works in: who may perform or sell a line, or approve a price.

    Unlike ``staff_list`` this needs no ``staff.view``: a cashier must be able to name the beautician."""
    store = store_get(actor, store.pk)
    return list(Staff.objects.filter(organisation=actor.organisation, is_active=True, stores=store).order_by("id"))


def colleague_get(actor: Actor, staff_id: int) -> Staff | None:
    """An active staff member of the actor's organisation named on a bill line, or None."""
    return Staff.objects.filter(organisation=actor.organisation, is_active=True, pk=staff_id).first()
