"""Store scoping: a staff member sees only her stores (HQ roles see all)."""

from __future__ import annotations

import pytest

from meiye.core.errors import NotFound, PermissionDenied
from meiye.org.context import Actor
from meiye.org.selectors import staff_get, staff_list, store_get


def test_receptionist_gets_her_store_but_not_another(receptionist, store1, store2, actor_for):
    actor = actor_for(receptionist, store1)
    assert store_get(actor, store1.pk) == store1
    with pytest.raises(NotFound) as exc:
        store_get(actor, store2.pk)
    assert exc.value.code == "store.not_found"


@pytest.mark.parametrize("bad_id", ["abc", None, 999999])
def test_store_get_with_a_bad_id_is_not_found(receptionist, store1, actor_for, bad_id):
    with pytest.raises(NotFound):
        store_get(actor_for(receptionist, store1), bad_id)


def test_hq_gets_every_store(hq_admin, store1, store2, actor_for):
    actor = actor_for(hq_admin)
    assert store_get(actor, store1.pk) == store1
    assert store_get(actor, str(store2.pk)) == store2


def test_store_of_another_organisation_is_not_found(hq_admin, store1, actor_for):
    from tests.factories import OrganisationFactory, StoreFactory

    other = StoreFactory(organisation=OrganisationFactory(code="other", name="别家"), code="x1")
    with pytest.raises(NotFound):
        store_get(actor_for(hq_admin), other.pk)


def test_staff_list_is_scoped_to_the_managers_stores(
    manager, receptionist, receptionist2, beautician, hq_admin, store1, actor_for
):
    names = [s.username for s in staff_list(actor_for(manager, store1))]
    assert names == ["manager1", "reception1", "beautician1"]  # by id, receptionist2 (store2) left out


def test_hq_staff_list_shows_everyone(manager, receptionist, receptionist2, beautician, hq_admin, actor_for):
    names = sorted(s.username for s in staff_list(actor_for(hq_admin)))
    assert names == ["beautician1", "hqadmin", "manager1", "reception1", "reception2"]


def test_staff_in_two_stores_is_listed_once(org, manager, store1, store2, actor_for):
    from tests.factories import StaffFactory

    StaffFactory(organisation=org, username="floater", stores=[store1, store2])
    names = [s.username for s in staff_list(actor_for(manager, store1))]
    assert names == ["manager1", "floater"]


def test_receptionist_may_not_list_staff(receptionist, store1, actor_for):
    with pytest.raises(PermissionDenied) as exc:
        staff_list(actor_for(receptionist, store1))
    assert exc.value.code == "auth.permission_denied"


def test_staff_get_outside_the_managers_stores_is_not_found(manager, receptionist2, store1, actor_for):
    with pytest.raises(NotFound) as exc:
        staff_get(actor_for(manager, store1), receptionist2.pk)
    assert exc.value.code == "staff.not_found"
    assert staff_get(actor_for(manager, store1), manager.pk) == manager


def test_system_actor_sees_everything(org, store1, store2, receptionist2):
    assert store_get(Actor.system(org), store2.pk) == store2
    assert [s.username for s in staff_list(Actor.system(org))] == ["reception2"]


def test_colleagues_are_the_active_staff_of_a_store_the_actor_works_in(
    receptionist, receptionist2, manager, beautician, actor_for, store1, store2
):
    from meiye.core.errors import NotFound
    from meiye.org.selectors import colleague_get, colleagues

    actor = actor_for(receptionist, store1)
    assert colleagues(actor, store1) == [receptionist, manager, beautician]
    with pytest.raises(NotFound):
        colleagues(actor, store2)
    assert colleague_get(actor, receptionist2.pk) == receptionist2  # any active colleague of the brand
    beautician.is_active = False
    beautician.save()
    assert colleague_get(actor, beautician.pk) is None
