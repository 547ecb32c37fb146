"""Member pages through the test client: list and search, register, edit, detail, reveal, consent, photo,
export, erasure, duplicates and merge."""

from __future__ import annotations

import html
import json
import re
from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from meiye.audit.models import AuditLog
from meiye.members.models import ConsentRecord, Member, MemberPhoto, MemberStatus
from meiye.members.selectors import consent_state
from meiye.members.services import MemberInput, consent_record, custom_field_save, member_update
from tests.frontdesk.support import PNG_1PX


def _create_payload(store, **overrides: object) -> dict[str, object]:  # type: ignore[no-untyped-def]
    payload: dict[str, object] = {
        "home_store": store.pk,
        "name": "王丽",
        "phone": "13812345678",
        "gender": "F",
        "birthday": "1990-03-07",
        "email": "",
        "address": "",
        "id_number": "",
        "channel": "walk_in",
        "tags": "VIP, 敏感肌",
        "notes": "喜欢安静",
        "consent_data": "on",
        "consent_channel": "tablet",
    }
    payload.update(overrides)
    return payload


def _field_errors(content: str, name: str) -> list[str]:
    """The error messages rendered beside form field ``name``."""
    match = re.search(
        rf'<div class="field-errors" id="error-{re.escape(name)}" role="alert">(.*?)</div>', content, re.S
    )
    if match is None:
        return []
    return [html.unescape(e) for e in re.findall(r'<p class="field-error">(.*?)</p>', match.group(1), re.S)]


@pytest.fixture
def allergy(hq_admin, actor_for):
    return custom_field_save(
        actor=actor_for(hq_admin), key="allergy", label_zh="过敏史", label_en="Allergies", health=True
    )


@pytest.fixture
def skin(hq_admin, actor_for):
    return custom_field_save(
        actor=actor_for(hq_admin),
        key="skin",
        label_zh="肤质",
        label_en="Skin type",
        field_type="choice",
        choices=["干性", "油性", "混合"],
    )


# --- List and search ---------------------------------------------------------------------------------------------


def test_member_list_shows_masked_phones(receptionist, store1, make_member, client_for):
    make_member(store1, phone="13812345678", name="王丽")
    response = client_for(receptionist).get("/members/")
    assert response.status_code == 200
    content = response.content.decode()
    assert "王丽" in content
    assert "138****5678" in content
    assert "13812345678" not in content
    assert 'hx-trigger="input changed delay:250ms, search"' in content
    assert 'hx-headers=\'{"X-CSRFToken": "' in content


def test_search_as_you_type_returns_the_table_fragment(receptionist, store1, make_member, client_for):
    wang = make_member(store1, phone="13812345678", name="王丽")
    make_member(store1, phone="13900000001", name="李娜")
    client = client_for(receptionist)

    response = client.get("/members/", {"q": "13812345678"}, headers={"HX-Request": "true"})

    assert response.status_code == 200
    content = response.content.decode()
    assert "<html" not in content
    assert f"/members/{wang.pk}/" in content
    assert "李娜" not in content
    assert response["Vary"].count("HX-Request") == 1


def test_search_by_member_number_name_prefix_and_tag(receptionist, store1, make_member, client_for):
    wang = make_member(store1, name="王丽", tags=["VIP"])
    li = make_member(store1, name="李娜")
    client = client_for(receptionist)

    def found(**params: str) -> set[str]:
        content = client.get("/members/", params, headers={"HX-Request": "true"}).content.decode()
        return set(re.findall(r'class="member-link">(.*?)</a>', content))

    assert found(q=wang.member_no) == {"王丽"}
    assert found(q=li.member_no.lower()) == {"李娜"}
    assert found(q="王") == {"王丽"}
    assert found(q="丽") == set()
    assert found(tag="VIP") == {"王丽"}
    assert found() == {"王丽", "李娜"}


