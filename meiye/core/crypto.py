"""Field encryption (AES-256-GCM with a key id per value), blind indexes and masking.

Stored form of an encrypted value: ``v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>``. The key id
lets keys rotate: new values use the current (first) key, old values stay readable with the older
keys until ``manage.py rotate_keys`` re-encrypts them. The associated data binds a value to its
purpose (e.g. ``members.Member.phone``) so a ciphertext cannot be moved into another field.

Blind index: HMAC-SHA256 over the normalised value with a separate key, for exact lookups of
phones and ID numbers without storing them in plaintext.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

_PREFIX = "v1"


class KeyConfigurationError(RuntimeError):
    pass


@dataclass(frozen=True)
class KeyRing:
    current_id: str
    keys: dict[str, bytes]
    blind_key: bytes


def _decode_key(text: str, what: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyConfigurationError(f"{what} is not valid base64") from exc
    if len(key) != 32:
        raise KeyConfigurationError(f"{what} must be 32 bytes (AES-256), got {len(key)}")
    return key


def parse_field_keys(spec: str) -> tuple[str, dict[str, bytes]]:
    keys: dict[str, bytes] = {}
    current = ""
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        kid, _, b64 = item.partition(":")
        if not kid or not b64 or not re.fullmatch(r"[A-Za-z0-9_-]{1,16}", kid):
            raise KeyConfigurationError("MEIYE_FIELD_KEYS entries look like 'kid:base64key'")
        keys[kid] = _decode_key(b64, f"field key {kid!r}")
        current = current or kid
    if not keys:
        raise KeyConfigurationError("MEIYE_FIELD_KEYS holds no key")
    return current, keys


@lru_cache(maxsize=1)
def keyring() -> KeyRing:
    field_spec = settings.MEIYE_FIELD_KEYS
    blind_spec = settings.MEIYE_BLIND_INDEX_KEY
    if not field_spec or not blind_spec:
        from config.settings.devkeys import dev_secret

        field_spec = field_spec or dev_secret(settings.MEIYE_DEV_KEY_DIR, "field_keys")
        blind_spec = blind_spec or dev_secret(settings.MEIYE_DEV_KEY_DIR, "blind_index_key")
    current, keys = parse_field_keys(field_spec)
    return KeyRing(current_id=current, keys=keys, blind_key=_decode_key(blind_spec, "MEIYE_BLIND_INDEX_KEY"))


@receiver(setting_changed)
def _reset_keyring(*, setting: str, **_: object) -> None:
    if setting in {"MEIYE_FIELD_KEYS", "MEIYE_BLIND_INDEX_KEY"}:
        keyring.cache_clear()


def encrypt_bytes(plaintext: bytes, *, purpose: str) -> str:
    ring = keyring()
    nonce = os.urandom(12)
    sealed = AESGCM(ring.keys[ring.current_id]).encrypt(nonce, plaintext, purpose.encode())
    return f"{_PREFIX}.{ring.current_id}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def decrypt_bytes(token: str, *, purpose: str) -> bytes:
    _prefix, kid, body = _split(token)
    ring = keyring()
    if kid not in ring.keys:
        raise KeyConfigurationError(f"no key with id {kid!r} is configured (needed to read {purpose})")
    raw = base64.urlsafe_b64decode(body)
    return AESGCM(ring.keys[kid]).decrypt(raw[:12], raw[12:], purpose.encode())


def encrypt_text(plaintext: str, *, purpose: str) -> str:
    return encrypt_bytes(plaintext.encode("utf-8"), purpose=purpose)


def decrypt_text(token: str, *, purpose: str) -> str:
    return decrypt_bytes(token, purpose=purpose).decode("utf-8")


def key_id_of(token: str) -> str:
    return _split(token)[1]


def needs_rotation(token: str) -> bool:
    return key_id_of(token) != keyring().current_id


def _split(token: str) -> tuple[str, str, str]:
    parts = token.split(".", 2)
    if len(parts) != 3 or parts[0] != _PREFIX:
        raise ValueError("not an encrypted value")
    return parts[0], parts[1], parts[2]


# --- Normalisation and blind index ------------------------------------------------------------------


def normalise_phone(raw: str) -> str:
    """Digits only, without a +86/0086 country prefix: '+86 138-0013-5678' -> '13800135678'."""
    digits = re.sub(r"\D", "", raw or "")
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits


def normalise_id_number(raw: str) -> str:
    return re.sub(r"\s", "", raw or "").upper()


def blind_index(value: str, *, kind: str) -> str:
    """Keyed HMAC-SHA256 of a normalised value; ``kind`` separates phones from ID numbers."""
    mac = hmac.new(keyring().blind_key, f"{kind}:{value}".encode(), hashlib.sha256)
    return mac.hexdigest()


# --- Masking -----------------------------------------------------------------------------------------------


def mask_phone(phone: str) -> str:
    """'13812345678' -> '138****5678'. Short or odd values keep at most their last 2 characters."""
    if not phone:
        return ""
    if len(phone) >= 7:
        return f"{phone[:3]}****{phone[-4:]}"
    return "*" * (len(phone) - 2) + phone[-2:] if len(phone) > 2 else "*" * len(phone)


def mask_id_number(value: str) -> str:
    """'110101199003071234' -> '1101**********1234'."""
    if not value:
        return ""
    if len(value) <= 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def mask_email(value: str) -> str:
    if not value or "@" not in value:
        return "***" if value else ""
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_text(value: str) -> str:
    """Any other sensitive text (allergies, address): only that something is recorded."""
    return "******" if value else ""
