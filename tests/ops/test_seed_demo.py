"""manage.py seed_demo: the demo chain, deterministic and idempotent, and no plaintext phone on disk."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings

from meiye.audit.models import AuditLog
from meiye.members import demo_data as demo
from meiye.members.models import ConsentRecord, CustomField, Member, MemberSequence, Retention, Tag
from meiye.members.selectors import consent_state, duplicate_groups, phone_index_of, sensitive_values
from meiye.members.services import MemberInput, member_create
from meiye.org.context import Actor
from meiye.org.models import Organisation, Staff, Store
from meiye.org.roles import Position


def seed(*args: str) -> tuple[str, str]:
    """The members part of the demo (``seed_demo`` = this plus the front-desk history)."""
    out, err = io.StringIO(), io.StringIO()
    call_command("seed_demo_members", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def snapshot() -> dict[str, object]:
    return {
        "organisations": Organisation.objects.count(),
        "stores": list(Store.objects.order_by("id").values_list("code", "name", "address", "phone", "opening_hours")),
        "staff": list(Staff.objects.order_by("id").values_list("username", "position")),
        "custom_fields": list(CustomField.objects.order_by("id").values_list("key", "field_type")),
        "tags": Tag.objects.count(),
        "members": list(Member.objects.order_by("id").values_list("member_no", "phone_index", "name", "birthday")),
        "consents": ConsentRecord.objects.count(),
        "tag_links": Member.tags.through.objects.count(),
        "referrals": Member.objects.exclude(referrer=None).count(),
        "audit": AuditLog.objects.count(),
        "sequence": list(MemberSequence.objects.values_list("next_value", flat=True)),
    }


def specs_by_phone(count: int) -> dict[str, demo.MemberSpec]:
    specs = [demo.member_spec(i) for i in range(count)] + [demo.duplicate_spec(j) for j in demo.duplicates_for(count)]
    return {spec.phone: spec for spec in specs}


def test_seeds_the_demo_chain(db):
    out, _err = seed("--members", "50")

    org = Organisation.objects.get()
    assert (org.code, org.name) == ("liyan", "丽颜美业 Liyan Beauty")
    stores = list(Store.objects.order_by("id"))
    assert [(s.code, s.name, s.time_zone) for s in stores] == [
        ("jingan", "静安店", "Asia/Shanghai"),
        ("xuhui", "徐汇店", "Asia/Shanghai"),
        ("pudong", "浦东店", "Asia/Shanghai"),
    ]
    assert all(s.address.startswith("上海市") and s.phone.startswith("021-") for s in stores)
    assert all(set(s.opening_hours) == {"mon", "tue", "wed", "thu", "fri", "sat", "sun"} for s in stores)

    staff = {s.username: s for s in Staff.objects.all()}
    assert len(staff) == 12
    assert {s.position for s in staff.values()} == set(Position.values)
    assert staff["admin"].position == Position.HQ_ADMIN and staff["admin"].sees_all_stores
    assert staff["finance"].position == Position.FINANCE
    for n, code in enumerate(["jingan", "xuhui", "pudong"], start=1):
        assert [s.code for s in staff[f"manager{n}"].stores.all()] == [code]
        assert [s.code for s in staff[f"front{n}"].stores.all()] == [code]
    assert all(s.check_password("meiye-demo-2026") for s in staff.values())
    assert all(s.organisation_id == org.pk for s in staff.values())

    fields = {cf.key: cf for cf in CustomField.objects.all()}
    assert list(fields) == ["skin_type", "allergies", "favourite", "interests", "preferred_time"]
    assert fields["skin_type"].choices == ["干性", "油性", "混合", "中性", "敏感"]
    allergies = fields["allergies"]
    assert (allergies.health, allergies.sensitive, allergies.retention) == (True, True, Retention.KEEP)
    assert "医疗" in allergies.retention_reason and "病历" in allergies.retention_reason

    # 50 members plus the 5 deliberate duplicates, numbered in order.
    members = list(Member.objects.order_by("id"))
    assert len(members) == 55
    assert [m.member_no for m in members] == [f"M{n:06d}" for n in range(1, 56)]
    assert MemberSequence.objects.get(organisation=org).next_value == 56
    assert {m.home_store.code for m in members} == {"jingan", "xuhui", "pudong"}
    assert "new 55 (of which 5 deliberate duplicates)" in out
    assert "meiye-demo-2026" in out


def test_members_are_valid_and_match_their_specs(db):
    seed("--members", "50", "--quiet")
    specs = specs_by_phone(50)
    members = list(Member.objects.select_related("home_store", "created_by").order_by("id"))
    phones = [m.phone for m in members]
    assert len(set(phones)) == 55
    assert all(re.fullmatch(r"1[3-9]\d{9}", p) for p in phones)
    for member in members:
        spec = specs[member.phone]
        assert member.phone_index == phone_index_of(member.phone)
        assert (member.name, member.gender, member.birthday, member.channel) == (
            spec.name,
            spec.gender,
            spec.birthday,
            spec.channel,
        )
        assert member.home_store.code == demo.STORES[spec.store]["code"]
        assert member.created_by.username == demo.FRONT_DESK[member.home_store.code]
        assert member.email == spec.email
        assert member.custom == spec.custom
        assert sensitive_values(member) == spec.sensitive
        assert sorted(member.tags.values_list("name", flat=True)) == spec.tags
        consents = consent_state(member)
        assert consents["data"] is True
        if "allergies" in sensitive_values(member):
            assert consents["health"] is True
        if member.email:
            assert member.email.rsplit("@", 1)[1] in {"example.com", "example.net", "example.org"}
    assert sum(1 for m in members if m.referrer_id) == sum(1 for s in specs.values() if s.referrer is not None)
    for member in members:
        if member.referrer_id:
            assert member.referrer.member_no < member.member_no


def test_deliberate_duplicates_fill_the_duplicates_page(db):
    seed("--members", "50", "--quiet")
    by_no = {m.member_no: m for m in Member.objects.all()}
    for j, original_index in enumerate(demo.DUPLICATE_OF):
        original, duplicate = by_no[f"M{original_index + 1:06d}"], by_no[f"M{51 + j:06d}"]
        assert (duplicate.name, duplicate.birthday) == (original.name, original.birthday)
        assert duplicate.birthday is not None
        assert duplicate.phone != original.phone
    groups = duplicate_groups(Actor.system(Organisation.objects.get()))
    assert len(groups) == 5
    assert all(g.reason == "name_birthday" and len(g.members) == 2 for g in groups)


def test_running_twice_changes_nothing(db):
    seed("--members", "50", "--quiet")
    first = snapshot()
    out, _err = seed("--members", "50")
    assert snapshot() == first
    assert "new 0 (of which 0 deliberate duplicates), already there 55" in out


def test_a_larger_run_adds_only_the_missing_members(db):
    seed("--members", "20", "--quiet")
    assert Member.objects.count() == 22  # originals 3 and 13 are within 20: two duplicates
    numbers = dict(Member.objects.values_list("phone_index", "member_no"))
    seed("--members", "50", "--batch-size", "7", "--quiet")
    assert Member.objects.count() == 55
    assert {k: v for k, v in Member.objects.values_list("phone_index", "member_no") if k in numbers} == numbers
    specs = specs_by_phone(50)
    assert all(specs[m.phone].name == m.name for m in Member.objects.all())
    assert MemberSequence.objects.get().next_value == 56


def test_one_audit_row_per_batch(db):
    seed("--members", "50", "--batch-size", "20", "--quiet")
    rows = list(AuditLog.objects.filter(action="member.seed").order_by("id"))
    assert [(r.detail["count"], r.detail["first"], r.detail["last"]) for r in rows] == [
        (20, "M000001", "M000020"),
        (20, "M000021", "M000040"),
        (10, "M000041", "M000050"),
        (5, "M000051", "M000055"),
    ]
    assert sum(r.detail["consents"] for r in rows) == ConsentRecord.objects.count()
    assert all(r.staff_id is None and r.object_type == "members.Member" for r in rows)


def test_bulk_rows_equal_what_member_create_writes(db):
    """The bulk path writes the same member a receptionist would register through the service."""
    index = next(i for i in range(50) if (s := demo.member_spec(i)).sensitive and s.tags and s.email and s.custom)
    seed("--members", "50", "--quiet")
    spec = demo.member_spec(index)
    seeded = Member.objects.get(phone_index=phone_index_of(spec.phone))
    store = seeded.home_store
    front = Staff.objects.get(username=demo.FRONT_DESK[store.code])
    service = member_create(
        actor=Actor(staff=front, organisation=store.organisation, store=store),
        data=MemberInput(
            name=spec.name,
            phone="13900000000",
            gender=spec.gender,
            birthday=spec.birthday,
            email=spec.email,
            address=spec.address,
            channel=spec.channel,
            home_store_id=store.pk,
            tags=spec.tags,
            notes=spec.notes,
            custom={**spec.custom, **spec.sensitive},
        ),
        consents=spec.consents,
    )
    service.refresh_from_db()

    def persisted(member: Member) -> dict[str, object]:
        return {
            "name": member.name,
            "gender": member.gender,
            "birthday": member.birthday,
            "email": member.email,
            "address": member.address,
            "id_number": member.id_number,
            "id_number_index": member.id_number_index,
            "channel": member.channel,
            "home_store": member.home_store_id,
            "notes": member.notes,
            "custom": member.custom,
            "custom_sensitive": json.loads(member.custom_sensitive) if member.custom_sensitive else None,
            "status": member.status,
            "restricted": member.restricted,
            "created_by": member.created_by_id,
            "tags": sorted(member.tags.values_list("name", flat=True)),
            "consents": sorted(
                member.consents.values_list("purpose", "granted", "text_version", "channel", "recorded_by")
            ),
        }

    assert persisted(seeded) == persisted(service)
    assert re.fullmatch(r"M\d{6}", seeded.member_no) and service.member_no == "M000056"


def test_quiet_prints_nothing(db):
    out, err = seed("--members", "5", "--quiet")
    assert (out, err) == ("", "")
    assert Member.objects.count() == 5 + len(demo.duplicates_for(5))


def test_zero_members_seeds_only_the_chain(db):
    seed("--members", "0", "--quiet")
    assert (Store.objects.count(), Staff.objects.count(), Member.objects.count()) == (3, 12, 0)


def _nothing_written() -> bool:
    return not any(model.objects.exists() for model in (Organisation, Store, Staff, Member, CustomField, Tag, AuditLog))


@pytest.mark.parametrize("value", ["-1", "-5", "abc", "1e3", "", "10000001", "2.5"])
def test_bad_member_count_is_refused_naming_the_flag(db, value):
    with pytest.raises(CommandError) as exc:
        seed("--members", value)
    message = str(exc.value)
    assert "--members" in message
    assert "整数" in message and "whole number" in message
    assert _nothing_written()


@pytest.mark.parametrize("value", [-1, "abc", True])
def test_bad_member_count_through_call_command_keywords(db, value):
    with pytest.raises(CommandError, match="--members"):
        call_command("seed_demo", members=value, stdout=io.StringIO())
    assert _nothing_written()


def test_bad_batch_size_is_refused(db):
    with pytest.raises(CommandError, match="--batch-size"):
        seed("--batch-size", "0")
    assert _nothing_written()


def test_bad_flag_from_the_command_line_exits_non_zero(tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "MEIYE_VAR_DIR": str(tmp_path)}
    env.setdefault("MEIYE_SECRET_KEY", "x" * 60)
    result = subprocess.run(
        [sys.executable, "manage.py", "seed_demo", "--members", "abc"],
        cwd=Path(settings.BASE_DIR),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "argument --members: 需要 0 到 10,000,000 之间的整数，收到 'abc'" in result.stderr
    assert "--members must be a whole number from 0 to 10,000,000, got 'abc'" in result.stderr


def test_refuses_with_production_settings(db):
    production = override_settings(SESSION_COOKIE_SECURE=True, DEBUG=False, MEIYE_DEMO=False)
    with production, pytest.raises(CommandError, match="MEIYE_DEMO=1"):
        seed("--members", "5")
    assert _nothing_written()


def test_a_demo_server_with_production_settings_may_seed(db):
    with override_settings(SESSION_COOKIE_SECURE=True, DEBUG=False, MEIYE_DEMO=True):
        seed("--members", "5", "--quiet")
    assert Member.objects.count() == 6  # 5 and the duplicate of member 3


@pytest.mark.django_db(transaction=True)
def test_no_phone_number_is_stored_in_plaintext_in_the_database_file():
    if connection.vendor != "sqlite":
        pytest.skip("reads the SQLite database file")
    seed("--members", "50", "--quiet")
    phones = [m.phone for m in Member.objects.all()]
    assert len(phones) == 55
    known_plaintext = Member.objects.order_by("id").first().member_no.encode()
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(FULL)")
    path = Path(connection.settings_dict["NAME"])
    connection.close()
    files = [path, Path(f"{path}-wal"), Path(f"{path}-journal")]
    data = b"".join(p.read_bytes() for p in files if p.exists())
    assert known_plaintext in data  # the file really holds the seeded rows
    leaked = [phone for phone in phones if phone.encode() in data]
    assert leaked == []
