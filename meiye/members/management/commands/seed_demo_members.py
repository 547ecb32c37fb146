"""``manage.py seed_demo``: the demo chain 丽颜美业 Liyan Beauty (organisation code ``liyan``).

Creates, if missing: 3 stores, 12 staff covering every position (one shared demo password, see
``meiye.members.demo_data``), 5 custom fields, tags, and ``--members N`` members (2,000 by default) plus
up to 5 deliberate duplicates (same name and birthday as an earlier member, another phone) so the
duplicates page has something to show.

Idempotent: members are keyed by a deterministic phone (found through its blind index), stores by code,
staff by username, custom fields by key, so a second run writes nothing; a larger ``--members`` adds only
the missing members.

Stores, staff and custom fields go through their services. Members are bulk-created for speed (1M must
be feasible): per batch, in one transaction, the same rows ``members.services.member_create`` would write
(encrypted phone, e-mail, address and sensitive custom values through the model fields, ``phone_index``
through ``phone_index_of``, member numbers from the same locked ``MemberSequence`` row, advanced by the
batch, consent records, tags, referrers), validated with the same ``members.validation`` functions.
The one deliberate difference: ONE audit row per batch (action ``member.seed``, with the count and the
first and last member number) instead of one ``member.create`` plus one ``member.consent`` per record.

Refuses to run with production settings (``SESSION_COOKIE_SECURE`` on) unless ``MEIYE_DEMO=1`` (or ``DEBUG``):
the demo accounts share a published password.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections, models, router, transaction
from django.utils import timezone

from meiye.audit.services import audit_record
from meiye.core.progress import Progress
from meiye.members import demo_data as demo
from meiye.members import validation as v
from meiye.members.models import (
    ConsentChannel,
    ConsentPurpose,
    ConsentRecord,
    CustomField,
    Member,
    MemberSequence,
    MemberStatus,
    Tag,
)
from meiye.members.selectors import phone_index_of
from meiye.members.services import custom_field_save
from meiye.org.context import Actor
from meiye.org.models import Organisation, Staff, Store
from meiye.org.roles import Position
from meiye.org.services import organisation_get_or_create, staff_create, store_create

DEFAULT_BATCH = 2000
MAX_BATCH = 50_000


def _whole_number(flag: str, text: Any, low: int, high: int) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise argparse.ArgumentTypeError(
            f"需要 {low} 到 {high:,} 之间的整数，收到 {str(text)!r} / "
            f"{flag} must be a whole number from {low} to {high:,}, got {str(text)!r}"
        )
    return value


def _member_count(text: str) -> int:
    return _whole_number("--members", text, 0, demo.MAX_MEMBERS)


def _batch_size(text: str) -> int:
    return _whole_number("--batch-size", text, 1, MAX_BATCH)


@dataclass
class Counts:
    stores: int = 0
    staff: int = 0
    custom_fields: int = 0
    tags: int = 0
    members: int = 0
    members_existing: int = 0
    duplicates: int = 0
    consents: int = 0
    referrals: int = 0
    skipped_staff: list[str] = field(default_factory=list)


@dataclass
class Context:
    organisation: Organisation
    actor: Actor
    stores: list[Store]
    front_desk: dict[str, Staff | None]
    fields: dict[str, CustomField]
    tags: dict[str, Tag]
    pool: dict[int, int]  # member index -> pk, for the first REFERRER_POOL members (referrers)


# A batch item: the member's phone, how to build her full spec, whether she is a deliberate duplicate.
Item = tuple[str, Callable[[], demo.MemberSpec], bool]


class Command(BaseCommand):
    help = (
        "Load the demo chain 丽颜美业 Liyan Beauty: 3 stores, 12 staff (password "
        f"{demo.DEMO_PASSWORD}), custom fields and members. Idempotent. / 载入演示数据（可重复运行）。"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--members",
            type=_member_count,
            default=demo.DEFAULT_MEMBERS,
            metavar="N",
            help=f"how many members (default {demo.DEFAULT_MEMBERS}; up to {demo.MAX_MEMBERS:,}), "
            f"plus up to {len(demo.DUPLICATE_OF)} deliberate duplicates / 会员数量",
        )
        parser.add_argument(
            "--batch-size",
            type=_batch_size,
            default=DEFAULT_BATCH,
            metavar="N",
            help=f"members per transaction (default {DEFAULT_BATCH}) / 每批会员数",
        )
        parser.add_argument("--quiet", action="store_true", help="no progress bar and no summary / 静默")

    def handle(self, *args: Any, **options: Any) -> None:
        # call_command(members=...) bypasses argparse's type=, so check again here.
        count = _check_option("--members", options["members"], _member_count)
        batch_size = _check_option("--batch-size", options["batch_size"], _batch_size)
        quiet = bool(options["quiet"]) or options.get("verbosity", 1) == 0
        if _looks_like_production():
            raise CommandError(
                "这看起来是生产环境（SESSION_COOKIE_SECURE 已开启）。seed_demo 会创建使用公开演示密码的账号，"
                "只能在开发或演示环境运行；演示服务器请设置 MEIYE_DEMO=1。 / This looks like a production "
                "installation (SESSION_COOKIE_SECURE is on). seed_demo creates accounts with a published password; "
                "on a demo server set MEIYE_DEMO=1."
            )
        started = time.monotonic()
        counts = Counts()
        ctx = self._setup(counts)
        with _large_sqlite_cache():
            self._seed_members(ctx, counts, count=count, batch_size=batch_size, quiet=quiet)
        if not quiet:
            self._summary(ctx, counts, elapsed_ms=int((time.monotonic() - started) * 1000))

    # --- Organisation, stores, staff, custom fields, tags (through services) ---------------------------------

    def _setup(self, counts: Counts) -> Context:
        org = organisation_get_or_create(name=demo.ORG_NAME, code=demo.ORG_CODE)
        actor = Actor.system(org)
        stores: list[Store] = []
        for spec in demo.STORES:
            store = Store.objects.filter(organisation=org, code=spec["code"]).first()
            if store is None:
                store = store_create(actor=actor, **spec)
                counts.stores += 1
            stores.append(store)
        by_code = {store.code: store for store in stores}

        staff_by_username: dict[str, Staff] = {}
        for person in demo.STAFF:
            existing = Staff.objects.filter(username=person.username).first()
            if existing is not None:
                if existing.organisation_id == org.pk:
                    staff_by_username[person.username] = existing
                else:
                    counts.skipped_staff.append(person.username)
                continue
            staff_by_username[person.username] = staff_create(
                actor=actor,
                username=person.username,
                display_name=person.display_name,
                position=person.position,
                stores=[by_code[code] for code in person.stores],
                password=demo.DEMO_PASSWORD,
            )
            counts.staff += 1

        existing_keys = set(CustomField.objects.filter(organisation=org).values_list("key", flat=True))
        for definition in demo.CUSTOM_FIELDS:
            if definition["key"] not in existing_keys:
                custom_field_save(actor=actor, **definition)
                counts.custom_fields += 1
        fields = {cf.key: cf for cf in CustomField.objects.filter(organisation=org, is_active=True)}

        tags: dict[str, Tag] = {}
        for name in demo.TAGS:
            tags[name], created = Tag.objects.get_or_create(organisation=org, name=name)
            counts.tags += int(created)

        front_desk = {code: staff_by_username.get(username) for code, username in demo.FRONT_DESK.items()}
        return Context(
            organisation=org, actor=actor, stores=stores, front_desk=front_desk, fields=fields, tags=tags, pool={}
        )

    # --- Members (bulk) ------------------------------------------------------------------------------------------

    def _seed_members(self, ctx: Context, counts: Counts, *, count: int, batch_size: int, quiet: bool) -> None:
        required = sorted(
            key for key, cf in ctx.fields.items() if cf.required and key not in {d["key"] for d in demo.CUSTOM_FIELDS}
        )
        duplicates = demo.duplicates_for(count)
        if required and count:
            raise CommandError(
                f"自定义字段 {required} 为必填，演示数据无法填写。 / custom fields {required} are required and "
                "seed_demo cannot fill them; make them optional first."
            )
        pool_phones = {phone_index_of(demo.phone_for(i)): i for i in range(min(count, demo.REFERRER_POOL))}
        existing_pool = Member.objects.filter(organisation=ctx.organisation, phone_index__in=list(pool_phones))
        for pk, phone_index in existing_pool.values_list("pk", "phone_index"):
            if phone_index is not None:
                ctx.pool[pool_phones[phone_index]] = pk

        progress = None if quiet else Progress(count + len(duplicates), "会员 Members")
        for start in range(0, count, batch_size):
            indexes = range(start, min(start + batch_size, count))
            self._seed_batch(ctx, counts, [(demo.phone_for(i), _spec_of(i), False) for i in indexes])
            if progress is not None:
                progress.advance(len(indexes))
        if duplicates:
            items = [(demo.phone_for(demo.DUPLICATE_PHONE_BASE + j), _duplicate_of(j), True) for j in duplicates]
            self._seed_batch(ctx, counts, items)
            if progress is not None:
                progress.advance(len(items))
        if progress is not None:
            progress.finish()

    def _seed_batch(self, ctx: Context, counts: Counts, items: list[Item]) -> None:
        org = ctx.organisation
        by_index = {phone_index_of(phone): (phone, make, dup) for phone, make, dup in items}
        with transaction.atomic():
            existing = set(
                Member.objects.filter(organisation=org, phone_index__in=list(by_index)).values_list(
                    "phone_index", flat=True
                )
            )
            counts.members_existing += len(existing)
            todo = [(index, *item) for index, item in by_index.items() if index not in existing]
            if not todo:
                return
            seq, _ = MemberSequence.objects.select_for_update().get_or_create(organisation=org)
            first = seq.next_value
            MemberSequence.objects.filter(pk=seq.pk).update(next_value=first + len(todo))

            built: list[tuple[Member, demo.MemberSpec]] = []
            for offset, (phone_index, phone, make, _dup) in enumerate(todo):
                spec = make()
                built.append((self._member(ctx, spec, phone, phone_index, f"M{first + offset:06d}"), spec))
            Member.objects.bulk_create([member for member, _ in built])

            # Consents and tag links are plain rows: inserted with executemany (the ORM's per-object cost
            # dominated the run time), with exactly the columns ConsentRecord.objects.create would write.
            now = timezone.now()
            consents: list[tuple[Any, ...]] = []
            tag_links: list[tuple[int, int]] = []
            referred: list[Member] = []
            for member, spec in built:
                if member.pk is None:  # pragma: no cover - every supported backend returns primary keys
                    raise CommandError("the database did not return primary keys from bulk insert")
                if spec.index < demo.REFERRER_POOL:
                    ctx.pool[spec.index] = member.pk
                consents.extend(
                    (
                        member.pk,
                        purpose,
                        granted,
                        demo.CONSENT_VERSION,
                        ConsentChannel.TABLET.value,
                        member.created_by_id,
                        now,
                    )
                    for purpose, granted in spec.consents
                )
                tag_links.extend((member.pk, ctx.tags[name].pk) for name in spec.tags)
            # Referrers (the pool is complete now, also for members of this very batch).
            for member, spec in built:
                referrer_pk = ctx.pool.get(spec.referrer) if spec.referrer is not None else None
                if referrer_pk is not None and referrer_pk != member.pk:
                    member.referrer_id = referrer_pk
                    referred.append(member)
            _insert_rows(
                ConsentRecord,
                ["member", "purpose", "granted", "text_version", "channel", "recorded_by", "at"],
                consents,
            )
            _insert_rows(Member.tags.through, ["member", "tag"], tag_links)
            if referred:
                Member.objects.bulk_update(referred, ["referrer"])
            audit_record(
                actor=ctx.actor,
                action="member.seed",
                object_type="members.Member",
                detail={
                    "count": len(built),
                    "first": built[0][0].member_no,
                    "last": built[-1][0].member_no,
                    "consents": len(consents),
                    "source": "seed_demo",
                },
            )
        counts.members += len(built)
        counts.duplicates += sum(1 for *_rest, dup in todo if dup)
        counts.consents += len(consents)
        counts.referrals += len(referred)

    def _member(self, ctx: Context, spec: demo.MemberSpec, phone: str, phone_index: str, member_no: str) -> Member:
        """The row ``member_create`` would write for ``spec`` (validated the same way)."""
        store = ctx.stores[spec.store]
        consents = dict(spec.consents)
        if not consents.get(ConsentPurpose.DATA):
            raise CommandError(f"demo member {spec.index}: personal-data consent missing")
        plain: dict[str, Any] = {}
        sensitive: dict[str, Any] = {}
        for key, raw in {**spec.custom, **spec.sensitive}.items():
            cf = ctx.fields.get(key)
            if cf is None:  # deactivated by someone: the service would not accept it either
                continue
            value = v.clean_custom_value(cf, raw)
            if cf.health and value is not None and not consents.get(ConsentPurpose.HEALTH, False):
                raise CommandError(f"demo member {spec.index}: health value without health consent")
            if value is not None:
                (sensitive if cf.is_protected else plain)[key] = value
        return Member(
            organisation=ctx.organisation,
            member_no=member_no,
            name=v.clean_name(spec.name),
            gender=spec.gender,
            phone=v.clean_phone(phone),
            phone_index=phone_index,
            birthday=v.clean_birthday(spec.birthday),
            email=v.clean_email(spec.email) or None if spec.email else None,
            address=spec.address.strip()[:200] or None if spec.address else None,
            channel=spec.channel,
            home_store=store,
            notes=spec.notes.strip()[:2000],
            custom=plain,
            custom_sensitive=json.dumps(sensitive, ensure_ascii=False) if sensitive else None,
            status=MemberStatus.ACTIVE,
            created_by=ctx.front_desk.get(store.code),
        )

    # --- Summary -----------------------------------------------------------------------------------------------

    def _summary(self, ctx: Context, counts: Counts, *, elapsed_ms: int) -> None:
        org = ctx.organisation
        out = self.stdout
        total_members = Member.objects.filter(organisation=org).count()
        out.write(
            self.style.SUCCESS(f"{org.name} ({org.code}) 演示数据已就绪 / demo data ready in {elapsed_ms / 1000:.1f} s")
        )
        out.write(f"  门店 Stores            {len(ctx.stores):>8}   new {counts.stores}")
        out.write(f"  员工 Staff             {len(demo.STAFF) - len(counts.skipped_staff):>8}   new {counts.staff}")
        out.write(f"  自定义字段 Custom fields {len(ctx.fields):>6}   new {counts.custom_fields}")
        out.write(f"  标签 Tags              {len(ctx.tags):>8}   new {counts.tags}")
        out.write(
            f"  会员 Members           {total_members:>8}   new {counts.members} "
            f"(of which {counts.duplicates} deliberate duplicates), already there {counts.members_existing}"
        )
        out.write(f"  同意记录 Consents      {'':>8}   new {counts.consents}")
        out.write(f"  转介绍 Referrals       {'':>8}   new {counts.referrals}")
        out.write("")
        out.write(f"  演示账号 Demo accounts — 密码 password: {demo.DEMO_PASSWORD}")
        names = {store.code: store.name for store in ctx.stores}
        for person in demo.STAFF:
            if person.username in counts.skipped_staff:
                continue
            where = "、".join(names[code] for code in person.stores) or "全部门店 all stores"
            out.write(f"    {person.username:<10} {Position(person.position).label} — {where}")
        for username in counts.skipped_staff:
            out.write(
                self.style.WARNING(
                    f"  登录名 {username} 已被其他品牌使用，已跳过 / username {username} belongs to another "
                    "organisation; skipped"
                )
            )


@contextmanager
def _large_sqlite_cache() -> Iterator[None]:
    """SQLite's default page cache (2 MB) makes a million-row seed wait on disk for the random inserts into
    the phone index; give this connection 256 MB while seeding, then restore it."""
    conn = connections[router.db_for_write(Member)]
    if conn.vendor != "sqlite":
        yield
        return
    with conn.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        previous = int(cursor.fetchone()[0])
        cursor.execute("PRAGMA cache_size = -262144")
    try:
        yield
    finally:
        with conn.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = {previous:d}")


def _insert_rows(model: type[models.Model], field_names: list[str], rows: list[tuple[Any, ...]]) -> None:
    """INSERT plain rows (values already in Python form) in chunks, preparing each value with its field."""
    if not rows:
        return
    conn = connections[router.db_for_write(model)]
    fields = [model._meta.get_field(name) for name in field_names]
    columns = ", ".join(conn.ops.quote_name(str(f.column)) for f in fields)  # type: ignore[union-attr]
    table = conn.ops.quote_name(model._meta.db_table)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"  # noqa: S608 - quoted identifiers only
    prepared = [
        tuple(f.get_db_prep_save(value, connection=conn) for f, value in zip(fields, row, strict=True))  # type: ignore[union-attr]
        for row in rows
    ]
    with conn.cursor() as cursor:
        for start in range(0, len(prepared), 5000):
            cursor.executemany(sql, prepared[start : start + 5000])


def _looks_like_production() -> bool:
    """Production settings (HTTPS-only cookies) without DEBUG or MEIYE_DEMO. Development, test and benchmark
    settings pass."""
    demo_allowed = settings.DEBUG or getattr(settings, "MEIYE_DEMO", False)
    return bool(settings.SESSION_COOKIE_SECURE) and not demo_allowed


def _spec_of(index: int) -> Callable[[], demo.MemberSpec]:
    return lambda: demo.member_spec(index)


def _duplicate_of(position: int) -> Callable[[], demo.MemberSpec]:
    return lambda: demo.duplicate_spec(position)


def _check_option(flag: str, value: Any, parse: Callable[[str], int]) -> int:
    try:
        return parse(str(value))
    except argparse.ArgumentTypeError as exc:
        raise CommandError(f"{flag}: {exc}") from None