def test_search_query_count_does_not_grow_with_results(receptionist, store1, make_member, client_for):
    client = client_for(receptionist)
    for _ in range(2):
        make_member(store1, tags=["VIP"])
    client.get("/members/", headers={"HX-Request": "true"})  # warm the session
    with CaptureQueriesContext(connection) as few:
        client.get("/members/", headers={"HX-Request": "true"})
    for _ in range(8):
        make_member(store1, tags=["VIP"])
    with CaptureQueriesContext(connection) as many:
        client.get("/members/", headers={"HX-Request": "true"})
    assert len(many) == len(few)


def test_list_in_english(receptionist, store1, make_member, client_for):
    make_member(store1, name="王丽")
    content = client_for(receptionist, language="en").get("/members/").content.decode()
    assert ">Members</a>" in content
    assert "New member" in content
    assert "Female" in content


# --- Create ------------------------------------------------------------------------------------------------------------


def test_create_form_offers_consents_and_custom_fields(receptionist, allergy, skin, client_for):
    response = client_for(receptionist).get("/members/new/")
    assert response.status_code == 200
    content = response.content.decode()
    for name in (
        "consent_data",
        "consent_health",
        "consent_photo",
        "consent_marketing_sms",
        "consent_marketing_wechat",
        "consent_marketing_email",
        "custom__allergy",
        "custom__skin",
    ):
        assert f'name="{name}"' in content
    assert '<option value="油性">油性</option>' in content


def test_create_member_records_consents_and_custom_values(receptionist, store1, allergy, skin, client_for):
    payload = _create_payload(
        store1, consent_health="on", consent_marketing_sms="on", custom__allergy="青霉素", custom__skin="油性"
    )

    response = client_for(receptionist).post("/members/new/", payload)

    member = Member.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/members/{member.pk}/"
    assert (member.name, member.phone, member.home_store_id, member.birthday) == (
        "王丽",
        "13812345678",
        store1.pk,
        date(1990, 3, 7),
    )
    assert member.created_by_id == receptionist.pk
    assert sorted(t.name for t in member.tags.all()) == ["VIP", "敏感肌"]
    assert member.custom == {"skin": "油性"}
    assert json.loads(member.custom_sensitive) == {"allergy": "青霉素"}
    assert consent_state(member) == {
        "data": True,
        "health": True,
        "photo": False,
        "marketing_sms": True,
        "marketing_wechat": False,
        "marketing_email": False,
    }
    assert set(ConsentRecord.objects.values_list("text_version", "channel")) == {("v1", "tablet")}


def test_create_without_data_consent_saves_nothing(receptionist, client_for, store1):
    payload = _create_payload(store1)
    del payload["consent_data"]
    response = client_for(receptionist).post("/members/new/", payload)
    assert response.status_code == 400
    assert _field_errors(response.content.decode(), "consent_data") == ["需要会员同意个人信息处理才能建档。"]
    assert Member.objects.count() == 0
    assert AuditLog.objects.count() == 0


def test_invalid_phone_error_beside_the_field_in_chinese_keeps_input(receptionist, client_for, store1):
    audit_rows = AuditLog.objects.count()

    response = client_for(receptionist).post("/members/new/", _create_payload(store1, phone="12345"))

    assert response.status_code == 400
    content = response.content.decode()
    assert _field_errors(content, "phone") == ["手机号：需要 11 位中国大陆手机号，如 13812345678。"]
    assert _field_errors(content, "name") == []
    # What she typed is still there.
    assert 'name="name" value="王丽"' in content
    assert 'name="phone" value="12345"' in content
    assert "喜欢安静</textarea>" in content
    assert re.search(r'<input type="checkbox" name="consent_data"[^>]* checked', content)
    assert not re.search(r'<input type="checkbox" name="consent_photo"[^>]* checked', content)
    # Nothing saved.
    assert Member.objects.count() == 0
    assert ConsentRecord.objects.count() == 0
    assert AuditLog.objects.count() == audit_rows


