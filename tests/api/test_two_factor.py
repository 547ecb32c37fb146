"""The API must not open to a browser session whose second factor is still pending."""

from __future__ import annotations

from django.test import Client, override_settings

from meiye.org.middleware import SESSION_2FA_OK


@override_settings(MEIYE_REQUIRE_2FA=True)
def test_api_refuses_a_session_that_has_not_passed_two_factor(manager, store1, make_member):
    member = make_member(store1, phone="13811112222")
    manager.totp_enabled = True
    manager.totp_secret = "JBSWY3DPEHPK3PXP"
    manager.save()
    client = Client()
    client.force_login(manager)

    response = client.post(f"/api/v1/members/{member.pk}/reveal/", {"field": "phone"}, content_type="application/json")

    assert response.status_code in (401, 403)
    assert "13811112222" not in response.content.decode()


@override_settings(MEIYE_REQUIRE_2FA=True)
def test_api_accepts_the_session_once_two_factor_is_done(manager, store1, make_member):
    member = make_member(store1, phone="13811112223")
    client = Client()
    client.force_login(manager)
    session = client.session
    session[SESSION_2FA_OK] = True
    session.save()

    response = client.post(f"/api/v1/members/{member.pk}/reveal/", {"field": "phone"}, content_type="application/json")

    assert response.status_code == 200
    assert response.json()["value"] == "13811112223"
