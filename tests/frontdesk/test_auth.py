"""Signing in and out, login throttling, two-factor setup and check, language switch."""

from __future__ import annotations

import time

import pyotp
from django.test import Client, override_settings

from meiye.org.middleware import SESSION_2FA_OK, SESSION_STARTED
from meiye.org.models import LoginFailure

PASSWORD = "demo-pass-123"


def _login(client: Client, username: str, password: str, **extra: str):  # type: ignore[no-untyped-def]
    return client.post("/login/", {"username": username, "password": password, **extra})


def test_login_page_renders_in_chinese_by_default(db):
    response = Client().get("/login/")
    assert response.status_code == 200
    content = response.content.decode()
    assert '<html lang="zh-Hans">' in content
    assert "员工登录" in content
    assert 'name="csrfmiddlewaretoken"' in content


def test_login_page_in_english_after_language_switch(db):
    client = Client()
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/login/"})
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    content = client.get("/login/").content.decode()
    assert '<html lang="en">' in content
    assert "Staff sign-in" in content
    assert "员工登录" not in content


def test_login_success_starts_session_and_clears_failures(receptionist):
    client = Client()
    _login(client, "reception1", "wrong-password")
    assert LoginFailure.objects.filter(username="reception1").count() == 1
    before = int(time.time())

    response = _login(client, "reception1", PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.session["_auth_user_id"] == str(receptionist.pk)
    assert before <= client.session[SESSION_STARTED] <= int(time.time())
    assert LoginFailure.objects.filter(username="reception1").count() == 0


def test_login_redirects_to_safe_next_only(receptionist):
    response = _login(Client(), "reception1", PASSWORD, next="/members/")
    assert response["Location"] == "/members/"
    response = _login(Client(), "reception1", PASSWORD, next="https://evil.example/")
    assert response["Location"] == "/"


def test_wrong_password_is_refused_and_counted(receptionist):
    client = Client()
    response = _login(client, "reception1", "not-the-password")
    assert response.status_code == 400
    assert "登录名或密码不正确。" in response.content.decode()
    assert "_auth_user_id" not in client.session
    failure = LoginFailure.objects.get()
    assert (failure.username, failure.ip) == ("reception1", "127.0.0.1")


def test_eleventh_attempt_is_refused_even_with_the_right_password(receptionist):
    client = Client()
    for _ in range(10):
        assert _login(client, "reception1", "guess").status_code == 400
    assert LoginFailure.objects.filter(username="reception1").count() == 10

    response = _login(client, "reception1", PASSWORD)

    assert response.status_code == 400
    assert "尝试次数过多，该账号已暂时锁定，请 15 分钟后再试。" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # The refused attempt does not authenticate, so it neither clears nor adds failures.
    assert LoginFailure.objects.filter(username="reception1").count() == 10


def test_throttle_refusal_in_english(receptionist):
    client = Client()
    client.cookies["django_language"] = "en"
    for _ in range(10):
        _login(client, "reception1", "guess")
    response = _login(client, "reception1", PASSWORD)
    assert response.status_code == 400
    assert "Too many attempts: this account is locked for now. Please try again in 15 minutes." in (
        response.content.decode()
    )


def test_throttling_is_counted_per_account(receptionist, receptionist2):
    client = Client()
    for _ in range(10):
        _login(client, "reception1", "guess")

    response = _login(client, "reception2", PASSWORD)

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(receptionist2.pk)


def test_logout_is_post_only(receptionist, client_for):
    client = client_for(receptionist)
    assert client.get("/logout/").status_code == 405
    response = client.post("/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert "_auth_user_id" not in client.session


def test_anonymous_is_sent_to_login(db):
    response = Client().get("/members/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/members/"


def test_home_redirects_to_members(receptionist, client_for):
    response = client_for(receptionist).get("/")
    assert response.status_code == 302
    assert response["Location"] == "/members/"


@override_settings(MEIYE_REQUIRE_2FA=True)
def test_two_factor_setup_then_verify_for_store_manager(manager):
    client = Client()
    assert _login(client, "manager1", PASSWORD)["Location"] == "/"

    # Every page sends her to set up 2FA first.
    response = client.get("/members/")
    assert response.status_code == 302
    assert response["Location"] == "/2fa/setup/"

    setup = client.get("/2fa/setup/")
    assert setup.status_code == 200
    manager.refresh_from_db()
    secret = manager.totp_secret
    assert secret and not manager.totp_enabled
    content = setup.content.decode()
    assert f"secret={secret}" in content
    assert "otpauth://totp/Meiye:manager1" in content
    assert "<svg" in content
    # Reloading shows the same secret (the app may already have scanned it).
    client.get("/2fa/setup/")
    manager.refresh_from_db()
    assert manager.totp_secret == secret

    wrong = client.post("/2fa/setup/", {"code": "000000"})
    assert wrong.status_code == 400
    assert "验证码不正确或已过期" in wrong.content.decode()

    response = client.post("/2fa/setup/", {"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.session[SESSION_2FA_OK] is True
    manager.refresh_from_db()
    assert manager.totp_enabled
    assert client.get("/members/").status_code == 200

    # Next sign-in: the code is checked, not set up again.
    client.post("/logout/")
    _login(client, "manager1", PASSWORD)
    response = client.get("/members/")
    assert response["Location"] == "/2fa/verify/"
    assert client.get("/2fa/setup/")["Location"] == "/2fa/verify/"
    assert client.post("/2fa/verify/", {"code": "000000"}).status_code == 400
    next_code = pyotp.TOTP(secret).at(time.time() + 30)
    response = client.post("/2fa/verify/", {"code": next_code})
    assert response.status_code == 302
    assert client.get("/members/").status_code == 200


@override_settings(MEIYE_REQUIRE_2FA=True)
def test_two_factor_verify_is_throttled(manager):
    client = Client()
    _login(client, "manager1", PASSWORD)
    client.get("/2fa/setup/")
    manager.refresh_from_db()
    client.post("/2fa/setup/", {"code": pyotp.TOTP(manager.totp_secret).now()})
    client.post("/logout/")
    _login(client, "manager1", PASSWORD)
    for _ in range(10):
        assert client.post("/2fa/verify/", {"code": "000000"}).status_code == 400

    response = client.post("/2fa/verify/", {"code": pyotp.TOTP(manager.totp_secret).at(time.time() + 30)})

    assert response.status_code == 400
    assert "尝试次数过多" in response.content.decode()
    assert client.get("/members/")["Location"] == "/2fa/verify/"


@override_settings(MEIYE_REQUIRE_2FA=True)
def test_receptionist_needs_no_second_factor(receptionist):
    client = Client()
    _login(client, "reception1", PASSWORD)
    assert client.get("/members/").status_code == 200
