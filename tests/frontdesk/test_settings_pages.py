"""Settings pages: custom fields, staff, stores; navigation by permission."""

from __future__ import annotations

import html
import re

from meiye.audit.models import AuditLog
from meiye.members.models import CustomField
from meiye.org.models import Staff, Store


def _field_errors(content: str, name: str) -> list[str]:
    match = re.search(
        rf'<div class="field-errors" id="error-{re.escape(name)}" role="alert">(.*?)</div>', content, re.S
    )
    return (
        [html.unescape(e) for e in re.findall(r'<p class="field-error">(.*?)</p>', match.group(1), re.S)]
        if match
        else []
    )


def _nav(content: str) -> list[str]:
    match = re.search(r'<nav class="mainnav"[^>]*>(.*?)</nav>', content, re.S)
    assert match is not None
    return re.findall(r">([^<>]+)</a>", match.group(1))


def test_navigation_follows_permissions(receptionist, manager, hq_admin, client_for):
    assert _nav(client_for(receptionist).get("/members/").content.decode()) == ["会员", "重复会员"]
    assert _nav(client_for(manager).get("/members/").content.decode()) == ["会员", "重复会员", "设置", "审计日志"]
    assert _nav(client_for(hq_admin, language="en").get("/members/").content.decode()) == [
        "Members",
        "Duplicates",
        "Settings",
        "Audit log",
    ]


def test_settings_index_redirects_to_first_allowed_page(receptionist, manager, hq_admin, client_for):
    assert client_for(hq_admin).get("/settings/")["Location"] == "/settings/custom-fields/"
    assert client_for(manager).get("/settings/")["Location"] == "/settings/staff/"
    assert client_for(receptionist).get("/settings/").status_code == 403


# --- Custom fields ------------------------------------------------------------------------------------------------------


def test_custom_field_create_list_edit(hq_admin, client_for):
    client = client_for(hq_admin)
    assert client.get("/settings/custom-fields/new/").status_code == 200
    payload = {
        "key": "skin",
        "label_zh": "肤质",
        "label_en": "Skin type",
        "field_type": "choice",
        "choices": "干性\n油性\n混合",
        "retention": "erase",
        "order": "1",
        "is_active": "on",
    }
    response = client.post("/settings/custom-fields/new/", payload)
    assert response.status_code == 302
    field = CustomField.objects.get()
    assert (field.key, field.label_zh, field.choices, field.is_active) == (
        "skin",
        "肤质",
        ["干性", "油性", "混合"],
        True,
    )

    listing = client.get("/settings/custom-fields/").content.decode()
    assert "肤质" in listing and "/settings/custom-fields/skin/edit/" in listing

    edit = client.get("/settings/custom-fields/skin/edit/")
    assert edit.status_code == 200
    assert "干性\n油性\n混合</textarea>" in edit.content.decode()
    response = client.post("/settings/custom-fields/skin/edit/", {**payload, "key": "ignored", "label_zh": "皮肤类型"})
    assert response.status_code == 302
    field.refresh_from_db()
    assert (field.key, field.label_zh) == ("skin", "皮肤类型")
    assert CustomField.objects.count() == 1


def test_custom_field_errors_beside_fields(hq_admin, client_for):
    client = client_for(hq_admin)
    payload = {"key": "Skin Type", "label_zh": "肤质", "field_type": "text", "retention": "erase", "order": "0"}
    response = client.post("/settings/custom-fields/new/", payload)
    assert response.status_code == 400
    assert _field_errors(response.content.decode(), "key") == [
        "字段键：小写字母开头，只含小写字母、数字和下划线，最多 40 个字符。"
    ]
    response = client_for(hq_admin, language="en").post(
        "/settings/custom-fields/new/", {**payload, "key": "skin", "field_type": "choice", "choices": "only"}
    )
    assert _field_errors(response.content.decode(), "choices") == ["choices: a choice field needs at least 2 options."]
    assert CustomField.objects.count() == 0


def test_custom_fields_need_permission(manager, client_for):
    assert client_for(manager).get("/settings/custom-fields/").status_code == 403
    assert client_for(manager).get("/settings/custom-fields/skin/edit/").status_code == 403


def test_unknown_custom_field_is_404(hq_admin, client_for):
    assert client_for(hq_admin).get("/settings/custom-fields/nothing/edit/").status_code == 404


# --- Staff ----------------------------------------------------------------------------------------------------------------


def test_staff_list_for_manager_is_read_only(manager, receptionist, receptionist2, client_for):
    client = client_for(manager)
    response = client.get("/settings/staff/")
    assert response.status_code == 200
    content = response.content.decode()
    assert "reception1" in content
    assert "reception2" not in content  # another store's staff
    assert "/settings/staff/new/" not in content
    assert client.get("/settings/staff/new/").status_code == 403


def test_receptionist_cannot_see_staff(receptionist, client_for):
    assert client_for(receptionist).get("/settings/staff/").status_code == 403


