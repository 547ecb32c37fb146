from meiye.members.selectors import member_find_by_phone, member_view
from meiye.members.services import member_reveal


def test_create_find_reveal(make_member, store1, receptionist, actor_for):
    member = make_member(store1, phone="13812345678", name="王丽")
    actor = actor_for(receptionist, store1)
    found = member_find_by_phone(actor, "138 1234 5678")
    assert found is not None and found.pk == member.pk
    assert member_view(actor, found).phone == "138****5678"
    assert member_reveal(actor=actor, member=found, field="phone") == "13812345678"
