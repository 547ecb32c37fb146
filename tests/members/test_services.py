from __future__ import annotations

import pytest
from django.utils import translation

from meiye.audit.models import AuditLog
from meiye.core.errors import ApplicationError, Conflict, NotFound, PermissionDenied, ValidationFailed
from meiye.members.models import ConsentPurpose, Member, MemberPhoto, MemberStatus, Tag
from meiye.members.selectors import (
    consent_state,
    duplicate_candidates,
    duplicate_groups,
    member_get,
    member_search,
    member_view,
    members_visible,
)
from meiye.members.services import (
    MemberInput,
    consent_record,
    custom_field_save,
    member_create,
    member_merge,
    member_photo_get,
    member_photo_set,
    member_update,
)
from tests.members.conftest import ALL_CONSENTS

PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 64


def test_member_numbers_are_sequential_per_organisation(make_member, store1, store2):
    first, second, third = make_member(store1), make_member(store2), make_member(store1)
    assert [first.member_no, second.member_no, third.member_no] == ["M000001", "M000002", "M000003"]


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("phone", "12345", "member.invalid_phone"),
        ("phone", "23812345678", "member.invalid_phone"),
        ("name", "   ", "member.invalid_name"),
        ("birthday", "2099-01-01", "member.invalid_date"),
        ("birthday", "1990-13-01", "member.invalid_date"),
        ("email", "not-an-email", "member.invalid_email"),
        ("id_number", "110101199003071235", "member.invalid_id_number"),
        ("gender", "X", "member.invalid_gender"),
        ("channel", "tv", "member.invalid_channel"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(receptionist, actor_for, store1, field, value, code):
    data = MemberInput(name="张敏", phone="13900000001", home_store_id=store1.pk)
    setattr(data, field, value)
    with pytest.raises(ValidationFailed) as exc:
        member_create(actor=actor_for(receptionist, store1), data=data)
    assert exc.value.code == code
    assert exc.value.field == field
    assert exc.value.message_zh and exc.value.message_en
    assert Member.objects.count() == 0
    assert AuditLog.objects.count() == 0


def test_error_message_follows_the_active_language(receptionist, actor_for, store1):
    with pytest.raises(ValidationFailed) as exc:
        member_create(
            actor=actor_for(receptionist, store1), data=MemberInput(name="张敏", phone="1", home_store_id=store1.pk)
        )
    with translation.override("en"):
        assert exc.value.message.startswith("phone: must be an 11-digit")
    with translation.override("zh-hans"):
        assert exc.value.message.startswith("手机号：需要 11 位")


def test_duplicate_phone_is_refused_even_from_another_store(make_member, receptionist2, actor_for, store1, store2):
    make_member(store1, phone="13811112222")
    with pytest.raises(Conflict) as exc:
        member_create(
            actor=actor_for(receptionist2, store2),
            data=MemberInput(name="另一个人", phone="138 1111 2222", home_store_id=store2.pk),
        )
    assert exc.value.code == "member.duplicate_phone"
    # Her member number is not disclosed to a store that cannot see her.
    assert exc.value.extra == {}
    assert Member.objects.count() == 1


def test_duplicate_phone_names_the_existing_member_when_visible(make_member, receptionist, actor_for, store1):
    existing = make_member(store1, phone="13811112222")
    with pytest.raises(Conflict) as exc:
        member_create(
            actor=actor_for(receptionist, store1),
            data=MemberInput(name="重复", phone="13811112222", home_store_id=store1.pk),
        )
    assert exc.value.extra == {"member_no": existing.member_no}


def test_receptionist_of_store1_cannot_read_or_change_store2_member(
    make_member, receptionist, actor_for, store1, store2
):
    other = make_member(store2, phone="13822223333", name="周婷")
    actor = actor_for(receptionist, store1)
    with pytest.raises(NotFound):
        member_get(actor, other.pk)
    with pytest.raises(NotFound):
        member_update(actor=actor, member=other, data=MemberInput(name="改名"))
    assert list(member_search(actor, "周")) == []
    assert list(member_search(actor, "13822223333")) == []
    with pytest.raises(NotFound):
        member_create(actor=actor, data=MemberInput(name="新人", phone="13900000009", home_store_id=store2.pk))
    other.refresh_from_db()
    assert other.name == "周婷"


def test_hq_admin_sees_every_store(make_member, hq_admin, actor_for, store1, store2):
    make_member(store1)
    make_member(store2)
    assert members_visible(actor_for(hq_admin)).count() == 2


def test_search_by_phone_member_number_name_prefix_and_tag(make_member, receptionist, actor_for, store1):
    wang = make_member(store1, phone="13833334444", name="王晓红", tags=["VIP", "敏感肌"])
    make_member(store1, phone="13833335555", name="李娜")
    actor = actor_for(receptionist, store1)
    assert list(member_search(actor, "13833334444")) == [wang]
    assert list(member_search(actor, wang.member_no)) == [wang]
    assert list(member_search(actor, wang.member_no.lower())) == [wang]
    assert list(member_search(actor, "王晓")) == [wang]
    assert list(member_search(actor, "", tag="敏感肌")) == [wang]
    assert list(member_search(actor, "晓红")) == []


def test_update_changes_phone_and_audits_field_names_only(make_member, receptionist, actor_for, store1):
    member = make_member(store1, phone="13844445555")
    actor = actor_for(receptionist, store1)
    member_update(actor=actor, member=member, data=MemberInput(phone="13844446666", tags=["新客"]))
    member.refresh_from_db()
    assert member.phone == "13844446666"
    assert [t.name for t in member.tags.all()] == ["新客"]
    row = AuditLog.objects.filter(action="member.update").get()
    assert row.detail == {"fields": ["phone", "tags"]}


def test_health_field_needs_health_consent(allergies, receptionist, actor_for, store1):
    actor = actor_for(receptionist, store1)
    with pytest.raises(ValidationFailed) as exc:
        member_create(
            actor=actor,
            data=MemberInput(name="陈静", phone="13855556666", home_store_id=store1.pk, custom={"allergies": "花粉"}),
            consents=[(ConsentPurpose.DATA, True)],
        )
    assert exc.value.code == "member.health_consent_required"
    assert exc.value.field == "custom.allergies"
    assert Member.objects.count() == 0


def test_withdrawing_health_consent_hides_health_fields_at_once(allergies, beautician, hq_admin, actor_for, store1):
    member = member_create(
        actor=actor_for(hq_admin, store1),
        data=MemberInput(name="陈静", phone="13855556666", home_store_id=store1.pk, custom={"allergies": "花粉"}),
        consents=ALL_CONSENTS,
    )
    consent_record(
        actor=actor_for(hq_admin, store1),
        member=member,
        purpose="health",
        granted=False,
        text_version="v1",
        channel="paper",
    )
    assert consent_state(member)["health"] is False
    view = member_view(actor_for(beautician, store1), member)
    assert next(c for c in view.custom if c.field.key == "allergies").blocked_by_consent is True
    from meiye.members.services import member_reveal

    with pytest.raises(ValidationFailed) as exc:
        member_reveal(actor=actor_for(beautician, store1), member=member, field="custom.allergies")
    assert exc.value.code == "member.health_consent_required"


def test_custom_choice_field_validates_value(skin_type, receptionist, actor_for, store1):
    with pytest.raises(ValidationFailed) as exc:
        member_create(
            actor=actor_for(receptionist, store1),
            data=MemberInput(name="赵雪", phone="13866667777", home_store_id=store1.pk, custom={"skin_type": "金属"}),
        )
    assert exc.value.field == "custom.skin_type"
    assert "干性" in exc.value.message_zh


def test_photo_needs_its_own_consent_and_goes_when_withdrawn(make_member, receptionist, actor_for, store1):
    member = make_member(store1)
    actor = actor_for(receptionist, store1)
    with pytest.raises(ValidationFailed) as exc:
        member_photo_set(actor=actor, member=member, content_type="image/png", data=PNG)
    assert exc.value.code == "member.photo_consent_required"
    consent_record(actor=actor, member=member, purpose="photo", granted=True, text_version="v1", channel="tablet")
    member_photo_set(actor=actor, member=member, content_type="image/png", data=PNG)
    photo = member_photo_get(actor=actor, member=member)
    assert photo is not None and photo.data == PNG
    assert AuditLog.objects.filter(action="member.photo_view").count() == 1
    consent_record(actor=actor, member=member, purpose="photo", granted=False, text_version="v1", channel="tablet")
    assert MemberPhoto.objects.count() == 0
    assert member_photo_get(actor=actor, member=member) is None


def test_duplicates_by_name_and_birthday(make_member, manager, actor_for, store1):
    a = make_member(store1, name="刘芳", birthday="1988-06-01")
    b = make_member(store1, name="刘芳", birthday="1988-06-01")
    make_member(store1, name="刘芳", birthday="1990-01-01")
    actor = actor_for(manager, store1)
    groups = duplicate_groups(actor)
    assert [[m.pk for m in g.members] for g in groups] == [[a.pk, b.pk]]
    assert duplicate_candidates(actor, name="刘芳", birthday=a.birthday, exclude_id=a.pk) == [b]


def test_merge_moves_everything_and_is_audited(make_member, manager, actor_for, store1):
    actor = actor_for(manager, store1)
    survivor = make_member(store1, name="刘芳", phone="13877778888", tags=["VIP"])
    merged = make_member(
        store1, name="刘芳", phone="13877779999", tags=["敏感肌"], email="fang@example.com", notes="喜欢安静"
    )
    referred = make_member(store1, referrer_id=merged.pk)
    consent_record(
        actor=actor, member=merged, purpose="marketing_sms", granted=True, text_version="v2", channel="paper"
    )

    member_merge(actor=actor, survivor=survivor, merged=merged)

    survivor.refresh_from_db()
    merged.refresh_from_db()
    referred.refresh_from_db()
    assert sorted(t.name for t in survivor.tags.all()) == ["VIP", "敏感肌"]
    assert survivor.email == "fang@example.com"
    assert survivor.notes == f"[{merged.member_no}] 喜欢安静"
    assert referred.referrer_id == survivor.pk
    assert consent_state(survivor)["marketing_sms"] is True
    assert (merged.status, merged.merged_into_id, merged.phone_index) == (MemberStatus.MERGED, survivor.pk, None)
    with pytest.raises(NotFound):
        member_get(actor, merged.pk)
    row = AuditLog.objects.get(action="member.merge")
    assert row.detail["merged"] == merged.member_no
    # The merged phone is free again.
    make_member(store1, phone="13877779999")


def test_merge_refused_for_receptionist_and_changes_nothing(make_member, receptionist, actor_for, store1):
    a, b = make_member(store1), make_member(store1)
    with pytest.raises(PermissionDenied):
        member_merge(actor=actor_for(receptionist, store1), survivor=a, merged=b)
    b.refresh_from_db()
    assert b.status == MemberStatus.ACTIVE


def test_custom_field_definition_rules(hq_admin, receptionist, actor_for):
    actor = actor_for(hq_admin)
    with pytest.raises(ValidationFailed) as exc:
        custom_field_save(actor=actor, key="Bad Key", label_zh="x")
    assert exc.value.field == "key"
    with pytest.raises(ValidationFailed) as exc:
        custom_field_save(actor=actor, key="hair", label_zh="发质", field_type="choice", choices=["干"])
    assert exc.value.field == "choices"
    with pytest.raises(ValidationFailed) as exc:
        custom_field_save(actor=actor, key="scar", label_zh="疤痕", retention="keep")
    assert exc.value.field == "retention_reason"
    with pytest.raises(PermissionDenied):
        custom_field_save(actor=actor_for(receptionist), key="hair", label_zh="发质")


def test_tags_are_shared_per_organisation(make_member, store1):
    make_member(store1, tags=["VIP"])
    make_member(store1, tags=["VIP", " VIP "])
    assert Tag.objects.count() == 1


def test_application_errors_form_one_hierarchy():
    assert issubclass(ValidationFailed, ApplicationError) and issubclass(NotFound, ApplicationError)


def test_required_custom_field_is_checked_with_the_values_given(hq_admin, receptionist, actor_for, store1):
    custom_field_save(actor=actor_for(hq_admin), key="source_note", label_zh="来源说明", required=True)
    actor = actor_for(receptionist, store1)
    member = member_create(
        actor=actor,
        data=MemberInput(name="吴倩", phone="13911110000", home_store_id=store1.pk, custom={"source_note": "朋友介绍"}),
    )
    assert member.custom == {"source_note": "朋友介绍"}
    with pytest.raises(ValidationFailed) as exc:
        member_create(actor=actor, data=MemberInput(name="郑雨", phone="13911110001", home_store_id=store1.pk))
    assert exc.value.field == "custom.source_note"
    assert Member.objects.count() == 1


def test_a_role_without_health_permission_cannot_clear_a_health_field(
    allergies, receptionist, manager, actor_for, store1
):
    from meiye.members.selectors import sensitive_values

    member = member_create(
        actor=actor_for(manager, store1),
        data=MemberInput(name="王女士", phone="13822223333", home_store_id=store1.pk, custom={"allergies": "青霉素"}),
        consents=ALL_CONSENTS,
    )
    with pytest.raises(PermissionDenied):
        member_update(
            actor=actor_for(receptionist, store1), member=member, data=MemberInput(custom={"allergies": None})
        )
    member.refresh_from_db()
    assert sensitive_values(member) == {"allergies": "青霉素"}


def test_erasure_also_clears_records_merged_into_the_member(hq_admin, actor_for, store1, make_member):
    from meiye.members.services import member_erase

    hq = actor_for(hq_admin, store1)
    old = make_member(store1, phone="13833334444", name="李四", email="li@example.com", notes="对芒果过敏")
    new = make_member(store1, phone="13833335555", name="李四")
    member_merge(actor=hq, survivor=new, merged=old)

    member_erase(actor=hq, member=new, reason="本人书面申请")

    tomb = Member.objects.get(pk=old.pk)
    assert (tomb.phone, tomb.email, tomb.notes) == (None, None, "")
    assert "李四" not in tomb.name
    row = AuditLog.objects.get(action="member.erase")
    assert row.detail["merged_records"] == [old.member_no]


def test_merge_chain_follows_merges_to_the_live_member(make_member, manager, actor_for, store1):
    from meiye.members.selectors import member_survivor, merge_chain

    actor = actor_for(manager, store1)
    first, second, third = make_member(store1), make_member(store1), make_member(store1)
    member_merge(actor=actor, survivor=second, merged=first)
    member_merge(actor=actor, survivor=third, merged=second)
    first.refresh_from_db()

    assert [m.pk for m in merge_chain(first)] == [first.pk, second.pk, third.pk]
    assert member_survivor(first) == third
    assert member_survivor(third) == third


def test_referrals_cannot_go_round(actor_for, receptionist, store1, make_member):
    # given: A referred B, B referred C
    actor = actor_for(receptionist, store1)
    a = make_member(store1, name="A")
    b = make_member(store1, name="B", referrer_id=a.pk)
    c = make_member(store1, name="C", referrer_id=b.pk)

    # when / then: A cannot be said to be referred by C (nor by B)
    for referrer in (c, b):
        with pytest.raises(ValidationFailed) as caught:
            member_update(actor=actor, member=a, data=MemberInput(referrer_id=referrer.pk))
        assert (caught.value.code, caught.value.field) == ("member.referral_cycle", "referrer")
    a.refresh_from_db()
    assert a.referrer_id is None