def test_staff_create_and_edit(hq_admin, store1, store2, client_for):
    client = client_for(hq_admin)
    payload = {
        "username": "newbie",
        "display_name": "小美",
        "position": "beautician",
        "stores": [store2.pk],
        "password": "Sali-0n-Rose!",
    }
    response = client.post("/settings/staff/new/", payload)
    assert response.status_code == 302
    staff = Staff.objects.get(username="newbie")
    assert (staff.display_name, staff.position, [s.pk for s in staff.stores.all()]) == (
        "小美",
        "beautician",
        [store2.pk],
    )
    assert staff.check_password("Sali-0n-Rose!")

    edit = {"display_name": "小美美", "position": "senior_beautician", "stores": [store1.pk, store2.pk]}
    response = client.post(f"/settings/staff/{staff.pk}/", edit)
    assert response.status_code == 302
    staff.refresh_from_db()
    assert (staff.display_name, staff.position, staff.is_active) == ("小美美", "senior_beautician", False)
    assert sorted(s.pk for s in staff.stores.all()) == [store1.pk, store2.pk]
    assert AuditLog.objects.filter(action="staff.update", object_id=str(staff.pk)).count() == 1


def test_staff_weak_password_error_beside_field(hq_admin, store1, client_for):
    payload = {"username": "newbie", "position": "receptionist", "stores": [store1.pk], "password": "12345678"}
    response = client_for(hq_admin).post("/settings/staff/new/", payload)
    assert response.status_code == 400
    errors = _field_errors(response.content.decode(), "password")
    assert len(errors) == 1 and errors[0].startswith("密码：")
    assert 'name="username" value="newbie"' in response.content.decode()
    assert not Staff.objects.filter(username="newbie").exists()


def test_staff_username_taken_error_beside_field(hq_admin, receptionist, client_for):
    payload = {"username": "reception1", "position": "receptionist", "password": "Sali-0n-Rose!"}
    response = client_for(hq_admin, language="en").post("/settings/staff/new/", payload)
    assert response.status_code == 400
    assert _field_errors(response.content.decode(), "username") == ["Username reception1 is already used."]


def test_staff_totp_reset(hq_admin, manager, client_for):
    manager.totp_secret = "JBSWY3DPEHPK3PXP"
    manager.totp_enabled = True
    manager.save()
    client = client_for(hq_admin)
    assert "/reset-2fa/" in client.get(f"/settings/staff/{manager.pk}/").content.decode()
    response = client.post(f"/settings/staff/{manager.pk}/reset-2fa/")
    assert response.status_code == 302
    manager.refresh_from_db()
    assert (manager.totp_enabled, manager.totp_secret) == (False, None)


# --- Stores -----------------------------------------------------------------------------------------------------------------


def test_store_create_and_edit(hq_admin, store1, client_for):
    client = client_for(hq_admin)
    payload = {
        "code": "s9",
        "name": "浦东店",
        "address": "世纪大道 1 号",
        "phone": "021-55555555",
        "time_zone": "Asia/Shanghai",
        "opening_hours": "mon 10:00-21:00\nSAT 09:30 - 22:00",
    }
    response = client.post("/settings/stores/new/", payload)
    assert response.status_code == 302
    store = Store.objects.get(code="s9")
    assert (store.name, store.opening_hours) == ("浦东店", {"mon": ["10:00", "21:00"], "sat": ["09:30", "22:00"]})
    assert "浦东店" in client.get("/settings/stores/").content.decode()

    edit_page = client.get(f"/settings/stores/{store.pk}/").content.decode()
    assert "mon 10:00-21:00\nsat 09:30-22:00</textarea>" in edit_page
    response = client.post(f"/settings/stores/{store.pk}/", {**payload, "name": "浦东旗舰店", "is_active": "on"})
    assert response.status_code == 302
    store.refresh_from_db()
    assert (store.code, store.name, store.is_active) == ("s9", "浦东旗舰店", True)


def test_store_errors_beside_fields(hq_admin, store1, client_for):
    client = client_for(hq_admin, language="en")
    payload = {"code": "s1", "name": "重复", "time_zone": "Asia/Shanghai"}
    response = client.post("/settings/stores/new/", payload)
    assert _field_errors(response.content.decode(), "code") == ["Store code s1 is already used."]
    response = client.post("/settings/stores/new/", {**payload, "code": "s8", "time_zone": "Mars/Base"})
    assert _field_errors(response.content.decode(), "time_zone") == [
        "time_zone: 'Mars/Base' is not a valid time zone name, e.g. Asia/Shanghai."
    ]
    response = client.post("/settings/stores/new/", {**payload, "code": "s8", "opening_hours": "monday 9-5"})
    assert _field_errors(response.content.decode(), "opening_hours") == [
        "Cannot read “monday 9-5”: write e.g. mon 10:00-21:00 (mon tue wed thu fri sat sun)."
    ]
    assert sorted(Store.objects.values_list("code", flat=True)) == ["s1", "s2"]


def test_stores_need_permission(manager, store1, client_for):
    assert client_for(manager).get("/settings/stores/").status_code == 403
    assert client_for(manager).get(f"/settings/stores/{store1.pk}/").status_code == 403
