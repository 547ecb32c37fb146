"""Org services: stores, staff, sign-in throttling, TOTP and API tokens."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from django.contrib.auth.hashers import identify_hasher
from django.db import connection
from django.utils import timezone

from meiye.audit.models import AuditLog
from meiye.core.errors import PermissionDenied, ValidationFailed
from meiye.org.models import ApiToken, LoginFailure, Staff, Store
from meiye.org.roles import Position
from meiye.org.services import (
    api_token_authenticate,
    api_token_create,
    api_token_revoke,
    approval_pin_check,
    approval_pin_set,
    login_failure_record,
    login_failures_clear,
    login_is_throttled,
    staff_create,
    store_create,
    totp_begin_setup,
    totp_disable,
    totp_verify,
)

# --- Stores -------------------------------------------------------------------------------------------------------


def test_store_create(hq_admin, actor_for):
    store = store_create(
        actor=actor_for(hq_admin),
        code="pudong",
        name=" 浦东店 ",
        time_zone="Asia/Shanghai",
        opening_hours={"mon": ["10:00", "21:00"]},
    )
    assert (store.code, store.name, store.time_zone, store.opening_hours) == (
        "pudong",
        "浦东店",
        "Asia/Shanghai",
        {"mon": ["10:00", "21:00"]},
    )
    assert AuditLog.objects.filter(action="store.create", object_id=str(store.pk)).count() == 1


@pytest.mark.parametrize("zone", ["Mars/Olympus", "Shanghai", "", "../etc/passwd"])
def test_store_create_refuses_a_bad_time_zone(hq_admin, store1, store2, actor_for, zone):
    stores, audits = Store.objects.count(), AuditLog.objects.count()
    with pytest.raises(ValidationFailed) as exc:
        store_create(actor=actor_for(hq_admin), code="pudong", name="浦东店", time_zone=zone)
    assert exc.value.code == "store.invalid_time_zone"
    assert exc.value.field == "time_zone"
    assert "Asia/Shanghai" in exc.value.message_en
    assert (Store.objects.count(), AuditLog.objects.count()) == (stores, audits)


def test_store_create_refuses_a_taken_code(hq_admin, store1, store2, actor_for):
    with pytest.raises(ValidationFailed) as exc:
        store_create(actor=actor_for(hq_admin), code="s1", name="另一家")
    assert (exc.value.code, exc.value.field) == ("store.code_taken", "code")
    assert Store.objects.count() == 2


def test_only_hq_creates_stores(manager, store1, actor_for):
    with pytest.raises(PermissionDenied):
        store_create(actor=actor_for(manager, store1), code="x", name="x")
    assert Store.objects.count() == 1


# --- Staff ------------------------------------------------------------------------------------------------------------


def _staff(actor, **overrides):
    values = {
        "username": "front9",
        "display_name": "赵婷婷",
        "position": Position.RECEPTIONIST,
        "stores": [],
        "password": "meiye-demo-2026",
    }
    values.update(overrides)
    return staff_create(actor=actor, **values)


def test_staff_create(hq_admin, store1, actor_for):
    staff = _staff(actor_for(hq_admin), stores=[store1])
    assert (staff.username, staff.position, list(staff.stores.all())) == ("front9", "receptionist", [store1])
    assert staff.check_password("meiye-demo-2026")
    assert AuditLog.objects.filter(action="staff.create", object_id=str(staff.pk)).count() == 1


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"position": "boss"}, "staff.invalid_position", "position"),
        ({"password": "12345678"}, "staff.weak_password", "password"),
        ({"password": "short"}, "staff.weak_password", "password"),
        ({"password": "password123"}, "staff.weak_password", "password"),
        ({"username": "manager1"}, "staff.username_taken", "username"),
        ({"username": "  "}, "input.required", "username"),
    ],
)
def test_staff_create_errors_name_the_field(hq_admin, manager, actor_for, overrides, code, field):
    before = (Staff.objects.count(), AuditLog.objects.count())
    with pytest.raises(ValidationFailed) as exc:
        _staff(actor_for(hq_admin), **overrides)
    assert (exc.value.code, exc.value.field) == (code, field)
    assert (Staff.objects.count(), AuditLog.objects.count()) == before


def test_staff_create_refuses_a_store_of_another_organisation(hq_admin, actor_for):
    from tests.factories import OrganisationFactory, StoreFactory

    foreign = StoreFactory(organisation=OrganisationFactory(code="other", name="别家"), code="x1")
    with pytest.raises(ValidationFailed) as exc:
        _staff(actor_for(hq_admin), stores=[foreign])
    assert (exc.value.code, exc.value.field) == ("staff.invalid_store", "stores")
    assert not Staff.objects.filter(username="front9").exists()


def test_only_staff_managers_create_staff(manager, store1, actor_for):
    with pytest.raises(PermissionDenied):
        _staff(actor_for(manager, store1))
    assert not Staff.objects.filter(username="front9").exists()


# --- Sign-in throttling ---------------------------------------------------------------------------------------------


def test_ten_failures_within_the_window_throttle(db):
    for _ in range(9):
        login_failure_record(username="Front1", ip="10.0.0.1")
    assert not login_is_throttled(username="front1")
    login_failure_record(username="front1", ip="10.0.0.1")
    assert login_is_throttled(username="front1")
    assert login_is_throttled(username="FRONT1")  # case does not matter
    assert not login_is_throttled(username="front2")


def test_failures_older_than_the_window_do_not_count(db):
    for _ in range(10):
        login_failure_record(username="front1", ip=None)
    LoginFailure.objects.update(at=timezone.now() - timedelta(minutes=15, seconds=1))
    assert not login_is_throttled(username="front1")
    login_failure_record(username="front1", ip=None)
    assert LoginFailure.objects.filter(username="front1").count() == 11
    assert not login_is_throttled(username="front1")


def test_throttle_lifts_when_the_clock_moves_past_the_window(db, monkeypatch):
    for _ in range(10):
        login_failure_record(username="front1", ip=None)
    assert login_is_throttled(username="front1")
    later = timezone.now() + timedelta(minutes=16)
    monkeypatch.setattr("django.utils.timezone.now", lambda: later)
    assert not login_is_throttled(username="front1")


def test_clearing_failures(db):
    for _ in range(10):
        login_failure_record(username="front1", ip=None)
    login_failure_record(username="front2", ip=None)
    login_failures_clear(username="Front1")
    assert not login_is_throttled(username="front1")
    assert list(LoginFailure.objects.values_list("username", flat=True)) == ["front2"]


# --- TOTP ----------------------------------------------------------------------------------------------------------------

MOMENT = datetime(2026, 3, 1, 10, 0, 5, tzinfo=UTC)


@pytest.fixture
def frozen_now(monkeypatch):
    monkeypatch.setattr("django.utils.timezone.now", lambda: MOMENT)
    return MOMENT


def test_totp_setup_stores_an_encrypted_inactive_secret(manager):
    uri = totp_begin_setup(staff=manager)
    manager.refresh_from_db()
    assert uri.startswith("otpauth://totp/Meiye:manager1?secret=")
    assert f"secret={manager.totp_secret}" in uri
    assert "issuer=Meiye" in uri
    assert not manager.totp_enabled
    with connection.cursor() as cursor:
        cursor.execute("SELECT totp_secret FROM org_staff WHERE id = %s", [manager.pk])
        raw = cursor.fetchone()[0]
    assert raw.startswith("v1.") and manager.totp_secret not in raw


def test_totp_verify_activates_and_refuses_a_replayed_code(manager, frozen_now):
    totp_begin_setup(staff=manager)
    manager.refresh_from_db()
    code = pyotp.TOTP(manager.totp_secret).at(frozen_now)
    assert totp_verify(staff=manager, code=code, activate=True)
    manager.refresh_from_db()
    assert manager.totp_enabled
    assert manager.totp_last_counter == pyotp.TOTP(manager.totp_secret).timecode(frozen_now)
    assert not totp_verify(staff=manager, code=code)  # the same code again: refused
    manager.refresh_from_db()
    assert not totp_verify(staff=manager, code=code)


def test_totp_accepts_one_step_of_clock_drift_but_not_more(manager, frozen_now):
    totp_begin_setup(staff=manager)
    manager.refresh_from_db()
    totp = pyotp.TOTP(manager.totp_secret)
    assert not totp_verify(staff=manager, code=totp.at(frozen_now - timedelta(seconds=90)))
    assert totp_verify(staff=manager, code=totp.at(frozen_now - timedelta(seconds=30)))
    assert totp_verify(staff=manager, code=totp.at(frozen_now + timedelta(seconds=30)))
    # After the +1 step was used, the current step's code is older than the last used one: refused.
    assert not totp_verify(staff=manager, code=totp.at(frozen_now))


@pytest.mark.parametrize("code", ["", "abcdef", "000000x", "123"])
def test_totp_refuses_malformed_codes(manager, code):
    totp_begin_setup(staff=manager)
    manager.refresh_from_db()
    assert not totp_verify(staff=manager, code=code)


def test_totp_without_a_secret_is_refused(manager):
    assert not totp_verify(staff=manager, code="123456")


def test_totp_disable_by_hq(manager, hq_admin, actor_for, frozen_now):
    totp_begin_setup(staff=manager)
    manager.refresh_from_db()
    totp_verify(staff=manager, code=pyotp.TOTP(manager.totp_secret).at(frozen_now), activate=True)
    totp_disable(actor=actor_for(hq_admin), staff=manager)
    manager.refresh_from_db()
    assert (manager.totp_secret, manager.totp_enabled, manager.totp_last_counter) == (None, False, 0)
    assert AuditLog.objects.filter(action="staff.totp_reset").count() == 1


def test_approval_pin(manager):
    approval_pin_set(staff=manager, pin="2468")
    manager.refresh_from_db()
    assert manager.approval_pin != "2468"
    assert identify_hasher(manager.approval_pin)  # stored as a password hash
    assert approval_pin_check(staff=manager, pin="2468")
    assert not approval_pin_check(staff=manager, pin="1357")
    with pytest.raises(ValidationFailed) as exc:
        approval_pin_set(staff=manager, pin="12a4")
    assert exc.value.field == "pin"


# --- API tokens --------------------------------------------------------------------------------------------------------


def test_api_token_is_shown_once_and_only_its_hash_is_stored(manager, store1, actor_for):
    token, raw = api_token_create(actor=actor_for(manager, store1), staff=manager, name=" POS 收银 ")
    scheme, prefix, secret = raw.split("_", 2)
    assert (scheme, prefix) == ("my", token.prefix)
    assert len(secret) >= 40
    stored = ApiToken.objects.get(pk=token.pk)
    assert stored.name == "POS 收银"
    assert stored.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    row = ApiToken.objects.filter(pk=token.pk).values().get()
    assert all(secret not in str(value) for value in row.values())
    assert AuditLog.objects.filter(action="api_token.create").count() == 1
    assert secret not in str(AuditLog.objects.get(action="api_token.create").detail)


def test_api_token_authenticates_its_staff(manager, store1, actor_for):
    _token, raw = api_token_create(actor=actor_for(manager, store1), staff=manager, name="POS")
    assert api_token_authenticate(raw) == manager
    assert ApiToken.objects.get().last_used_at is not None


@pytest.mark.parametrize("mangle", [lambda r: r + "x", lambda r: r[:-1], lambda r: "xx" + r[2:], lambda r: "my_"])
def test_wrong_tokens_do_not_authenticate(manager, store1, actor_for, mangle):
    _token, raw = api_token_create(actor=actor_for(manager, store1), staff=manager, name="POS")
    assert api_token_authenticate(mangle(raw)) is None


def test_revoked_token_and_inactive_staff_do_not_authenticate(manager, store1, actor_for):
    token, raw = api_token_create(actor=actor_for(manager, store1), staff=manager, name="POS")
    _other, raw2 = api_token_create(actor=actor_for(manager, store1), staff=manager, name="Kiosk")
    api_token_revoke(actor=actor_for(manager, store1), token=token)
    assert api_token_authenticate(raw) is None
    assert api_token_authenticate(raw2) == manager
    Staff.objects.filter(pk=manager.pk).update(is_active=False)
    assert api_token_authenticate(raw2) is None
    assert AuditLog.objects.filter(action="api_token.revoke").count() == 1


def test_tokens_for_someone_else_need_staff_manage(manager, receptionist, hq_admin, store1, actor_for):
    with pytest.raises(PermissionDenied):
        api_token_create(actor=actor_for(receptionist, store1), staff=manager, name="POS")
    token, _raw = api_token_create(actor=actor_for(hq_admin), staff=manager, name="POS")
    with pytest.raises(PermissionDenied):
        api_token_revoke(actor=actor_for(receptionist, store1), token=token)
    assert ApiToken.objects.get().revoked_at is None


def test_token_name_is_required(manager, store1, actor_for):
    with pytest.raises(ValidationFailed) as exc:
        api_token_create(actor=actor_for(manager, store1), staff=manager, name="  ")
    assert exc.value.field == "name"
    assert ApiToken.objects.count() == 0


def test_approval_pin_locks_after_five_wrong_tries(manager):
    from django.core.cache import cache

    from meiye.core.errors import PermissionDenied
    from meiye.org.services import approval_pin_check, approval_pin_set

    cache.clear()
    approval_pin_set(staff=manager, pin="2468")
    assert [approval_pin_check(staff=manager, pin="0000") for _ in range(5)] == [False] * 5
    with pytest.raises(PermissionDenied) as exc:
        approval_pin_check(staff=manager, pin="2468")
    assert exc.value.code == "staff.pin_locked"
    cache.clear()
    assert approval_pin_check(staff=manager, pin="2468") is True