def test_invalid_phone_error_beside_the_field_in_english(receptionist, client_for, store1):
    client = client_for(receptionist)
    client.post("/i18n/setlang/", {"language": "en", "next": "/members/new/"})

    response = client.post("/members/new/", _create_payload(store1, phone="12345"))

    assert response.status_code == 400
    assert _field_errors(response.content.decode(), "phone") == [
        "phone: must be an 11-digit mainland China mobile number, e.g. 13812345678."
    ]
    assert Member.objects.count() == 0


def test_health_field_without_health_consent_error_beside_custom_input(receptionist, allergy, client_for, store1):
    response = client_for(receptionist).post("/members/new/", _create_payload(store1, custom__allergy="青霉素"))
    assert response.status_code == 400
    assert _field_errors(response.content.decode(), "custom__allergy") == [
        "过敏史：会员尚未同意健康信息的收集，不能填写。请先登记健康信息同意书。"
    ]
    assert Member.objects.count() == 0
    assert ConsentRecord.objects.count() == 0


def test_invalid_choice_error_beside_custom_input_in_english(receptionist, skin, client_for, store1):
    response = client_for(receptionist, language="en").post(
        "/members/new/", _create_payload(store1, custom__skin="中性")
    )
    assert response.status_code == 400
    # Django's own choice validation, in the active language.
    assert _field_errors(response.content.decode(), "custom__skin") == [
        "Select a valid choice. 中性 is not one of the available choices."
    ]


def test_duplicate_phone_error_names_the_existing_member(receptionist, store1, make_member, client_for):
    existing = make_member(store1, phone="13812345678")
    response = client_for(receptionist).post("/members/new/", _create_payload(store1))
    assert response.status_code == 400
    assert _field_errors(response.content.decode(), "phone") == [
        f"手机号：该号码已登记为会员 {existing.member_no}，请勿重复建档（可合并会员）。"
    ]
    assert Member.objects.count() == 1


# --- Edit ----------------------------------------------------------------------------------------------------------------


def test_edit_form_never_contains_masked_values(receptionist, store1, make_member, client_for):
    member = make_member(store1, phone="13812345678", email="wl@example.com", name="王丽")
    response = client_for(receptionist).get(f"/members/{member.pk}/edit/")
    assert response.status_code == 200
    content = response.content.decode()
    assert "13812345678" not in content
    assert "wl@example.com" not in content
    assert 'placeholder="138****5678（已记录，留空则不修改）"' in content
    assert 'name="name" value="王丽"' in content


def test_edit_saves_and_empty_masked_inputs_keep_values(receptionist, store1, make_member, client_for):
    member = make_member(store1, phone="13812345678", name="王丽", tags=["VIP"])
    payload = {
        "name": "王丽丽",
        "phone": "",
        "gender": "F",
        "birthday": "",
        "channel": "referral",
        "home_store": store1.pk,
        "tags": "VIP, 新客",
        "notes": "",
    }
    response = client_for(receptionist).post(f"/members/{member.pk}/edit/", payload)
    assert response.status_code == 302
    member.refresh_from_db()
    assert (member.name, member.phone, member.channel) == ("王丽丽", "13812345678", "referral")
    assert sorted(t.name for t in member.tags.all()) == ["VIP", "新客"]
    row = AuditLog.objects.filter(action="member.update").get()
    assert row.staff_id == receptionist.pk
    assert "phone" not in row.detail["fields"]


def test_edit_error_beside_field_and_nothing_saved(receptionist, store1, make_member, client_for):
    member = make_member(store1, name="王丽")
    payload = {"name": "王丽丽", "phone": "999", "gender": "F", "channel": "walk_in", "home_store": store1.pk}
    response = client_for(receptionist).post(f"/members/{member.pk}/edit/", payload)
    assert response.status_code == 400
    content = response.content.decode()
    assert _field_errors(content, "phone") == ["手机号：需要 11 位中国大陆手机号，如 13812345678。"]
    assert 'name="name" value="王丽丽"' in content
    member.refresh_from_db()
    assert member.name == "王丽"
    assert not AuditLog.objects.filter(action="member.update").exists()


# --- Detail and reveal ------------------------------------------------------------------------------------------------


