"""Store scoping through the UI: a receptionist of store 1 cannot reach a store-2 member in any way."""

from __future__ import annotations

import pytest

from meiye.audit.models import AuditLog
from meiye.org.middleware import SESSION_STORE


@pytest.fixture
def other_member(store2, make_member):
    return make_member(store2, phone="13700000002", name="徐汇会员")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/members/{pk}/"),
        ("get", "/members/{pk}/edit/"),
        ("post", "/members/{pk}/edit/"),
        ("post", "/members/{pk}/reveal/phone/"),
        ("get", "/members/{pk}/photo/"),
        ("post", "/members/{pk}/photo/upload/"),
        ("post", "/members/{pk}/consent/"),
        ("post", "/members/{pk}/export/"),
    ],
)
def test_member_of_another_store_is_404(receptionist, other_member, client_for, method, path):
    client = client_for(receptionist)
    audit_rows = AuditLog.objects.count()

    response = getattr(client, method)(path.format(pk=other_member.pk))

    assert response.status_code == 404
    assert "找不到页面" in response.content.decode()
    assert AuditLog.objects.count() == audit_rows


def test_member_of_another_store_is_not_listed_or_found(receptionist, other_member, client_for):
    client = client_for(receptionist)
    assert "徐汇会员" not in client.get("/members/").content.decode()
    content = client.get("/members/", {"q": "13700000002"}, headers={"HX-Request": "true"}).content.decode()
    assert "徐汇会员" not in content
    assert "还没有会员" not in content
    assert "没有找到匹配“13700000002”的会员。" in content


def test_receptionist_cannot_switch_to_another_store(receptionist, store1, store2, client_for):
    client = client_for(receptionist)
    page = client.get("/members/").content.decode()
    assert f'<option value="{store1.pk}" selected>静安店</option>' in page
    assert "徐汇店" not in page

    response = client.post("/store/switch/", {"store": store2.pk, "next": "/members/"})

    assert response.status_code == 404
    assert SESSION_STORE not in client.session
    assert "徐汇店" not in client.get("/members/").content.decode()


def test_hq_admin_switches_store(hq_admin, store1, store2, client_for):
    client = client_for(hq_admin)
    page = client.get("/members/").content.decode()
    assert f'<option value="{store1.pk}" selected>静安店</option>' in page
    assert f'<option value="{store2.pk}">徐汇店</option>' in page

    response = client.post("/store/switch/", {"store": store2.pk, "next": "/members/"})

    assert response.status_code == 302
    assert response["Location"] == "/members/"
    assert client.session[SESSION_STORE] == store2.pk
    page = client.get("/members/").content.decode()
    assert f'<option value="{store2.pk}" selected>徐汇店</option>' in page
    assert "已切换到门店：徐汇店" in page


def test_store_switch_ignores_foreign_next(hq_admin, store2, client_for):
    response = client_for(hq_admin).post("/store/switch/", {"store": store2.pk, "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_member_created_in_switched_store(hq_admin, store2, client_for):
    client = client_for(hq_admin)
    client.post("/store/switch/", {"store": store2.pk})
    page = client.get("/members/new/").content.decode()
    assert f'<option value="{store2.pk}" selected>徐汇店</option>' in page
