"""manage.py rotate_keys: every encrypted value ends up under the current key, with the same plaintext."""

from __future__ import annotations

import base64
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings

from meiye.core.fields import ENCRYPTED_FIELD_TYPES
from meiye.core.management.commands.rotate_keys import encrypted_targets
from meiye.members.models import Member, MemberPhoto
from meiye.members.services import MemberInput, custom_field_save, member_create, member_photo_set
from meiye.members.validation import id_number_checksum
from meiye.org.models import Staff
from meiye.org.services import totp_begin_setup

# The test settings hold "t2:…,t1:…" (t2 current); these write data as an older installation would.
ONLY_T1 = "t1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
UNKNOWN_T9 = "t9:" + base64.b64encode(bytes([9]) * 32).decode()
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)

ENCRYPTED_COLUMNS = {
    "members_member": ["phone", "email", "address", "id_number", "custom_sensitive"],
    "members_memberphoto": ["data"],
    "org_staff": ["totp_secret"],
}


def _raw_values() -> dict[tuple[str, str, int], str]:
    """Every non-empty encrypted cell as stored: (table, column, pk) -> ciphertext."""
    found: dict[tuple[str, str, int], str] = {}
    with connection.cursor() as cursor:
        for table, columns in ENCRYPTED_COLUMNS.items():
            for column in columns:
                cursor.execute(f"SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL")  # noqa: S608
                for pk, value in cursor.fetchall():
                    if value:
                        found[(table, column, pk)] = value
    return found


def _plaintexts() -> dict[str, object]:
    member = Member.objects.get(phone_index__isnull=False, name="王丽")
    return {
        "phone": member.phone,
        "email": member.email,
        "address": member.address,
        "id_number": member.id_number,
        "custom_sensitive": member.custom_sensitive,
        "photo": MemberPhoto.objects.get(member=member).data,
        "totp": Staff.objects.get(username="manager1").totp_secret,
    }


def _write_member_data(actor, store, manager, phone="13812345678"):
    custom_field_save(
        actor=actor,
        key="allergies",
        label_zh="过敏史",
        label_en="Allergies",
        health=True,
        sensitive=True,
    )
    first17 = "11010119900307123"
    member = member_create(
        actor=actor,
        data=MemberInput(
            name="王丽",
            phone=phone,
            home_store_id=store.pk,
            email="lily@example.com",
            address="上海市静安区南京西路 1 号",
            id_number=first17 + id_number_checksum(first17),
            custom={"allergies": "对果酸敏感"},
        ),
        consents=[("data", True), ("health", True), ("photo", True)],
    )
    member_photo_set(actor=actor, member=member, content_type="image/png", data=PNG)
    totp_begin_setup(staff=manager)
    return member


@pytest.fixture
def old_data(actor_for, hq_admin, manager, store1):
    """Members, a photo and a TOTP secret written while t1 was the only key."""
    with override_settings(MEIYE_FIELD_KEYS=ONLY_T1):
        _write_member_data(actor_for(hq_admin, store1), store1, manager)
        expected = _plaintexts()
    return expected


def test_discovers_every_encrypted_field_of_every_model():
    labels = {f"{t.model._meta.label}.{f.name}" for t in encrypted_targets() for f in t.fields}
    assert labels >= {
        "members.Member.phone",
        "members.Member.email",
        "members.Member.address",
        "members.Member.id_number",
        "members.Member.custom_sensitive",
        "members.MemberPhoto.data",
        "org.Staff.totp_secret",
    }
    assert all(isinstance(f, ENCRYPTED_FIELD_TYPES) for t in encrypted_targets() for f in t.fields)


def test_rotation_moves_every_value_to_the_current_key_with_the_same_plaintext(old_data):
    before = _raw_values()
    assert len(before) == 7
    assert all(value.startswith("v1.t1.") for value in before.values())

    out = io.StringIO()
    call_command("rotate_keys", stdout=out, stderr=io.StringIO())

    after = _raw_values()
    assert set(after) == set(before)
    assert all(value.startswith("v1.t2.") for value in after.values())
    assert _plaintexts() == old_data
    assert json.loads(old_data["custom_sensitive"]) == {"allergies": "对果酸敏感"}
    assert "Total: 7 values, 0 already on 't2' (skipped), re-encrypted 7." in out.getvalue()
    assert "members.Member.phone" in out.getvalue()