def test_detail_shows_masked_values_and_reveal_buttons(receptionist, store1, make_member, client_for):
    member = make_member(store1, phone="13812345678", name="王丽")
    response = client_for(receptionist).get(f"/members/{member.pk}/")
    assert response.status_code == 200
    content = response.content.decode()
    assert "138****5678" in content
    assert "13812345678" not in content
    assert f'hx-post="/members/{member.pk}/reveal/phone/"' in content
    assert "no-store" in response["Cache-Control"]


def test_reveal_returns_the_full_value_and_is_audited(receptionist, store1, make_member, client_for):
    member = make_member(store1, phone="13812345678")

    response = client_for(receptionist).post(f"/members/{member.pk}/reveal/phone/", headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert "13812345678" in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    row = AuditLog.objects.get(action="member.reveal")
    assert (row.staff_id, row.store_id, row.object_type, row.object_id, row.detail) == (
        receptionist.pk,
        store1.pk,
        "members.Member",
        str(member.pk),
        {"field": "phone"},
    )


def test_reveal_refused_fragment_without_permission(beautician, store1, make_member, client_for):
    member = make_member(store1, phone="13812345678")
    response = client_for(beautician).post(f"/members/{member.pk}/reveal/phone/")
    assert response.status_code == 403
    content = response.content.decode()
    assert "不能查看：您的岗位没有此权限（member.reveal_phone）。" in content
    assert "13812345678" not in content
    assert not AuditLog.objects.filter(action="member.reveal").exists()


def test_reveal_health_field(manager, store1, make_member, allergy, actor_for, hq_admin, client_for):
    member = make_member(store1)
    hq = actor_for(hq_admin, store1)
    consent_record(actor=hq, member=member, purpose="health", granted=True, text_version="v1", channel="paper")
    member_update(actor=hq, member=member, data=MemberInput(custom={"allergy": "青霉素"}))
    client = client_for(manager)
    detail = client.get(f"/members/{member.pk}/").content.decode()
    assert "青霉素" not in detail
    assert f'hx-post="/members/{member.pk}/reveal/custom.allergy/"' in detail

    response = client.post(f"/members/{member.pk}/reveal/custom.allergy/")

    assert response.status_code == 200
    assert "青霉素" in response.content.decode()
    assert AuditLog.objects.get(action="member.reveal").detail == {"field": "custom.allergy"}


# --- Consent and photo ---------------------------------------------------------------------------------------------------


def test_grant_and_withdraw_consent(receptionist, store1, make_member, client_for):
    member = make_member(store1)
    client = client_for(receptionist)
    response = client.post(f"/members/{member.pk}/consent/", {"purpose": "photo", "granted": "1", "channel": "paper"})
    assert response.status_code == 302
    assert consent_state(member)["photo"] is True
    client.post(f"/members/{member.pk}/consent/", {"purpose": "photo", "granted": "0", "channel": "tablet"})
    assert consent_state(member)["photo"] is False
    assert list(ConsentRecord.objects.filter(member=member).values_list("granted", "channel", "recorded_by")) == [
        (False, "tablet", receptionist.pk),
        (True, "paper", receptionist.pk),
    ]


def test_photo_upload_and_view(receptionist, store1, make_member, client_for):
    member = make_member(store1)
    client = client_for(receptionist)
    client.post(f"/members/{member.pk}/consent/", {"purpose": "photo", "granted": "1", "channel": "tablet"})
    upload = _upload("me.png", PNG_1PX, "image/png")

    response = client.post(f"/members/{member.pk}/photo/upload/", {"photo": upload})

    assert response.status_code == 302
    assert MemberPhoto.objects.get(member=member).content_type == "image/png"
    detail = client.get(f"/members/{member.pk}/").content.decode()
    assert f'src="/members/{member.pk}/photo/"' in detail
    photo = client.get(f"/members/{member.pk}/photo/")
    assert photo.status_code == 200
    assert photo["Content-Type"] == "image/png"
    assert photo.content == PNG_1PX
    assert AuditLog.objects.filter(action="member.photo_view", staff=receptionist).count() == 1


def test_photo_upload_rejects_non_images_beside_the_field(receptionist, store1, make_member, client_for):
    member = make_member(store1)
    client = client_for(receptionist)
    client.post(f"/members/{member.pk}/consent/", {"purpose": "photo", "granted": "1", "channel": "tablet"})
    response = client.post(
        f"/members/{member.pk}/photo/upload/", {"photo": _upload("x.png", b"<svg></svg>", "image/png")}
    )
    assert response.status_code == 400
    assert _field_errors(response.content.decode(), "photo") == ["只能上传 JPEG、PNG 或 WebP 图片。"]
    assert not MemberPhoto.objects.exists()


def test_photo_upload_without_consent_error_from_service(receptionist, store1, make_member, client_for):
    member = make_member(store1)
    response = client_for(receptionist, language="en").post(
        f"/members/{member.pk}/photo/upload/", {"photo": _upload("me.png", PNG_1PX, "image/png")}
    )
    assert response.status_code == 400
    assert _field_errors(response.content.decode(), "photo") == [
        "photo: the member has not given her separate photo consent."
    ]
    assert not MemberPhoto.objects.exists()


def _upload(name: str, data: bytes, content_type: str):  # type: ignore[no-untyped-def]
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type=content_type)


