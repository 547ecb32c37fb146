"""Members through the API: CRUD round trip, masking, audited reveal, validation, export, erasure, consent."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from meiye.audit.models import AuditLog
from meiye.members.models import ConsentRecord, Member, MemberStatus

MEMBERS = "/api/v1/members/"
PROBLEM = "application/problem+json"

NEW_MEMBER = {
    "name": "王丽",
    "phone": "138 1234 5678",
    "gender": "F",
    "birthday": "1990-03-07",
    "email": "wangli@example.com",
    "channel": "meituan",
    "tags": ["敏感肌", "VIP"],
    "notes": "喜欢安静的房间",
    "consents": [{"purpose": "data", "granted": True}],
}


def detail_url(member_id: int, action: str = "") -> str:
    return f"{MEMBERS}{member_id}/" + (f"{action}/" if action else "")


def test_member_round_trip_create_retrieve_update_list(reception_api, store1):
    # when: registered
    created = reception_api.post(MEMBERS, NEW_MEMBER, format="json")

    # then: 201 and a masked representation, filed in the acting store
    assert created.status_code == 201
    body = created.json()
    member = Member.objects.get()
    assert body["id"] == member.pk
    assert body["member_no"] == "M000001"
    assert body["name"] == "王丽"
    assert body["gender"] == "F"
    assert body["phone"] == "138****5678"
    assert body["email"] == "w***@example.com"
    assert body["id_number"] == ""
    assert body["birthday"] == "1990-03-07"
    assert body["channel"] == "meituan"
    assert body["home_store"] == {"id": store1.pk, "code": "s1", "name": "静安店"}
    assert body["tags"] == ["VIP", "敏感肌"]
    assert body["notes"] == "喜欢安静的房间"
    assert body["status"] == "active"
    assert body["referrer"] is None
    assert body["consents"] == {
        "data": True,
        "health": False,
        "photo": False,
        "marketing_sms": False,
        "marketing_wechat": False,
        "marketing_email": False,
    }
    assert body["can_reveal"] == {
        "phone": True,
        "id_number": False,
        "email": False,
        "address": False,
        "custom": False,
    }
    assert ConsentRecord.objects.get().channel == "api"
    # the full value is stored (encrypted) but never sent
    assert member.phone == "13812345678"
    assert "13812345678" not in created.content.decode()

    # when: read back
    fetched = reception_api.get(detail_url(member.pk))
    # then: the same representation
    assert fetched.status_code == 200
    assert fetched.json() == body

    # when: changed
    changed = reception_api.patch(detail_url(member.pk), {"notes": "改约到周五", "email": ""}, format="json")
    # then: only the fields sent changed
    assert changed.status_code == 200
    assert changed.json()["notes"] == "改约到周五"
    assert changed.json()["email"] == ""
    assert changed.json()["phone"] == "138****5678"
    assert changed.json()["tags"] == ["VIP", "敏感肌"]
    member.refresh_from_db()
    assert (member.notes, member.email, member.name) == ("改约到周五", None, "王丽")
    assert AuditLog.objects.get(action="member.update").detail == {"fields": ["email", "notes"]}

    # when: listed
    listed = reception_api.get(MEMBERS)
    # then: paginated summaries, masked
    assert listed.status_code == 200
    assert listed.json() == {
        "count": 1,
        "next": None,
        "previous": None,
        "results": [
            {
                "id": member.pk,
                "member_no": "M000001",
                "name": "王丽",
                "gender": "F",
                "phone": "138****5678",
                "home_store": {"id": store1.pk, "code": "s1", "name": "静安店"},
                "status": "active",
                "tags": ["VIP", "敏感肌"],
            }
        ],
    }


def test_list_searches_by_phone_member_no_name_and_tag(reception_api, make_member, store1):
    # given
    wang = make_member(store1, phone="13812345678", name="王丽", tags=["VIP"])
    li = make_member(store1, phone="13900001111", name="李娜")
    wang_no = wang.member_no

    def ids(**params: str) -> list[int]:
        response = reception_api.get(MEMBERS, params)
        assert response.status_code == 200
        return [row["id"] for row in response.json()["results"]]

    # then
    assert ids() == [li.pk, wang.pk]
    assert ids(q="13812345678") == [wang.pk]
    assert ids(q="1381234") == []  # partial phone numbers are not searchable
    assert ids(q=wang_no) == [wang.pk]
    assert ids(q=wang_no.lower()) == [wang.pk]
    assert ids(q="李") == [li.pk]
    assert ids(tag="VIP") == [wang.pk]
    assert ids(q="王", tag="VIP") == [wang.pk]
    assert ids(q="李", tag="VIP") == []


def test_list_paginates_with_limit_and_offset(reception_api, make_member, store1):
    members = [make_member(store1) for _ in range(3)]

    response = reception_api.get(MEMBERS + "?limit=2&offset=1")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert [row["id"] for row in body["results"]] == [members[1].pk, members[0].pk]


def test_list_query_count_does_not_grow_with_the_page(reception_api, make_member, store1):
    # given: a warmed-up client (token last-used stamp written)
    make_member(store1, tags=["VIP"])
    reception_api.get(MEMBERS)

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert reception_api.get(MEMBERS).status_code == 200
        return len(ctx.captured_queries)

    one = queries()
    for _ in range(5):
        make_member(store1, tags=["VIP", "新客"])
    six = queries()

    # then: token+staff+organisation, acting store, visible store ids, count, page, tags (prefetched)
    assert one == six == 6


def test_reveal_returns_the_full_phone_and_writes_an_audit_row(reception_api, make_member, store1, receptionist):
    # given
    member = make_member(store1, phone="13812345678")
    before = AuditLog.objects.filter(action="member.reveal").count()

    # when
    response = reception_api.post(detail_url(member.pk, "reveal"), {"field": "phone"}, format="json")

    # then
    assert response.status_code == 200
    assert response.json() == {"field": "phone", "value": "13812345678"}
    assert before == 0
    row = AuditLog.objects.get(action="member.reveal")
    assert row.detail == {"field": "phone"}
    assert row.staff == receptionist
    assert row.store == store1
    assert row.object_type == "members.Member"
    assert row.object_id == str(member.pk)
    assert row.ip == "127.0.0.1"


def test_reveal_refused_without_the_permission_writes_nothing(reception_api, make_member, store1):
    member = make_member(store1, id_number="110101199003071233")

    response = reception_api.post(detail_url(member.pk, "reveal"), {"field": "id_number"}, format="json")

    assert response.status_code == 403
    assert response["Content-Type"] == PROBLEM
    assert response.json()["code"] == "auth.permission_denied"
    assert not AuditLog.objects.filter(action="member.reveal").exists()


def test_reveal_of_an_unknown_field_is_refused(reception_api, make_member, store1):
    member = make_member(store1)

    response = reception_api.post(detail_url(member.pk, "reveal"), {"field": "password"}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "member.unknown_field"
    assert response.json()["field"] == "field"
    assert not AuditLog.objects.filter(action="member.reveal").exists()


def test_bad_phone_is_a_400_naming_the_field_in_chinese_and_english_and_creates_nothing(reception_api):
    audit_before = AuditLog.objects.count()

    response = reception_api.post(MEMBERS, {**NEW_MEMBER, "phone": "12345"}, format="json")

    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["code"] == "member.invalid_phone"
    assert body["field"] == "phone"
    assert body["status"] == 400
    assert body["detail_zh"] == "手机号：需要 11 位中国大陆手机号，如 13812345678。"
    assert body["detail_en"] == "phone: must be an 11-digit mainland China mobile number, e.g. 13812345678."
    assert body["detail"] == body["detail_zh"]  # Chinese unless the client asks for English
    assert body["instance"] == MEMBERS
    assert Member.objects.count() == 0
    assert AuditLog.objects.count() == audit_before
    assert ConsentRecord.objects.count() == 0


def test_problem_detail_follows_accept_language(reception_api):
    response = reception_api.post(MEMBERS, {**NEW_MEMBER, "phone": "12345"}, format="json", HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 400
    assert response.json()["detail"] == "phone: must be an 11-digit mainland China mobile number, e.g. 13812345678."


def test_serializer_errors_are_problems_with_messages_per_field(reception_api):
    response = reception_api.post(
        MEMBERS, {"phone": "13812345678", "birthday": "1990-13-40", "tags": "VIP"}, format="json"
    )

    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["code"] == "input.invalid"
    assert body["detail_zh"] == "输入有误，请按 errors 中各字段的说明修改。"
    assert body["detail_en"] == "Invalid input; see the messages per field in errors."
    assert sorted(body["errors"]) == ["birthday", "name", "tags"]
    assert body["field"] in {"birthday", "name", "tags"}
    assert all(isinstance(message, str) and message for message in body["errors"]["birthday"])
    assert Member.objects.count() == 0


def test_future_birthday_is_refused_by_the_service_rule(reception_api):
    response = reception_api.post(MEMBERS, {**NEW_MEMBER, "birthday": "2999-01-01"}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "member.invalid_date"
    assert response.json()["field"] == "birthday"
    assert Member.objects.count() == 0


def test_duplicate_phone_is_a_409_and_creates_nothing(reception_api, make_member, store1):
    existing = make_member(store1, phone="13812345678")

    response = reception_api.post(MEMBERS, NEW_MEMBER, format="json")

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "member.duplicate_phone"
    assert body["field"] == "phone"
    assert body["extra"] == {"member_no": existing.member_no}
    assert body["detail_en"].startswith("phone: this number already belongs to member")
    assert list(Member.objects.values_list("pk", flat=True)) == [existing.pk]


def test_update_to_a_taken_phone_is_a_409_and_changes_nothing(reception_api, make_member, store1):
    first = make_member(store1, phone="13812345678")
    second = make_member(store1, phone="13900001111", name="李娜")

    response = reception_api.patch(detail_url(second.pk), {"phone": "13812345678", "name": "李娜娜"}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "member.duplicate_phone"
    second.refresh_from_db()
    assert (second.phone, second.name) == ("13900001111", "李娜")
    assert first.phone == "13812345678"
    assert not AuditLog.objects.filter(action="member.update").exists()


def test_lookup_by_full_phone(reception_api, make_member, store1):
    member = make_member(store1, phone="13812345678")

    found = reception_api.get(MEMBERS + "lookup/?phone=%2B86%20138-1234-5678")
    missing = reception_api.get(MEMBERS + "lookup/?phone=13900000000")
    no_phone = reception_api.get(MEMBERS + "lookup/")

    assert found.status_code == 200
    assert found.json()["id"] == member.pk
    assert found.json()["phone"] == "138****5678"
    assert missing.status_code == 404
    assert missing.json()["code"] == "member.not_found"
    assert no_phone.status_code == 400
    assert no_phone.json()["code"] == "input.required"
    assert no_phone.json()["field"] == "phone"


def test_export_is_json_and_audited(client_for, manager, make_member, store1):
    member = make_member(store1, phone="13812345678", name="王丽")

    response = client_for(manager).get(detail_url(member.pk, "export"))

    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="member-{member.member_no}.json"'
    body = response.json()
    assert body["format"] == "meiye.member_export.v1"
    assert body["member"]["member_no"] == member.member_no
    assert body["member"]["phone"] == "13812345678"
    assert body["member"]["home_store"] == "静安店"
    export_row = AuditLog.objects.get(action="member.export")
    assert export_row.staff == manager
    assert export_row.object_id == str(member.pk)


def test_export_needs_the_permission(reception_api, make_member, store1):
    member = make_member(store1)

    response = reception_api.get(detail_url(member.pk, "export"))

    assert response.status_code == 403
    assert response.json()["code"] == "auth.permission_denied"
    assert not AuditLog.objects.filter(action="member.export").exists()


def test_erase_anonymises_the_member(hq_api, make_member, store1):
    member = make_member(store1, phone="13812345678", name="王丽", email="w@example.com")

    response = hq_api.post(detail_url(member.pk, "erase"), {"reason": "会员书面申请"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["member_id"] == member.pk
    assert body["member_no"] == member.member_no
    assert body["status"] == "erased"
    assert body["reason"] == "会员书面申请"
    assert body["erased_fields"] == ["phone", "email", "name"]
    assert body["kept_fields"] == []
    member.refresh_from_db()
    assert member.status == MemberStatus.ERASED
    assert member.phone is None
    assert member.name == f"已注销会员 {member.member_no}"


def test_erase_refused_for_a_receptionist_changes_nothing(reception_api, make_member, store1):
    member = make_member(store1, phone="13812345678", name="王丽")

    response = reception_api.post(detail_url(member.pk, "erase"), {"reason": "test"}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "auth.permission_denied"
    member.refresh_from_db()
    assert (member.status, member.name, member.phone) == ("active", "王丽", "13812345678")
    assert not AuditLog.objects.filter(action="member.erase").exists()


def test_record_consent(reception_api, make_member, store1):
    member = make_member(store1)

    response = reception_api.post(
        detail_url(member.pk, "consents"), {"purpose": "health", "granted": True, "text_version": "v2"}, format="json"
    )

    assert response.status_code == 201
    record = ConsentRecord.objects.get(member=member)
    assert response.json() == {
        "id": record.pk,
        "member_id": member.pk,
        "purpose": "health",
        "granted": True,
        "text_version": "v2",
        "consent_channel": "api",
        "at": response.json()["at"],
    }
    assert reception_api.get(detail_url(member.pk)).json()["consents"]["health"] is True


@pytest.mark.parametrize(
    ("payload", "code", "field"),
    [
        ({"purpose": "nonsense", "granted": True, "text_version": "v1"}, "input.invalid", "purpose"),
        ({"purpose": "health", "granted": True, "text_version": "  "}, "input.invalid", "text_version"),
        (
            {"purpose": "health", "granted": True, "text_version": "v1", "consent_channel": "fax"},
            "input.invalid",
            "consent_channel",
        ),
    ],
)
def test_invalid_consent_records_nothing(reception_api, make_member, store1, payload, code, field):
    member = make_member(store1)

    response = reception_api.post(detail_url(member.pk, "consents"), payload, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert response.json()["field"] == field
    assert ConsentRecord.objects.filter(member=member).count() == 0


def test_put_is_not_allowed(reception_api, make_member, store1):
    member = make_member(store1)

    response = reception_api.put(detail_url(member.pk), {"name": "x"}, format="json")

    assert response.status_code == 405
    assert response["Content-Type"] == PROBLEM
    assert response.json()["code"] == "http.method_not_allowed"


def test_non_numeric_member_id_is_a_member_not_found_problem(reception_api):
    response = reception_api.get(MEMBERS + "abc/")

    assert response.status_code == 404
    assert response.json()["code"] == "member.not_found"


def test_api_reveal_and_export_are_not_cacheable(hq_admin, store1, make_member, client_for):
    member = make_member(store1, phone="13855556666")
    api = client_for(hq_admin)
    revealed = api.post(f"/api/v1/members/{member.pk}/reveal/", {"field": "phone"}, format="json")
    exported = api.get(f"/api/v1/members/{member.pk}/export/")
    assert "no-store" in revealed["Cache-Control"]
    assert "no-store" in exported["Cache-Control"]


def test_erasure_leaves_no_copy_in_stored_replies(hq_admin, store1, client_for):
    import json

    from meiye.core.models import IdempotencyRecord

    api = client_for(hq_admin)
    created = api.post(
        "/api/v1/members/",
        {
            "name": "赵敏",
            "phone": "13844445555",
            "birthday": "1990-03-07",
            "notes": "孕期，勿做热疗",
            "home_store_id": store1.pk,
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY="create-zhao-1",
    )
    assert created.status_code == 201
    api.post(f"/api/v1/members/{created.json()['id']}/erase/", {"reason": "本人申请"}, format="json")

    blob = json.dumps([r.response for r in IdempotencyRecord.objects.all()], ensure_ascii=False)
    assert "赵敏" not in blob and "孕期" not in blob