def test_values_already_on_the_current_key_are_skipped_and_counted(old_data, actor_for, hq_admin, store1):
    member_create(
        actor=actor_for(hq_admin, store1), data=MemberInput(name="李娜", phone="13900000001", home_store_id=store1.pk)
    )
    new_phone = [v for (t, c, _), v in _raw_values().items() if c == "phone" and v.startswith("v1.t2.")]
    assert len(new_phone) == 1

    out = io.StringIO()
    call_command("rotate_keys", stdout=out, stderr=io.StringIO())
    assert "Total: 8 values, 1 already on 't2' (skipped), re-encrypted 7." in out.getvalue()
    assert new_phone[0] in _raw_values().values()  # untouched

    out = io.StringIO()
    call_command("rotate_keys", stdout=out, stderr=io.StringIO())
    assert "Total: 8 values, 8 already on 't2' (skipped), re-encrypted 0." in out.getvalue()


def test_dry_run_reports_counts_and_writes_nothing(old_data):
    before = _raw_values()
    out = io.StringIO()
    call_command("rotate_keys", "--dry-run", stdout=out, stderr=io.StringIO())
    assert _raw_values() == before
    text = out.getvalue()
    assert "Dry run" in text
    assert "Total: 7 values, 0 already on 't2' (skipped), would re-encrypt 7." in text
    assert "to re-encrypt 1  (by key id: t1: 1)" in text


def test_small_batches_rotate_everything(old_data, actor_for, hq_admin, store1):
    with override_settings(MEIYE_FIELD_KEYS=ONLY_T1):
        for n in range(5):
            member_create(
                actor=actor_for(hq_admin, store1),
                data=MemberInput(name=f"会员{n}", phone=f"1390000100{n}", home_store_id=store1.pk),
            )
    call_command("rotate_keys", "--batch-size", "2", stdout=io.StringIO(), stderr=io.StringIO())
    assert all(value.startswith("v1.t2.") for value in _raw_values().values())
    assert sorted(Member.objects.values_list("phone", flat=True)) == [
        "13812345678",
        "13900001000",
        "13900001001",
        "13900001002",
        "13900001003",
        "13900001004",
    ]


def test_value_under_an_unknown_key_is_a_clear_error_and_nothing_changes(old_data, actor_for, hq_admin, store1):
    with override_settings(MEIYE_FIELD_KEYS=UNKNOWN_T9):
        member_create(
            actor=actor_for(hq_admin, store1),
            data=MemberInput(name="赵敏", phone="13900000002", home_store_id=store1.pk),
        )
    before = _raw_values()
    with pytest.raises(CommandError) as exc:
        call_command("rotate_keys", stdout=io.StringIO(), stderr=io.StringIO())
    message = str(exc.value)
    assert "members.Member.phone: 1 value(s) under key id 't9'" in message
    assert "MEIYE_FIELD_KEYS" in message
    assert "nothing was changed" in message
    assert _raw_values() == before  # the t1 values were not rotated either
    with pytest.raises(CommandError, match="'t9'"):
        call_command("rotate_keys", "--dry-run", stdout=io.StringIO(), stderr=io.StringIO())


def test_a_value_that_does_not_decrypt_is_named(old_data):
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, email FROM members_member")
        pk, email = cursor.fetchone()
        # Move the e-mail ciphertext into the phone column: same key, wrong purpose (associated data).
        cursor.execute("UPDATE members_member SET phone = %s WHERE id = %s", [email, pk])
    with pytest.raises(CommandError) as exc:
        call_command("rotate_keys", stdout=io.StringIO(), stderr=io.StringIO())
    assert f"members.Member.phone (pk={pk})" in str(exc.value)
    assert "cannot be decrypted" in str(exc.value)


def test_a_plaintext_value_in_an_encrypted_column_is_named(db, old_data):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE members_member SET address = %s", ["plain text"])
    with pytest.raises(CommandError, match=r"members.Member.address \(pk=\d+\).*not an encrypted value"):
        call_command("rotate_keys", "--dry-run", stdout=io.StringIO(), stderr=io.StringIO())


def test_bad_batch_size():
    with pytest.raises(CommandError, match="--batch-size"):
        call_command("rotate_keys", "--batch-size", "0", stdout=io.StringIO())
