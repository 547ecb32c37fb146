"""Field encryption, blind indexes and masking."""

from __future__ import annotations

import base64

import pytest
from cryptography.exceptions import InvalidTag
from django.test import override_settings

from meiye.core import crypto

OTHER_BLIND_KEY = base64.b64encode(bytes(range(32))).decode()


def test_encrypt_then_decrypt_returns_the_plaintext():
    token = crypto.encrypt_text("13812345678", purpose="members.Member.phone")
    assert crypto.decrypt_text(token, purpose="members.Member.phone") == "13812345678"


def test_round_trip_of_unicode_and_bytes():
    token = crypto.encrypt_text("对果酸敏感", purpose="p")
    assert crypto.decrypt_text(token, purpose="p") == "对果酸敏感"
    blob = bytes(range(256))
    assert crypto.decrypt_bytes(crypto.encrypt_bytes(blob, purpose="photo"), purpose="photo") == blob


def test_stored_form_names_the_current_key_and_hides_the_plaintext():
    token = crypto.encrypt_text("13812345678", purpose="p")
    assert token.startswith("v1.t2.")  # t2 is the current (first) test key
    assert crypto.key_id_of(token) == "t2"
    assert "13812345678" not in token
    assert not crypto.needs_rotation(token)


def test_each_encryption_gives_a_different_ciphertext():
    tokens = {crypto.encrypt_text("13812345678", purpose="p") for _ in range(20)}
    assert len(tokens) == 20


def test_tampered_ciphertext_is_refused():
    token = crypto.encrypt_text("13812345678", purpose="p")
    prefix, kid, body = token.split(".", 2)
    raw = bytearray(base64.urlsafe_b64decode(body))
    raw[-1] ^= 0x01
    tampered = f"{prefix}.{kid}.{base64.urlsafe_b64encode(bytes(raw)).decode()}"
    with pytest.raises(InvalidTag):
        crypto.decrypt_text(tampered, purpose="p")


def test_value_moved_to_another_purpose_is_refused():
    token = crypto.encrypt_text("13812345678", purpose="members.Member.phone")
    with pytest.raises(InvalidTag):
        crypto.decrypt_text(token, purpose="members.Member.email")


def test_value_under_an_unknown_key_id_names_the_key():
    token = crypto.encrypt_text("x", purpose="p")
    only_t1 = override_settings(MEIYE_FIELD_KEYS="t1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=")
    with only_t1, pytest.raises(crypto.KeyConfigurationError, match="'t2'"):
        crypto.decrypt_text(token, purpose="p")


def test_not_an_encrypted_value():
    with pytest.raises(ValueError):
        crypto.decrypt_text("13812345678", purpose="p")


def test_older_key_stays_readable_and_needs_rotation():
    with override_settings(MEIYE_FIELD_KEYS="t1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="):
        old = crypto.encrypt_text("13812345678", purpose="p")
    assert old.startswith("v1.t1.")
    assert crypto.decrypt_text(old, purpose="p") == "13812345678"
    assert crypto.needs_rotation(old)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "holds no key"),
        ("t1", "look like"),
        ("t1:not-base64!", "not valid base64"),
        ("t1:" + base64.b64encode(b"short").decode(), "must be 32 bytes"),
        ("bad id!:" + base64.b64encode(bytes(32)).decode(), "look like"),
    ],
)
def test_bad_key_configuration_is_explained(spec, message):
    with pytest.raises(crypto.KeyConfigurationError, match=message):
        crypto.parse_field_keys(spec)


def test_first_key_is_current():
    k = base64.b64encode(bytes(32)).decode()
    current, keys = crypto.parse_field_keys(f"new:{k}, old:{k}")
    assert current == "new"
    assert set(keys) == {"new", "old"}


def test_blind_index_is_deterministic_and_separates_kinds():
    first = crypto.blind_index("13812345678", kind="phone")
    assert first == crypto.blind_index("13812345678", kind="phone")
    assert len(first) == 64
    assert first != crypto.blind_index("13812345679", kind="phone")
    assert first != crypto.blind_index("13812345678", kind="id_number")


def test_blind_index_depends_on_the_key():
    first = crypto.blind_index("13812345678", kind="phone")
    with override_settings(MEIYE_BLIND_INDEX_KEY=OTHER_BLIND_KEY):
        assert crypto.blind_index("13812345678", kind="phone") != first
    assert crypto.blind_index("13812345678", kind="phone") == first


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("+86 138-1234-5678", "13812345678"),
        ("0086 13812345678", "13812345678"),
        ("8613812345678", "13812345678"),
        ("138 1234 5678", "13812345678"),
        ("", ""),
    ],
)
def test_normalise_phone(raw, normalised):
    assert crypto.normalise_phone(raw) == normalised


def test_normalise_id_number():
    assert crypto.normalise_id_number(" 11010119900307123x ") == "11010119900307123X"


@pytest.mark.parametrize(
    ("value", "masked"),
    [("13812345678", "138****5678"), ("", ""), ("12", "**"), ("12345", "***45")],
)
def test_mask_phone(value, masked):
    assert crypto.mask_phone(value) == masked


@pytest.mark.parametrize(
    ("value", "masked"),
    [("110101199003071234", "1101**********1234"), ("", ""), ("12345678", "********")],
)
def test_mask_id_number(value, masked):
    assert crypto.mask_id_number(value) == masked


def test_mask_email_and_text():
    assert crypto.mask_email("lily@example.com") == "l***@example.com"
    assert crypto.mask_email("nonsense") == "***"
    assert crypto.mask_email("") == ""
    assert crypto.mask_text("对果酸敏感") == "******"
    assert crypto.mask_text("") == ""
