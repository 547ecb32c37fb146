"""S-28 Privacy: encrypted at rest, blind-index lookup, masking, audited reveals, export and erasure."""

from __future__ import annotations

import pytest
from django.db import connection

from meiye.audit.models import AuditLog
from meiye.members.models import Member, MemberStatus
from meiye.members.selectors import member_find_by_phone, member_view
from meiye.members.services import MemberInput, member_create, member_erase, member_export, member_reveal
from tests.members.conftest import ALL_CONSENTS

PHONE = "13812345678"
ID_NUMBER = "11010119900307123X"  # a valid check digit is computed below
ALLERGY = "对果酸、水杨酸过敏"


def valid_id() -> str:
    from meiye.members.validation import id_number_checksum

    first17 = "11010119900307123"
    return first17 + id_number_checksum(first17)


@pytest.fixture
def lin(allergies, skin_type, hq_admin, store1, actor_for) -> Member:
    data = MemberInput(
        name="林小雅",
        phone=PHONE,
        id_number=valid_id(),
        email="xiaoya@example.com",
        birthday="1990-03-07",
        home_store_id=store1.pk,
        custom={"allergies": ALLERGY, "skin_type": "敏感"},
        tags=["VIP"],
    )
    return member_create(actor=actor_for(hq_admin, store1), data=data, consents=ALL_CONSENTS)


@pytest.mark.django_db(transaction=True)
def test_S28_phone_and_id_not_in_plaintext_in_database(lin):
    with connection.cursor() as cursor:
        cursor.execute("SELECT phone, id_number, phone_index, custom_sensitive FROM members_member")
        rows = cursor.fetchall()
    blob = repr(rows)
    for secret in (PHONE, valid_id(), ALLERGY, "果酸"):
        assert secret not in blob
    assert rows[0][0].startswith("v1.") and rows[0][1].startswith("v1.")
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(FULL)")
        connection.close()
        with open(connection.settings_dict["NAME"], "rb") as handle:
            raw = handle.read()
        assert PHONE.encode() not in raw
        assert valid_id().encode() not in raw
        assert ALLERGY.encode("utf-8") not in raw


def test_S28_full_phone_finds_member(lin, receptionist, actor_for, store1):
    actor = actor_for(receptionist, store1)
    assert member_find_by_phone(actor, PHONE) == lin
    assert member_find_by_phone(actor, "+86 138-1234-5678") == lin
    assert member_find_by_phone(actor, "1381234567") is None
    assert member_find_by_phone(actor, "13812345679") is None


def test_S28_receptionist_sees_masked_values(lin, receptionist, actor_for, store1):
    view = member_view(actor_for(receptionist, store1), lin)
    assert view.phone == "138****5678"
    assert view.id_number == "1101**********123" + valid_id()[-1]
    allergy = next(c for c in view.custom if c.field.key == "allergies")
    assert allergy.masked and allergy.shown == "******"
    assert view.can_reveal["phone"] is True
    assert view.can_reveal["id_number"] is False


def test_S28_opening_phone_id_or_allergies_writes_audit_row(lin, receptionist, manager, beautician, actor_for, store1):
    before = AuditLog.objects.filter(action="member.reveal").count()

    assert member_reveal(actor=actor_for(receptionist, store1), member=lin, field="phone") == PHONE
    assert member_reveal(actor=actor_for(manager, store1), member=lin, field="id_number") == valid_id()
    assert member_reveal(actor=actor_for(beautician, store1), member=lin, field="custom.allergies") == ALLERGY

    rows = list(AuditLog.objects.filter(action="member.reveal").order_by("id"))[before:]
    assert [(r.staff, r.detail["field"], r.object_id) for r in rows] == [
        (receptionist, "phone", str(lin.pk)),
        (manager, "id_number", str(lin.pk)),
        (beautician, "custom.allergies", str(lin.pk)),
    ]
    assert all(r.at is not None and r.store == store1 and r.ip == "127.0.0.1" for r in rows)
    # The audit rows themselves hold no personal data.
    assert PHONE not in repr([(r.detail, r.object_repr) for r in rows])


def test_S28_reveal_refused_without_permission_writes_nothing(lin, receptionist, actor_for, store1):
    from meiye.core.errors import PermissionDenied

    before = AuditLog.objects.count()
    with pytest.raises(PermissionDenied) as exc:
        member_reveal(actor=actor_for(receptionist, store1), member=lin, field="id_number")
    assert exc.value.code == "auth.permission_denied"
    with pytest.raises(PermissionDenied):
        member_reveal(actor=actor_for(receptionist, store1), member=lin, field="custom.allergies")
    assert AuditLog.objects.count() == before


def test_S28_export_holds_everything_about_the_member(lin, manager, actor_for, store1):
    member_reveal(actor=actor_for(manager, store1), member=lin, field="phone")
    data = member_export(actor=actor_for(manager, store1), member=lin)
    assert data["member"]["name"] == "林小雅"
    assert data["member"]["phone"] == PHONE
    assert data["member"]["id_number"] == valid_id()
    assert data["member"]["email"] == "xiaoya@example.com"
    assert data["member"]["birthday"] == "1990-03-07"
    assert data["member"]["tags"] == ["VIP"]
    assert data["custom_fields"] == {"allergies": ALLERGY, "skin_type": "敏感"}
    assert sorted(c["purpose"] for c in data["consents"]) == ["data", "health", "photo"]
    assert [a["action"] for a in data["access_log"]][:1] == ["member.create"]
    assert "member.reveal" in [a["action"] for a in data["access_log"]]
    assert AuditLog.objects.filter(action="member.export", object_id=str(lin.pk)).count() == 1


def test_S28_erasure_anonymises_profile_and_restricts_what_law_keeps(lin, hq_admin, actor_for, store1):
    record = member_erase(actor=actor_for(hq_admin, store1), member=lin, reason="会员本人申请注销")
    lin.refresh_from_db()
    assert lin.status == MemberStatus.ERASED
    assert lin.name == f"已注销会员 {lin.member_no}"
    assert (lin.phone, lin.phone_index, lin.email, lin.id_number, lin.birthday) == (None, None, None, None, None)
    assert list(lin.tags.all()) == []
    assert lin.custom == {}
    # Allergies are part of the treatment record: kept, restricted, with the legal reason.
    assert lin.restricted is True
    assert record.kept_fields == [{"field": "custom.allergies", "why": "医疗美容病历保存（医疗机构病历管理规定）"}]
    assert "phone" in record.erased_fields and "custom.skin_type" in record.erased_fields
    assert member_find_by_phone(actor_for(hq_admin, store1), PHONE) is None
    # The phone can register again as a new member.
    again = member_create(
        actor=actor_for(hq_admin, store1), data=MemberInput(name="新会员", phone=PHONE, home_store_id=store1.pk)
    )
    assert again.pk != lin.pk
    assert AuditLog.objects.filter(action="member.erase", object_id=str(lin.pk)).count() == 1