# --- Export and erasure ---------------------------------------------------------------------------------------------------


def test_export_downloads_json(manager, store1, make_member, client_for):
    member = make_member(store1, phone="13812345678", name="王丽")
    response = client_for(manager).post(f"/members/{member.pk}/export/")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="member-{member.member_no}.json"'
    data = json.loads(response.content)
    assert data["format"] == "meiye.member_export.v1"
    assert (data["member"]["name"], data["member"]["phone"]) == ("王丽", "13812345678")
    assert AuditLog.objects.filter(action="member.export", staff=manager).count() == 1


def test_export_needs_permission(receptionist, store1, make_member, client_for):
    member = make_member(store1)
    response = client_for(receptionist).post(f"/members/{member.pk}/export/")
    assert response.status_code == 403
    assert "您的岗位没有此权限（member.export）。" in response.content.decode()
    assert not AuditLog.objects.filter(action="member.export").exists()


def test_erase_with_reason(hq_admin, store1, make_member, client_for):
    member = make_member(store1, name="王丽")
    client = client_for(hq_admin)
    assert client.get(f"/members/{member.pk}/erase/").status_code == 200
    response = client.post(f"/members/{member.pk}/erase/", {"reason": "本人书面申请", "confirm": "on"})
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.status == MemberStatus.ERASED
    assert member.phone is None
    assert member.erasure.reason == "本人书面申请"


def test_erase_without_reason_error_beside_reason(hq_admin, store1, make_member, client_for):
    member = make_member(store1)
    response = client_for(hq_admin).post(f"/members/{member.pk}/erase/", {"reason": " ", "confirm": "on"})
    assert response.status_code == 400
    assert _field_errors(response.content.decode(), "reason") == ["注销原因：必填。"]
    member.refresh_from_db()
    assert member.status == MemberStatus.ACTIVE


def test_erase_is_only_for_roles_with_permission(manager, store1, make_member, client_for):
    member = make_member(store1)
    client = client_for(manager)
    assert client.get(f"/members/{member.pk}/erase/").status_code == 403
    assert f"/members/{member.pk}/erase/" not in client.get(f"/members/{member.pk}/").content.decode()


# --- Duplicates and merge --------------------------------------------------------------------------------------------------


def test_duplicates_page_and_merge(manager, store1, make_member, client_for):
    first = make_member(store1, name="王丽", birthday=date(1990, 3, 7))
    second = make_member(store1, name="王丽", birthday=date(1990, 3, 7), tags=["VIP"])
    client = client_for(manager)
    page = client.get("/members/duplicates/")
    assert page.status_code == 200
    content = page.content.decode()
    assert first.member_no in content and second.member_no in content

    response = client.post("/members/duplicates/merge/", {"survivor": first.pk, "merged": second.pk})

    assert response.status_code == 302
    assert response["Location"] == f"/members/{first.pk}/"
    second.refresh_from_db()
    assert (second.status, second.merged_into_id) == (MemberStatus.MERGED, first.pk)
    assert [t.name for t in first.tags.all()] == ["VIP"]


