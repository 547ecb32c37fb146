"""What each position may do, and which stores it sees."""

from __future__ import annotations

import pytest

from meiye.core.errors import PermissionDenied
from meiye.members.services import MemberInput, member_create, member_reveal
from meiye.members.validation import id_number_checksum
from meiye.org.roles import POSITION_PERMS, Perm, Position, perms_for
from meiye.org.selectors import stores_visible, visible_store_ids

# (position, permission) -> allowed. The rows that matter most for personal data.
TABLE = [
    (Position.RECEPTIONIST, Perm.MEMBER_REVEAL_PHONE, True),
    (Position.RECEPTIONIST, Perm.MEMBER_REVEAL_ID, False),
    (Position.RECEPTIONIST, Perm.MEMBER_REVEAL_HEALTH, False),
    (Position.RECEPTIONIST, Perm.MEMBER_CREATE, True),
    (Position.RECEPTIONIST, Perm.MONEY_ADJUST, False),
    (Position.RECEPTIONIST, Perm.STAFF_VIEW, False),
    (Position.BEAUTICIAN, Perm.MEMBER_REVEAL_HEALTH, True),
    (Position.BEAUTICIAN, Perm.MEMBER_REVEAL_PHONE, False),
    (Position.BEAUTICIAN, Perm.MEMBER_EDIT, False),
    (Position.SENIOR_BEAUTICIAN, Perm.MEMBER_EDIT, True),
    (Position.SENIOR_BEAUTICIAN, Perm.MEMBER_REVEAL_HEALTH, True),
    (Position.CONSULTANT, Perm.MEMBER_REVEAL_CONTACT, True),
    (Position.CONSULTANT, Perm.MEMBER_REVEAL_HEALTH, False),
    (Position.STORE_MANAGER, Perm.MEMBER_REVEAL_ID, True),
    (Position.STORE_MANAGER, Perm.MEMBER_ERASE, False),
    (Position.STORE_MANAGER, Perm.ALL_STORES, False),
    (Position.STORE_MANAGER, Perm.STAFF_MANAGE, False),
    (Position.FINANCE, Perm.MONEY_ADJUST, True),
    (Position.FINANCE, Perm.ALL_STORES, True),
    (Position.FINANCE, Perm.MEMBER_REVEAL_PHONE, False),
    (Position.FINANCE, Perm.MEMBER_REVEAL_HEALTH, False),
    (Position.HQ_ADMIN, Perm.ALL_STORES, True),
    (Position.HQ_ADMIN, Perm.MEMBER_ERASE, True),
    (Position.HQ_ADMIN, Perm.STAFF_MANAGE, True),
    (Position.HQ_ADMIN, Perm.CUSTOM_FIELDS_MANAGE, True),
]


@pytest.mark.parametrize(("position", "perm", "allowed"), TABLE)
def test_permission_table(position, perm, allowed):
    assert (perm in perms_for(position)) is allowed


def test_every_position_has_a_permission_set_and_can_view_members():
    assert set(POSITION_PERMS) == set(Position.values)
    assert all(Perm.MEMBER_VIEW in perms for perms in POSITION_PERMS.values())
    assert perms_for("nonsense") == frozenset()


def test_who_needs_two_factor(org):
    from tests.factories import StaffFactory

    needs = {p: StaffFactory.build(organisation=org, position=p).needs_two_factor for p in Position.values}
    assert needs == {
        Position.STORE_MANAGER: True,
        Position.RECEPTIONIST: False,
        Position.BEAUTICIAN: True,
        Position.SENIOR_BEAUTICIAN: True,
        Position.CONSULTANT: False,
        Position.FINANCE: True,
        Position.HQ_ADMIN: True,
    }


def test_inactive_staff_can_do_nothing_and_superuser_counts_as_hq(receptionist):
    assert receptionist.can(Perm.MEMBER_VIEW)
    receptionist.is_active = False
    assert not receptionist.can(Perm.MEMBER_VIEW)
    receptionist.is_active = True
    receptionist.is_superuser = True
    assert receptionist.perms == perms_for(Position.HQ_ADMIN)


def test_receptionist_reveals_phone_but_not_id_number(receptionist, store1, actor_for, make_member):
    first17 = "11010119900307123"
    member = make_member(store1, phone="13812345678", id_number=first17 + id_number_checksum(first17))
    actor = actor_for(receptionist, store1)
    assert member_reveal(actor=actor, member=member, field="phone") == "13812345678"
    with pytest.raises(PermissionDenied) as exc:
        member_reveal(actor=actor, member=member, field="id_number")
    assert exc.value.extra == {"permission": Perm.MEMBER_REVEAL_ID}


def test_beautician_reads_health_data_with_consent(beautician, hq_admin, store1, actor_for):
    from meiye.members.services import custom_field_save

    admin = actor_for(hq_admin, store1)
    custom_field_save(actor=admin, key="allergies", label_zh="过敏史", health=True)
    member = member_create(
        actor=admin,
        data=MemberInput(name="王丽", phone="13812345678", home_store_id=store1.pk, custom={"allergies": "花粉过敏"}),
        consents=[("data", True), ("health", True)],
    )
    assert member_reveal(actor=actor_for(beautician, store1), member=member, field="custom.allergies") == "花粉过敏"
    with pytest.raises(PermissionDenied):
        member_reveal(actor=actor_for(beautician, store1), member=member, field="phone")


def test_hq_sees_every_store_and_a_receptionist_only_hers(hq_admin, receptionist, store1, store2, actor_for):
    assert list(stores_visible(actor_for(hq_admin))) == [store1, store2]
    assert visible_store_ids(actor_for(receptionist, store1)) == [store1.pk]
