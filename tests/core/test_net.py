"""The client's IP behind reverse proxies: ``MEIYE_TRUSTED_PROXIES`` and X-Forwarded-For."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory, override_settings
from rest_framework.test import APIClient

from meiye.audit.models import AuditLog
from meiye.core.net import client_ip
from meiye.org.context import Actor
from meiye.org.models import LoginFailure, Staff
from meiye.org.services import api_token_create

PROXIES = ["127.0.0.1", "10.0.0.0/8", "fd00::/8"]


def _request(peer: str, forwarded: str | None = None):
    extra = {"REMOTE_ADDR": peer}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.7", None, "203.0.113.7"),
        ("10.0.0.5", "198.51.100.1", "10.0.0.5"),  # no trusted proxy configured: the header is ignored
        ("", None, None),
        ("unix-socket", None, None),
    ],
)
def test_without_trusted_proxies_the_peer_is_the_client(peer, forwarded, expected):
    assert client_ip(_request(peer, forwarded)) == expected


@override_settings(MEIYE_TRUSTED_PROXIES=PROXIES)
@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # behind one trusted proxy
        ("10.0.0.5", "203.0.113.7", "203.0.113.7"),
        # the client wrote a fake address on the left; the right-most untrusted hop wins
        ("10.0.0.5", "1.2.3.4, 203.0.113.7", "203.0.113.7"),
        # two trusted proxies (10.0.0.9 forwarded to 10.0.0.5)
        ("10.0.0.5", "1.2.3.4, 203.0.113.7, 10.0.0.9", "203.0.113.7"),
        # a peer that is not a trusted proxy: its header is not believed
        ("198.51.100.20", "203.0.113.7", "198.51.100.20"),
        # trusted peer without the header
        ("10.0.0.5", None, "10.0.0.5"),
        ("10.0.0.5", "", "10.0.0.5"),
        # garbage from the client: the nearest address a trusted proxy vouches for
        ("10.0.0.5", "not-an-ip, 10.0.0.9", "10.0.0.9"),
        ("10.0.0.5", "203.0.113.7, not-an-ip", "10.0.0.5"),
        # every hop trusted: the left-most one
        ("10.0.0.5", "10.1.1.1, 10.0.0.9", "10.1.1.1"),
        # ports, brackets and IPv6
        ("10.0.0.5", "203.0.113.7:51234", "203.0.113.7"),
        ("fd00::1", "[2001:db8::7]:443", "2001:db8::7"),
        ("fd00::1", "2001:db8::7", "2001:db8::7"),
        ("::ffff:10.0.0.5", "203.0.113.7", "203.0.113.7"),
    ],
)
def test_behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client(peer, forwarded, expected):
    assert client_ip(_request(peer, forwarded)) == expected


@override_settings(MEIYE_TRUSTED_PROXIES="127.0.0.1, 10.0.0.0/8")
def test_the_setting_may_be_a_comma_separated_string():
    assert client_ip(_request("10.2.3.4", "203.0.113.7")) == "203.0.113.7"


@override_settings(MEIYE_TRUSTED_PROXIES=["10.0.0.0/8", "proxy.internal"])
def test_a_bad_entry_in_the_setting_is_a_configuration_error():
    with pytest.raises(ImproperlyConfigured, match=r"proxy\.internal"):
        client_ip(_request("10.0.0.5", "203.0.113.7"))


# --- where the address ends up ------------------------------------------------------------------------------------------


def _api(staff: Staff, **headers: str) -> APIClient:
    _token, secret = api_token_create(actor=Actor.system(staff.organisation), staff=staff, name="tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}", **headers)
    return client


@override_settings(MEIYE_TRUSTED_PROXIES=["127.0.0.1"])
def test_the_actor_and_its_audit_rows_carry_the_forwarded_client(receptionist, store1):
    api = _api(receptionist, HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.7")
    bill = api.post("/api/v1/bills/", {}, format="json").json()

    voided = api.post(f"/api/v1/bills/{bill['id']}/void/", {}, format="json", HTTP_IDEMPOTENCY_KEY="void-ip")

    assert voided.status_code == 200
    assert AuditLog.objects.get(action="sales.bill_void").ip == "203.0.113.7"


@override_settings(MEIYE_TRUSTED_PROXIES=["127.0.0.1"])
def test_a_failed_sign_in_is_counted_against_the_forwarded_client(client, receptionist):
    response = client.post(
        "/login/", {"username": receptionist.username, "password": "wrong"}, HTTP_X_FORWARDED_FOR="203.0.113.7"
    )

    assert response.status_code == 400  # the sign-in form shown again with its error
    assert list(LoginFailure.objects.values_list("ip", flat=True)) == ["203.0.113.7"]


def test_a_forged_header_is_ignored_without_trusted_proxies(client, receptionist):
    client.post("/login/", {"username": receptionist.username, "password": "wrong"}, HTTP_X_FORWARDED_FOR="203.0.113.7")

    assert list(LoginFailure.objects.values_list("ip", flat=True)) == ["127.0.0.1"]
    assert not AuditLog.objects.filter(ip="203.0.113.7").exists()