def test_merge_into_herself_is_refused_beside_the_group(manager, store1, make_member, client_for):
    first = make_member(store1, name="王丽", birthday=date(1990, 3, 7))
    make_member(store1, name="王丽", birthday=date(1990, 3, 7))
    response = client_for(manager).post("/members/duplicates/merge/", {"survivor": first.pk, "merged": first.pk})
    assert response.status_code == 400
    assert (
        '<p class="alert alert-error field-error" role="alert">不能把会员合并到自己。</p>' in response.content.decode()
    )
    assert Member.objects.filter(status=MemberStatus.MERGED).count() == 0


def test_receptionist_cannot_merge(receptionist, store1, make_member, client_for):
    first = make_member(store1, name="王丽", birthday=date(1990, 3, 7))
    second = make_member(store1, name="王丽", birthday=date(1990, 3, 7))
    client = client_for(receptionist)
    assert 'name="survivor"' not in client.get("/members/duplicates/").content.decode()
    assert client.post("/members/duplicates/merge/", {"survivor": first.pk, "merged": second.pk}).status_code == 403


# --- Custom fields on the edit form ------------------------------------------------------------------------------


def test_edit_protected_field_blank_keeps_value_and_new_value_replaces(
    manager, store1, make_member, allergy, actor_for, hq_admin, client_for
):
    member = make_member(store1)
    hq = actor_for(hq_admin, store1)
    consent_record(actor=hq, member=member, purpose="health", granted=True, text_version="v1", channel="paper")
    member_update(actor=hq, member=member, data=MemberInput(custom={"allergy": "青霉素"}))
    client = client_for(manager)
    page = client.get(f"/members/{member.pk}/edit/").content.decode()
    assert "青霉素" not in page
    assert 'name="custom__allergy" placeholder="已记录，留空则不修改"' in page
    base = {"name": member.name, "gender": "F", "channel": "walk_in", "home_store": store1.pk}

    assert client.post(f"/members/{member.pk}/edit/", {**base, "custom__allergy": ""}).status_code == 302
    member.refresh_from_db()
    assert json.loads(member.custom_sensitive) == {"allergy": "青霉素"}

    assert client.post(f"/members/{member.pk}/edit/", {**base, "custom__allergy": "花粉"}).status_code == 302
    member.refresh_from_db()
    assert json.loads(member.custom_sensitive) == {"allergy": "花粉"}


def test_edit_hides_protected_fields_from_roles_that_cannot_write_them(
    receptionist, store1, make_member, allergy, client_for
):
    member = make_member(store1)
    page = client_for(receptionist).get(f"/members/{member.pk}/edit/").content.decode()
    assert 'name="custom__allergy"' not in page
    assert "您的岗位不能修改此字段" in page


def test_edit_required_custom_field_error_beside_custom_input(
    receptionist, store1, make_member, hq_admin, actor_for, client_for
):
    member = make_member(store1, name="王丽")
    custom_field_save(
        actor=actor_for(hq_admin), key="source_note", label_zh="来源说明", label_en="Source note", required=True
    )
    base = {"name": "王丽", "gender": "F", "channel": "walk_in", "home_store": store1.pk, "custom__source_note": ""}

    zh = client_for(receptionist).post(f"/members/{member.pk}/edit/", base)
    en = client_for(receptionist, language="en").post(f"/members/{member.pk}/edit/", base)

    assert zh.status_code == en.status_code == 400
    assert _field_errors(zh.content.decode(), "custom__source_note") == ["来源说明：必填。"]
    assert _field_errors(en.content.decode(), "custom__source_note") == ["Source note: this field is required."]
    assert not AuditLog.objects.filter(action="member.update").exists()
