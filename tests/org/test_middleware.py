"""Session limits and the two-factor gate (middleware), driven through the test client."""

from __future__ import annotations

import time

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from meiye.org.middleware import SESSION_2FA_OK, SESSION_SEEN, SESSION_STARTED

EXPIRED = reverse("frontdesk:login") + "?expired=1"


def _signed_in(client, staff, **stamps):
    client.force_login(staff)
    session = client.session
    for key, value in stamps.items():
        session[key] = value
    session.save()
    return client


def _is_signed_in(client) -> bool:
    return "_auth_user_id" in client.session


@override_settings(MEIYE_SESSION_IDLE_SECONDS=600, MEIYE_SESSION_ABSOLUTE_SECONDS=3600)
def test_an_active_session_stays_and_is_marked_seen(client, receptionist):
    now = int(time.time())
    _signed_in(client, receptionist, **{SESSION_STARTED: now - 1800, SESSION_SEEN: now - 300})
    response = client.get("/healthz")
    assert response.status_code == 200
    assert _is_signed_in(client)
    assert client.session[SESSION_SEEN] >= now
    assert client.session[SESSION_STARTED] == now - 1800


@override_settings(MEIYE_SESSION_IDLE_SECONDS=600, MEIYE_SESSION_ABSOLUTE_SECONDS=3600)
def test_an_idle_session_is_signed_out(client, receptionist):
    now = int(time.time())
    _signed_in(client, receptionist, **{SESSION_STARTED: now - 700, SESSION_SEEN: now - 601})
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == EXPIRED
    assert not _is_signed_in(client)


@override_settings(MEIYE_SESSION_IDLE_SECONDS=600, MEIYE_SESSION_ABSOLUTE_SECONDS=3600)
def test_a_session_past_its_absolute_limit_is_signed_out_even_when_active(client, receptionist):
    now = int(time.time())
    _signed_in(client, receptionist, **{SESSION_STARTED: now - 3601, SESSION_SEEN: now - 5})
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == EXPIRED
    assert not _is_signed_in(client)


@override_settings(MEIYE_SESSION_IDLE_SECONDS=600)
def test_an_expired_api_session_is_signed_out_without_a_redirect(receptionist):
    client = Client(raise_request_exception=False)
    now = int(time.time())
    _signed_in(client, receptionist, **{SESSION_STARTED: now - 700, SESSION_SEEN: now - 700})
    response = client.get("/api/v1/me/")
    assert response.status_code != 302  # API clients get an error status, never a login page
    assert not _is_signed_in(client)


def test_first_request_after_sign_in_starts_the_clock(client, receptionist):
    client.force_login(receptionist)
    before = int(time.time())
    client.get("/healthz")
    assert client.session[SESSION_STARTED] >= before
    assert client.session[SESSION_SEEN] >= before


# --- Two-factor gate -------------------------------------------------------------------------------------------------


@override_settings(MEIYE_REQUIRE_2FA=True)
def test_manager_without_totp_is_sent_to_set_it_up(client, manager):
    client.force_login(manager)
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == reverse("frontdesk:2fa_setup")
    assert response["Location"].startswith("/2fa/")


@override_settings(MEIYE_REQUIRE_2FA=True)
def test_manager_with_totp_is_sent_to_verify(client, manager):
    manager.totp_enabled = True
    manager.save(update_fields=["totp_enabled"])
    client.force_login(manager)
    response = client.get("/members/")
    assert response.status_code == 302
    assert response["Location"] == reverse("frontdesk:2fa_verify")


@override_settings(MEIYE_REQUIRE_2FA=True)
@pytest.mark.parametrize("path", ["/healthz", "/logout/", "/2fa/setup/", "/static/x.css"])
def test_open_paths_are_not_gated(manager, path):
    client = Client(raise_request_exception=False)
    client.force_login(manager)
    response = client.get(path)
    assert not (response.status_code == 302 and response["Location"].startswith("/2fa/"))


@override_settings(MEIYE_REQUIRE_2FA=True)
def test_manager_who_passed_the_check_goes_through(manager):
    client = Client(raise_request_exception=False)
    _signed_in(client, manager, **{SESSION_2FA_OK: True})
    response = client.get("/")
    assert not response.get("Location", "").startswith("/2fa/")


@override_settings(MEIYE_REQUIRE_2FA=True)
def test_receptionist_is_not_gated(receptionist):
    client = Client(raise_request_exception=False)
    client.force_login(receptionist)
    response = client.get("/")
    assert not response.get("Location", "").startswith("/2fa/")


@override_settings(MEIYE_REQUIRE_2FA=False)
def test_without_the_setting_nobody_is_gated(manager):
    client = Client(raise_request_exception=False)
    client.force_login(manager)
    response = client.get("/")
    assert not response.get("Location", "").startswith("/2fa/")
