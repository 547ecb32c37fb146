"""Authentication: per-staff Bearer tokens and the session; who am I."""

from __future__ import annotations

from rest_framework.test import APIClient

from meiye.members.models import Member
from meiye.org.context import Actor
from meiye.org.models import ApiToken
from meiye.org.roles import Position, perms_for
from meiye.org.services import api_token_revoke

ME = "/api/v1/me/"
PROBLEM = "application/problem+json"


def test_token_authenticates_and_me_describes_the_caller(reception_api, receptionist, store1):
    response = reception_api.get(ME)

    assert response.status_code == 200
    assert response.json() == {
        "id": receptionist.pk,
        "username": "reception1",
        "display_name": receptionist.display_name,
        "position": "receptionist",
        "position_label": "前台 Receptionist / cashier",
        "permissions": sorted(perms_for(Position.RECEPTIONIST)),
        "sees_all_stores": False,
        "organisation": {"id": receptionist.organisation_id, "code": "liyan", "name": "丽颜美业"},
        "acting_store": {"id": store1.pk, "code": "s1", "name": "静安店"},
        "stores": [{"id": store1.pk, "code": "s1", "name": "静安店"}],
    }
    assert {"member.view", "member.create", "member.reveal_phone"} <= set(response.json()["permissions"])
    assert "member.export" not in response.json()["permissions"]
    assert ApiToken.objects.get(staff=receptionist).last_used_at is not None


def test_hq_admin_sees_every_store(hq_api, store1, store2):
    body = hq_api.get(ME).json()

    assert body["sees_all_stores"] is True
    assert [s["id"] for s in body["stores"]] == [store1.pk, store2.pk]
    assert body["acting_store"]["id"] == store1.pk


def test_revoked_token_is_refused_with_401_problem(token_for, receptionist):
    # given
    secret = token_for(receptionist)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get(ME).status_code == 200
    api_token_revoke(actor=Actor.system(receptionist.organisation), token=ApiToken.objects.get(staff=receptionist))

    # when
    response = client.get(ME)
    write = client.post("/api/v1/members/", {"name": "x", "phone": "13812345678"}, format="json")

    # then
    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM
    assert response["WWW-Authenticate"] == "Bearer"
    body = response.json()
    assert body["code"] == "auth.invalid_token"
    assert body["detail_zh"] == "API 令牌无效或已撤销。"
    assert body["detail_en"] == "The API token is invalid or has been revoked."
    assert write.status_code == 401
    assert Member.objects.count() == 0


def test_wrong_secret_and_garbage_tokens_are_401(token_for, receptionist):
    secret = token_for(receptionist)
    wrong = secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")

    for raw in (wrong, "my_nothing_here", "garbage", "Bearer"):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        response = client.get(ME)
        assert response.status_code == 401, raw
        assert response.json()["code"] == "auth.invalid_token", raw


def test_empty_bearer_is_401(receptionist):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer ")

    response = client.get(ME)

    assert response.status_code == 401
    assert response.json()["code"] == "auth.invalid_token"


def test_token_of_a_deactivated_staff_member_is_401(token_for, receptionist):
    secret = token_for(receptionist)
    receptionist.is_active = False
    receptionist.save(update_fields=["is_active"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert client.get(ME).status_code == 401


def test_no_credentials_is_401_problem(db):
    response = APIClient().get(ME)

    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json()["code"] == "auth.not_authenticated"


def test_session_authentication_works(receptionist, store1):
    client = APIClient()
    assert client.login(username="reception1", password="demo-pass-123")

    response = client.get(ME)

    assert response.status_code == 200
    assert response.json()["username"] == "reception1"


def test_session_writes_need_the_csrf_token(receptionist):
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="reception1", password="demo-pass-123")

    response = client.post("/api/v1/members/", {"name": "王丽", "phone": "13812345678"}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "auth.permission_denied"
    assert "CSRF" in response.json()["detail"]
    assert Member.objects.count() == 0
