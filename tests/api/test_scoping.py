"""Store scoping: a store-1 receptionist can neither see nor touch a store-2 member, store or colleague."""

from __future__ import annotations

import pytest

from meiye.audit.models import AuditLog
from meiye.members.models import ConsentRecord, Member

MEMBERS = "/api/v1/members/"
PROBLEM = "application/problem+json"


@pytest.fixture
def member_of_store2(make_member, store2):
    return make_member(store2, phone="13900002222", name="徐汇会员")


@pytest.mark.parametrize(
    ("method", "action", "payload"),
    [
        ("get", "", None),
        ("patch", "", {"name": "改名"}),
        ("post", "reveal/", {"field": "phone"}),
        ("get", "export/", None),
        ("post", "consents/", {"purpose": "marketing_sms", "granted": True, "text_version": "v1"}),
    ],
)
def test_store2_member_is_not_found_for_a_store1_receptionist(reception_api, member_of_store2, method, action, payload):
    # given
    audit_before = AuditLog.objects.count()

    # when
    url = f"{MEMBERS}{member_of_store2.pk}/{action}"
    response = getattr(reception_api, method)(url, payload, format="json")

    # then: 404 problem, exactly as for a member that does not exist, and nothing written
    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["code"] == "member.not_found"
    assert body["detail_zh"] == "找不到会员，或您无权查看。"
    assert body["detail_en"] == "Member not found, or not visible to you."
    assert AuditLog.objects.count() == audit_before
    member_of_store2.refresh_from_db()
    assert member_of_store2.name == "徐汇会员"
    assert ConsentRecord.objects.filter(member=member_of_store2).count() == 0


def test_hq_admin_sees_the_store2_member(hq_api, member_of_store2):
    # HQ roles see every store: the same member is found
    assert hq_api.get(f"{MEMBERS}{member_of_store2.pk}/").status_code == 200


def test_list_and_search_of_a_store1_receptionist_never_include_store2(
    reception_api, make_member, store1, member_of_store2
):
    own = make_member(store1, phone="13800001111", name="徐静")

    everyone = reception_api.get(MEMBERS).json()
    by_phone = reception_api.get(MEMBERS, {"q": "13900002222"}).json()
    by_name = reception_api.get(MEMBERS, {"q": "徐"}).json()
    by_number = reception_api.get(MEMBERS, {"q": member_of_store2.member_no}).json()
    lookup = reception_api.get(MEMBERS + "lookup/", {"phone": "13900002222"})

    assert [row["id"] for row in everyone["results"]] == [own.pk]
    assert everyone["count"] == 1
    assert by_phone["results"] == []
    assert [row["id"] for row in by_name["results"]] == [own.pk]
    assert by_number["results"] == []
    assert lookup.status_code == 404
    assert lookup.json()["code"] == "member.not_found"


def test_creating_a_member_in_store2_is_refused_and_creates_nothing(reception_api, store2):
    response = reception_api.post(
        MEMBERS, {"name": "越权", "phone": "13812345678", "home_store_id": store2.pk}, format="json"
    )

    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM
    assert response.json()["code"] == "store.not_found"
    assert Member.objects.count() == 0
    assert not AuditLog.objects.filter(action="member.create").exists()


def test_moving_a_member_to_store2_is_refused(reception_api, make_member, store1, store2):
    member = make_member(store1)

    response = reception_api.patch(f"{MEMBERS}{member.pk}/", {"home_store_id": store2.pk}, format="json")

    assert response.status_code == 404
    assert response.json()["code"] == "store.not_found"
    member.refresh_from_db()
    assert member.home_store_id == store1.pk


def test_acting_store_header_must_be_a_visible_store(client_for, receptionist, store1, store2):
    own = client_for(receptionist, HTTP_X_STORE_ID=str(store1.pk)).get("/api/v1/me/")
    other = client_for(receptionist, HTTP_X_STORE_ID=str(store2.pk)).get("/api/v1/me/")
    garbage = client_for(receptionist, HTTP_X_STORE_ID="abc").get("/api/v1/me/")

    assert own.status_code == 200
    assert own.json()["acting_store"]["id"] == store1.pk
    assert other.status_code == 404
    assert other.json()["code"] == "store.not_found"
    assert garbage.status_code == 404
    assert garbage.json()["code"] == "store.not_found"


def test_hq_admin_files_a_member_in_the_store_named_by_the_header(client_for, hq_admin, store2):
    api = client_for(hq_admin, HTTP_X_STORE_ID=str(store2.pk))

    response = api.post(MEMBERS, {"name": "总部录入", "phone": "13812345678"}, format="json")

    assert response.status_code == 201
    assert response.json()["home_store"]["id"] == store2.pk
    assert AuditLog.objects.get(action="member.create").store_id == store2.pk


def test_stores_are_scoped(reception_api, hq_api, store1, store2):
    mine = reception_api.get("/api/v1/stores/").json()
    everything = hq_api.get("/api/v1/stores/").json()
    hidden = reception_api.get(f"/api/v1/stores/{store2.pk}/")
    shown = reception_api.get(f"/api/v1/stores/{store1.pk}/")

    assert [row["id"] for row in mine["results"]] == [store1.pk]
    assert [row["id"] for row in everything["results"]] == [store1.pk, store2.pk]
    assert hidden.status_code == 404
    assert hidden.json()["code"] == "store.not_found"
    assert shown.json() == {
        "id": store1.pk,
        "code": "s1",
        "name": "静安店",
        "address": "",
        "phone": "",
        "time_zone": "Asia/Shanghai",
        "opening_hours": {},
        "is_active": True,
    }


def test_staff_needs_staff_view_and_is_scoped(
    reception_api, client_for, manager, receptionist, receptionist2, beautician
):
    refused = reception_api.get("/api/v1/staff/")
    listed = client_for(manager).get("/api/v1/staff/")
    other_store = client_for(manager).get(f"/api/v1/staff/{receptionist2.pk}/")
    colleague = client_for(manager).get(f"/api/v1/staff/{receptionist.pk}/")

    assert refused.status_code == 403
    assert refused.json()["code"] == "auth.permission_denied"
    assert refused.json()["extra"] == {"permission": "staff.view"}
    assert sorted(row["username"] for row in listed.json()["results"]) == ["beautician1", "manager1", "reception1"]
    assert other_store.status_code == 404
    assert other_store.json()["code"] == "staff.not_found"
    assert colleague.status_code == 200
    assert colleague.json()["position"] == "receptionist"
    assert colleague.json()["stores"] == [{"id": receptionist.stores.get().pk, "code": "s1", "name": "静安店"}]
