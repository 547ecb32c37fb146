"""Writes for the organisation, stores and staff."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import pyotp
from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone

from meiye.audit.services import audit_record
from meiye.core.db.prepared import PreparedQuery
from meiye.core.errors import PermissionDenied, ValidationFailed, required
from meiye.org.context import Actor
from meiye.org.models import ApiToken, LoginFailure, Organisation, Staff, Store
from meiye.org.roles import Perm, Position


def organisation_get_or_create(*, name: str, code: str) -> Organisation:
    org, _ = Organisation.objects.get_or_create(code=code, defaults={"name": name})
    return org


def store_create(
    *,
    actor: Actor,
    code: str,
    name: str,
    address: str = "",
    phone: str = "",
    time_zone: str = "Asia/Shanghai",
    opening_hours: dict[str, list[str]] | None = None,
) -> Store:
    actor.require(Perm.STORE_MANAGE)
    if not name.strip():
        raise required("name", "门店名称", "Store name")
    if not code.strip():
        raise required("code", "门店编码", "Store code")
    _check_time_zone(time_zone)
    with transaction.atomic():
        if Store.objects.filter(organisation=actor.organisation, code=code).exists():
            raise ValidationFailed(
                "store.code_taken",
                zh=f"门店编码 {code} 已被使用。",
                en=f"Store code {code} is already used.",
                field="code",
            )
        store = Store.objects.create(
            organisation=actor.organisation,
            code=code.strip(),
            name=name.strip(),
            address=address,
            phone=phone,
            time_zone=time_zone,
            opening_hours=opening_hours or {},
        )
        audit_record(actor=actor, action="store.create", obj=store)
    return store


def store_update(*, actor: Actor, store: Store, **changes: object) -> Store:
    actor.require(Perm.STORE_MANAGE)
    allowed = {"name", "address", "phone", "time_zone", "opening_hours", "is_active"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"cannot change {sorted(unknown)}")
    if "time_zone" in changes:
        _check_time_zone(str(changes["time_zone"]))
    if "name" in changes and not str(changes["name"]).strip():
        raise required("name", "门店名称", "Store name")
    with transaction.atomic():
        before = {key: getattr(store, key) for key in changes}
        for key, value in changes.items():
            setattr(store, key, value)
        store.save()
        audit_record(actor=actor, action="store.update", obj=store, detail={"before": before, "after": changes})
    return store


def _check_time_zone(name: str) -> None:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(
            "store.invalid_time_zone",
            zh=f"时区：{name!r} 不是有效的时区名，例如 Asia/Shanghai。",
            en=f"time_zone: {name!r} is not a valid time zone name, e.g. Asia/Shanghai.",
            field="time_zone",
        ) from None


def staff_create(
    *,
    actor: Actor,
    username: str,
    display_name: str,
    position: str,
    stores: list[Store],
    password: str,
) -> Staff:
    actor.require(Perm.STAFF_MANAGE)
    if position not in Position.values:
        raise ValidationFailed(
            "staff.invalid_position",
            zh=f"岗位：{position!r} 不是有效的岗位。",
            en=f"position: {position!r} is not a valid position.",
            field="position",
        )
    if not username.strip():
        raise required("username", "登录名", "Username")
    for store in stores:
        if store.organisation_id != actor.organisation.pk:
            raise ValidationFailed(
                "staff.invalid_store", zh="门店不属于本品牌。", en="Store is not in this brand.", field="stores"
            )
    staff = Staff(
        username=username.strip(), display_name=display_name.strip(), position=position, organisation=actor.organisation
    )
    try:
        validate_password(password, staff)
    except DjangoValidationError as exc:
        raise ValidationFailed(
            "staff.weak_password",
            zh="密码：" + "；".join(exc.messages),
            en="password: " + "; ".join(exc.messages),
            field="password",
        ) from None
    with transaction.atomic():
        if Staff.objects.filter(username=staff.username).exists():
            raise ValidationFailed(
                "staff.username_taken",
                zh=f"登录名 {staff.username} 已被使用。",
                en=f"Username {staff.username} is already used.",
                field="username",
            )
        staff.set_password(password)
        staff.save()
        staff.stores.set(stores)
        audit_record(
            actor=actor,
            action="staff.create",
            obj=staff,
            detail={"position": position, "stores": [s.pk for s in stores]},
        )
    return staff


def staff_update(
    *,
    actor: Actor,
    staff: Staff,
    display_name: str | None = None,
    position: str | None = None,
    stores: list[Store] | None = None,
    is_active: bool | None = None,
) -> Staff:
    actor.require(Perm.STAFF_MANAGE)
    if position is not None and position not in Position.values:
        raise ValidationFailed(
            "staff.invalid_position", zh="岗位无效。", en="position: not a valid position.", field="position"
        )
    for store in stores or []:
        if store.organisation_id != actor.organisation.pk:
            raise ValidationFailed(
                "staff.invalid_store",
                zh="门店不属于本品牌。",
                en="stores: a store is not in this brand.",
                field="stores",
            )
    with transaction.atomic():
        detail: dict[str, object] = {}
        if display_name is not None:
            staff.display_name = display_name
            detail["display_name"] = display_name
        if position is not None:
            detail["position"] = [staff.position, position]
            staff.position = position
        if is_active is not None:
            staff.is_active = is_active
            detail["is_active"] = is_active
        staff.save()
        if stores is not None:
            staff.stores.set(stores)
            detail["stores"] = [s.pk for s in stores]
        audit_record(actor=actor, action="staff.update", obj=staff, detail=detail)
    return staff


# --- Sign-in throttling ------------------------------------------------------------------------------------


def login_is_throttled(*, username: str) -> bool:
    since = timezone.now() - settings.MEIYE_LOGIN_FAILURE_WINDOW
    recent = LoginFailure.objects.filter(username=username.lower(), at__gte=since).count()
    return recent >= settings.MEIYE_LOGIN_MAX_FAILURES


def login_failure_record(*, username: str, ip: str | None) -> None:
    LoginFailure.objects.create(username=username.lower()[:150], ip=ip)


def login_failures_clear(*, username: str) -> None:
    LoginFailure.objects.filter(username=username.lower()).delete()


# --- Two-factor (TOTP) ------------------------------------------------------------------------------------------


def totp_begin_setup(*, staff: Staff) -> str:
    """Generate a new secret (not yet active) and return its provisioning URI for an authenticator app."""
    secret = pyotp.random_base32()
    staff.totp_secret = secret
    staff.totp_enabled = False
    staff.save(update_fields=["totp_secret", "totp_enabled"])
    return pyotp.TOTP(secret).provisioning_uri(name=staff.username, issuer_name="Meiye")


def totp_verify(*, staff: Staff, code: str, activate: bool = False) -> bool:
    """Check a 6-digit code (±1 step), refusing a code already used (replay)."""
    if not staff.totp_secret or not code or not code.isdigit():
        return False
    totp = pyotp.TOTP(staff.totp_secret)
    now = timezone.now()
    for offset in (-1, 0, 1):
        moment = now + timedelta(seconds=30 * offset)
        counter = totp.timecode(moment)
        if counter > staff.totp_last_counter and secrets.compare_digest(totp.at(moment), code):
            with transaction.atomic():
                staff.totp_last_counter = counter
                fields = ["totp_last_counter"]
                if activate:
                    staff.totp_enabled = True
                    fields.append("totp_enabled")
                staff.save(update_fields=fields)
            return True
    return False


def totp_disable(*, actor: Actor, staff: Staff) -> None:
    actor.require(Perm.STAFF_MANAGE)
    with transaction.atomic():
        staff.totp_secret = None
        staff.totp_enabled = False
        staff.totp_last_counter = 0
        staff.save(update_fields=["totp_secret", "totp_enabled", "totp_last_counter"])
        audit_record(actor=actor, action="staff.totp_reset", obj=staff)


# --- Approval PIN (store managers approve discounts etc.) ---------------------------------------------------


def approval_pin_set(*, staff: Staff, pin: str) -> None:
    if not (pin.isdigit() and 4 <= len(pin) <= 8):
        raise ValidationFailed(
            "staff.invalid_pin", zh="审批密码：需要 4 到 8 位数字。", en="pin: must be 4 to 8 digits.", field="pin"
        )
    staff.approval_pin = make_password(pin)
    staff.save(update_fields=["approval_pin"])


APPROVAL_PIN_MAX_FAILURES = 5
APPROVAL_PIN_LOCK_SECONDS = 15 * 60


def approval_pin_check(*, staff: Staff, pin: str) -> bool:
    """Check a manager's approval PIN. After 5 wrong PINs in a row the PIN is refused for 15 minutes
    (``staff.pin_locked``), so a 4-digit PIN cannot be guessed at the till. The count lives in the cache,
    not the database, because the operation that asked for approval rolls back when the PIN is wrong."""
    key = f"meiye:approval-pin-failures:{staff.pk}"
    # Reserve the attempt before checking (atomic increment), so parallel guesses are all counted.
    cache.add(key, 0, APPROVAL_PIN_LOCK_SECONDS)
    attempt = cache.incr(key)
    if attempt > APPROVAL_PIN_MAX_FAILURES:
        raise PermissionDenied(
            "staff.pin_locked",
            zh=f"{staff}的审批密码连续输错 {APPROVAL_PIN_MAX_FAILURES} 次，已锁定 15 分钟。",
            en=f"{staff}'s approval PIN was wrong {APPROVAL_PIN_MAX_FAILURES} times in a row; locked for 15 minutes.",
            field="approval_pin",
        )
    if bool(staff.approval_pin) and check_password(pin, staff.approval_pin):
        cache.delete(key)
        return True
    return False


# --- API tokens ---------------------------------------------------------------------------------------------------


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_token_create(*, actor: Actor, staff: Staff, name: str) -> tuple[ApiToken, str]:
    """Create a token for ``staff``; returns the row and the full token, which is shown only once."""
    if actor.staff is not None and actor.staff.pk != staff.pk:
        actor.require(Perm.STAFF_MANAGE)
    if not name.strip():
        raise required("name", "令牌名称", "Token name")
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(staff=staff, name=name.strip(), prefix=prefix, secret_hash=_hash_secret(secret))
        audit_record(actor=actor, action="api_token.create", obj=staff, detail={"prefix": prefix, "name": name})
    return token, f"my_{prefix}_{secret}"


# Every API request reads its token (prepared: compiled once per connection, see meiye.core.db.prepared).
_LIVE_TOKEN: PreparedQuery[ApiToken] = PreparedQuery(
    lambda prefix: (
        ApiToken.objects.select_related("staff__organisation")
        .filter(prefix=prefix, revoked_at__isnull=True)
        .order_by("pk")[:1]
    ),
    [str],
)


def api_token_authenticate(raw: str) -> Staff | None:
    """The staff member a presented token belongs to, or None."""
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != "my":
        return None
    token = _LIVE_TOKEN.first(parts[1])
    if token is None or not secrets.compare_digest(token.secret_hash, _hash_secret(parts[2])):
        return None
    if not token.staff.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.staff


def api_token_revoke(*, actor: Actor, token: ApiToken) -> None:
    if actor.staff is not None and actor.staff.pk != token.staff_id:
        actor.require(Perm.STAFF_MANAGE)
    with transaction.atomic():
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(actor=actor, action="api_token.revoke", obj=token.staff, detail={"prefix": token.prefix})
