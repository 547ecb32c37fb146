# ruff: noqa: S608  (bulk SQL built from constants: the benchmark's own throwaway database)
"""Loyalty benchmarks (`make bench` runs them after the checkout benchmarks). Prints figures; never asserts.

For each database (SQLite, PostgreSQL), in a THROWAWAY copy of the 10k-member checkout benchmark database
(benchmarks/prepare.py; prepared first if missing):
  - build --members members (clones of the seeded ones, by INSERT … SELECT) and --lots points lots over the
    first --lot-members of them, with their earning journals, entries and balances, all by bulk SQL;
  - expiry: time ``points_expire_due`` expiring every lot (one journal per member), then verify the lots;
  - birthday scan: time ``birthdays_due`` over all members, then ``birthday_gifts_give`` for --award of them;
  - dormant scan: time ``dormant_due`` over all members, then ``dormant_wake`` for --award of them;
  - checkout latency, in process (Django's test client, the API checkout of benchmarks/prepare.py), with no
    tiers or rules configured and with 4 tiers and the earning rules configured: --checkouts each, in
    alternating rounds; the ratio is what the loyalty steps add.

Examples:  python benchmarks/loyalty.py --quick                  (20k lots over 4k of 50k members)
           python benchmarks/loyalty.py                          (1,000,000 lots over 200,000 of 1,000,000)
           python benchmarks/loyalty.py --backends sqlite --lots 200000 --lot-members 40000 --members 200000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PG = "postgres://postgres@127.0.0.1:5432"
BASE_MEMBERS = 10_000
EXPIRY_DAY = date(2026, 6, 1)  # every lot built below expired before it
SCAN_DAY = date(2026, 6, 15)


# --- the driver ----------------------------------------------------------------------------------------------


def throwaway_env(backend: str, pg_base: str | None = None) -> dict[str, str]:
    """A fresh copy of the 10k checkout benchmark database, prepared first if missing. ``pg_base`` names
    another PostgreSQL base database (the copy is ``<base>_loyalty``)."""
    from benchmarks.run import db_env, prepare

    base = db_env(backend, BASE_MEMBERS)
    if backend == "postgresql" and pg_base:
        base = {**base, "DATABASE_URL": f"{PG}/{pg_base}"}
        subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", pg_base], capture_output=True, check=False)
    if backend == "postgresql":
        source_db = pg_base or f"meiye_bench_{BASE_MEMBERS}"
        copy_db = f"{source_db}_loyalty" if pg_base else "meiye_bench_loyalty"
        exists = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", "SELECT count(*) FROM django_migrations"],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PGDATABASE": source_db},
        )
        if exists.returncode != 0 or not exists.stdout.strip().isdigit():
            prepare(base, BASE_MEMBERS)
        pg = ["-h", "127.0.0.1", "-U", "postgres"]
        subprocess.run(["dropdb", *pg, "--if-exists", copy_db], check=True)
        subprocess.run(["createdb", *pg, "-T", source_db, copy_db], check=True)
        return {**base, "DATABASE_URL": f"{PG}/{copy_db}"}
    source = Path(base["MEIYE_SQLITE_PATH"])
    if not source.exists():
        prepare(base, BASE_MEMBERS)
    target = source.with_name("loyalty.sqlite3")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    subprocess.run(["sqlite3", str(source), f".backup '{target}'"], check=True)
    return {**base, "MEIYE_SQLITE_PATH": str(target)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--members", type=int, default=1_000_000, help="members in the database (scans)")
    parser.add_argument("--lots", type=int, default=1_000_000, help="points lots to expire")
    parser.add_argument("--lot-members", type=int, default=200_000, help="members holding the lots")
    parser.add_argument("--award", type=int, default=500, help="members given a birthday / wake-up reward")
    parser.add_argument("--checkouts", type=int, default=60, help="checkouts per configuration")
    parser.add_argument("--batch", type=int, default=None, help="expiry batch size (default: the service's)")
    parser.add_argument("--no-dormant", action="store_true", help="skip the dormant scan (slow on PostgreSQL)")
    parser.add_argument("--quick", action="store_true", help="50k members, 20k lots over 4k members")
    parser.add_argument(
        "--parts",
        default="build,expiry,scans,checkout",
        help="what to run; without 'build', --inner runs on an already built database (DATABASE_URL / MEIYE_SQLITE_PATH)",
    )
    parser.add_argument("--pg-base", default=None, help="PostgreSQL base database (default meiye_bench_10000)")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.members, args.lots, args.lot_members, args.award, args.checkouts = 50_000, 20_000, 4_000, 100, 30
    if args.inner:
        inner(args)
        return
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "args": {k: v for k, v in vars(args).items() if k != "inner"},
        "runs": [],
    }
    for backend in args.backends.split(","):
        print(f"\n## loyalty, {backend}: {args.members:,} members, {args.lots:,} lots over {args.lot_members:,}")
        env = throwaway_env(backend, args.pg_base)
        command = [PY, "benchmarks/loyalty.py", "--inner", *_passed(args)]
        out = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, check=False)
        if out.returncode != 0:
            raise SystemExit(f"loyalty benchmark failed on {backend} (exit {out.returncode})")
        run = json.loads(out.stdout.strip().splitlines()[-1])
        run["backend"] = backend
        report["runs"].append(run)
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(exist_ok=True)
    path = out_dir / f"loyalty-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"\nWritten to {path.relative_to(ROOT)}")
    if shutil.which("dropdb") and "postgresql" in args.backends and not os.environ.get("LOYALTY_BENCH_KEEP"):
        copy_db = f"{args.pg_base}_loyalty" if args.pg_base else "meiye_bench_loyalty"
        subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", copy_db])


def _passed(args: argparse.Namespace) -> list[str]:
    out = [
        f"--members={args.members}",
        f"--lots={args.lots}",
        f"--lot-members={args.lot_members}",
        f"--award={args.award}",
        f"--checkouts={args.checkouts}",
        f"--parts={args.parts}",
    ]
    if args.batch:
        out.append(f"--batch={args.batch}")
    if args.no_dormant:
        out.append("--no-dormant")
    return out


# --- inside the throwaway database ------------------------------------------------------------------------------


_CLOCK = [time.perf_counter()]


def say(text: str) -> None:
    now = time.perf_counter()
    print(f"{text}  [+{now - _CLOCK[0]:.1f} s]", file=sys.stderr, flush=True)
    _CLOCK[0] = now


def inner(args: argparse.Namespace) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    figures: dict[str, Any] = {"database": connection.vendor}
    parts = args.parts.split(",")
    if "build" in parts:
        started = time.perf_counter()
        build(args)
        figures["build_seconds"] = round(time.perf_counter() - started, 1)
        say(f"   built in {figures['build_seconds']} s")
    if "expiry" in parts:
        figures["expiry"] = bench_expiry(args)
    if "scans" in parts:
        figures["scans"] = bench_scans(args)
    if "checkout" in parts:
        figures["checkout"] = bench_checkout(args)
    print(json.dumps(figures, default=str))


def _org() -> Any:
    from meiye.org.models import Organisation

    return Organisation.objects.get(code="liyan")


def build(args: argparse.Namespace) -> None:
    """Members, accounts, journals, entries, lots and balances by bulk SQL (triggers off on PostgreSQL)."""
    from django.db import connection, transaction

    from meiye.ledger.services import account_get_or_create
    from meiye.loyalty.selectors import POINTS_ASSET, POINTS_ISSUED
    from meiye.members.models import Member

    org = _org()
    pg = connection.vendor == "postgresql"
    issued = account_get_or_create(
        organisation_id=org.pk,
        owner_type="organisation",
        owner_id=org.pk,
        asset=POINTS_ASSET,
        kind=POINTS_ISSUED,
        may_go_negative=True,
    )
    base = Member.objects.filter(organisation=org).count()
    copies = max(0, -(-(args.members - base) // base))
    now = "now()" if pg else "strftime('%Y-%m-%d %H:%M:%f', 'now')"
    # The copies "joined" two years ago and never visited: every one is dormant on the scan day.
    joined = "TIMESTAMP '2024-06-01 10:00:00+08'" if pg else "'2024-06-01 02:00:00'"
    series = (
        "generate_series(1, %s) AS g(k)"
        if pg
        else "(WITH RECURSIVE c(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM c WHERE k < %s) SELECT k FROM c) AS g"
    )
    text = "CAST({} AS TEXT)"
    with transaction.atomic(), connection.cursor() as cur:
        if pg:
            cur.execute("SET LOCAL session_replication_role = replica")  # no triggers, no FK checks
        say(f"   members: {base:,} seeded + {copies} copies each")
        cur.execute(
            "INSERT INTO members_member (member_no, name, gender, phone, phone_index, birthday, email, address, "
            "id_number, id_number_index, channel, notes, custom, custom_sensitive, status, restricted, created_at, "
            "updated_at, created_by_id, home_store_id, organisation_id, merged_into_id, referrer_id) "
            f"SELECT 'L' || {text.format('g.k')} || '-' || {text.format('m.id')}, m.name, m.gender, NULL, NULL, "
            "m.birthday, NULL, NULL, NULL, NULL, m.channel, '', m.custom, NULL, 'active', m.restricted, "
            f"{joined}, {joined}, NULL, m.home_store_id, m.organisation_id, NULL, NULL "
            f"FROM members_member m CROSS JOIN {series} WHERE m.organisation_id = %s AND m.member_no NOT LIKE 'L%%' "
            "ORDER BY m.id, g.k",
            [copies, org.pk],
        )
        cur.execute(
            "SELECT id FROM members_member WHERE organisation_id = %s ORDER BY id DESC LIMIT 1 OFFSET %s",
            [org.pk, args.lot_members - 1],
        )
        first_holder = cur.fetchone()[0]  # the lots go to the newest --lot-members members
        per = -(-args.lots // args.lot_members)
        say(f"   accounts of {args.lot_members:,} members, {args.lots:,} lots ({per} each at most)")
        cur.execute(
            "INSERT INTO ledger_account (organisation_id, owner_type, owner_id, asset, kind, may_go_negative, "
            f"created_at) SELECT organisation_id, 'member', id, 'PTS', 'points', %s, {now} FROM members_member m "
            "WHERE organisation_id = %s AND id >= %s AND NOT EXISTS (SELECT 1 FROM ledger_account a WHERE "
            "a.organisation_id = m.organisation_id AND a.owner_type = 'member' AND a.owner_id = m.id "
            "AND a.asset = 'PTS' AND a.kind = 'points')",
            [True, org.pk, first_holder],
        )
        cur.execute(
            "INSERT INTO ledger_balance (account_id, amount, may_go_negative, version, updated_at) "
            f"SELECT a.id, 0, %s, 0, {now} FROM ledger_account a WHERE a.organisation_id = %s "
            "AND a.owner_type = 'member' AND a.kind = 'points' "
            "AND NOT EXISTS (SELECT 1 FROM ledger_balance b WHERE b.account_id = a.id)",
            [True, org.pk],
        )
        # One earning journal per lot; the reference says whose and which (member id : n).
        cur.execute(
            "INSERT INTO ledger_journal (organisation_id, code, reference_type, reference_id, staff_id, store_id, "
            "idempotency_key, payload_hash, memo, created_at, reversal_of_id) "
            f"SELECT %s, 'points.earn', 'bench.lot', {text.format('m.id')} || ':' || {text.format('g.k')}, "
            f"NULL, NULL, NULL, '', 'earn.bench', {now}, NULL "
            f"FROM members_member m CROSS JOIN {series} WHERE m.organisation_id = %s AND m.id >= %s "
            "AND (m.id - %s) * %s + g.k <= %s ORDER BY m.id, g.k",
            [org.pk, per, org.pk, first_holder, first_holder, per, args.lots],
        )
        owner = (
            "CAST(split_part(j.reference_id, ':', 1) AS BIGINT)"
            if pg
            else ("CAST(substr(j.reference_id, 1, instr(j.reference_id, ':') - 1) AS INTEGER)")
        )
        amount = "(100 + j.id %% 400)"
        earned = (
            "(DATE '2025-01-01' + CAST(j.id %% 150 AS INTEGER))"
            if pg
            else ("date('2025-01-01', '+' || (j.id %% 150) || ' days')")
        )
        expires = (
            "(DATE '2026-01-01' + CAST(j.id %% 150 AS INTEGER))"
            if pg
            else ("date('2026-01-01', '+' || (j.id %% 150) || ' days')")
        )
        say("   entries")
        if pg:  # fresh statistics, or the planner loops over the new accounts for every journal
            cur.execute("ANALYZE ledger_account")
            cur.execute("ANALYZE ledger_journal")
        cur.execute(
            "INSERT INTO ledger_entry (amount, asset, account_id, journal_id) "
            f"WITH o AS MATERIALIZED (SELECT j.id, {owner} AS member_id FROM ledger_journal j "
            "WHERE j.organisation_id = %s AND j.reference_type = 'bench.lot') "
            f"SELECT {amount.replace('j.id', 'o.id')}, 'PTS', a.id, o.id FROM o JOIN ledger_account a "
            "ON a.organisation_id = %s AND a.owner_type = 'member' AND a.owner_id = o.member_id "
            "AND a.asset = 'PTS' AND a.kind = 'points'",
            [org.pk, org.pk],
        )
        cur.execute(
            f"INSERT INTO ledger_entry (amount, asset, account_id, journal_id) SELECT -{amount}, 'PTS', %s, j.id "
            "FROM ledger_journal j WHERE j.organisation_id = %s AND j.reference_type = 'bench.lot'",
            [issued.pk, org.pk],
        )
        say("   lots")
        cur.execute(
            "INSERT INTO loyalty_pointslot (source_code, earned_on, expires_on, amount, remaining, created_at, "
            "journal_id, member_id, organisation_id) "
            f"SELECT 'earn.bench', {earned}, {expires}, {amount}, {amount}, {now}, j.id, {owner}, j.organisation_id "
            "FROM ledger_journal j WHERE j.organisation_id = %s AND j.reference_type = 'bench.lot'",
            [org.pk],
        )
        say("   balances")
        cur.execute(
            "UPDATE ledger_balance SET amount = s.total FROM (SELECT e.account_id, SUM(e.amount) AS total "
            "FROM ledger_entry e GROUP BY e.account_id) AS s WHERE ledger_balance.account_id = s.account_id "
            "AND ledger_balance.amount <> s.total"
        )
    if pg:
        with connection.cursor() as cur:
            cur.execute("ANALYZE")
    else:
        with connection.cursor() as cur:
            cur.execute("ANALYZE")


def bench_expiry(args: argparse.Namespace) -> dict[str, Any]:
    from meiye.loyalty.models import PointsLot
    from meiye.loyalty.selectors import points_expiry_members
    from meiye.loyalty.services import EXPIRY_BATCH, points_expire_due, verify_points_lots
    from meiye.org.context import Actor

    org = _org()
    lots = PointsLot.objects.filter(organisation=org, remaining__gt=0, expires_on__lt=EXPIRY_DAY).count()
    started = time.perf_counter()
    members = points_expiry_members(organisation_id=org.pk, today=EXPIRY_DAY)
    selected = time.perf_counter() - started
    profile = None
    timings: dict[str, list[float]] = {}
    if os.environ.get("BENCH_PROFILE") == "sql":
        from django.db import connection

        def timed(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                timings.setdefault(" ".join(sql.split())[:70], []).append(time.perf_counter() - started)

        connection.execute_wrappers.append(timed)
    elif os.environ.get("BENCH_PROFILE"):
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
    expired = points_expire_due(
        actor=Actor.system(org), today=EXPIRY_DAY, member_ids=members, batch_size=args.batch or EXPIRY_BATCH
    )
    if timings:
        from django.db import connection

        connection.execute_wrappers.pop()
        for sql, times in sorted(timings.items(), key=lambda kv: -sum(kv[1]))[:15]:
            say(f"   {sum(times):7.2f} s {len(times):5} × {sql}")
    if profile is not None:
        import pstats

        profile.disable()
        pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative").print_stats(30)
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    again = points_expire_due(actor=Actor.system(org), today=EXPIRY_DAY)
    rerun = time.perf_counter() - started
    started = time.perf_counter()
    problems = verify_points_lots(organisation_id=org.pk)
    verify = time.perf_counter() - started
    out = {
        "lots": lots,
        "members": len(members),
        "batch": args.batch or EXPIRY_BATCH,
        "points": expired,
        "select_seconds": round(selected, 2),
        "seconds": round(seconds, 2),
        "lots_per_second": round(lots / seconds) if seconds else None,
        "rerun_points": again,
        "rerun_seconds": round(rerun, 2),
        "verify_points_lots_seconds": round(verify, 2),
        "verify_problems": len(problems),
    }
    say(f"   expiry: {lots:,} lots of {len(members):,} members in {out['seconds']} s; rerun {again} points")
    return out


def bench_scans(args: argparse.Namespace) -> dict[str, Any]:
    from django.db import DatabaseError

    from meiye.loyalty.rules import birthday_gifts_give, birthdays_due, dormant_due, dormant_wake, rules_settings_save
    from meiye.members.models import Member
    from meiye.org.context import Actor
    from meiye.org.models import Staff

    org = _org()
    admin = Staff.objects.get(username="admin")
    store = admin.stores.order_by("id").first()
    rules_settings_save(
        actor=Actor(staff=admin, organisation=org, store=store),
        birthday_gift_points=100,
        dormant_days=90,
        dormant_points=300,
    )
    system = Actor.system(org)
    members = Member.objects.filter(organisation=org).count()
    started = time.perf_counter()
    born = birthdays_due(organisation_id=org.pk, on=SCAN_DAY)
    birthday_scan = time.perf_counter() - started
    started = time.perf_counter()
    given = birthday_gifts_give(actor=system, on=SCAN_DAY, member_ids=born[: args.award])
    birthday_award = time.perf_counter() - started
    say(f"   birthday scan over {members:,}: {len(born):,} due in {birthday_scan:.2f} s; {given} gifts")
    out: dict[str, Any] = {
        "members": members,
        "birthday_due": len(born),
        "birthday_scan_seconds": round(birthday_scan, 2),
        "birthday_gifts": given,
        "birthday_award_seconds": round(birthday_award, 2),
        "birthday_award_ms_each": round(1000 * birthday_award / given, 1) if given else None,
    }
    if args.no_dormant:
        return out
    started = time.perf_counter()
    try:
        dormant = dormant_due(actor=system, on=SCAN_DAY)
    except DatabaseError as exc:  # a figure, not a failure: report what broke
        say(f"   dormant scan over {members:,} failed after {time.perf_counter() - started:.1f} s: {exc}")
        return {
            **out,
            "dormant_error": str(exc),
            "dormant_failed_after_seconds": round(time.perf_counter() - started, 1),
        }
    dormant_scan = time.perf_counter() - started
    started = time.perf_counter()
    woken = dormant_wake(actor=system, on=SCAN_DAY, due=dormant[: args.award])
    dormant_award = time.perf_counter() - started
    say(f"   dormant scan over {members:,}: {len(dormant):,} due in {dormant_scan:.2f} s; {woken} woken")
    return {
        **out,
        "dormant_due": len(dormant),
        "dormant_scan_seconds": round(dormant_scan, 2),
        "dormant_woken": woken,
        "dormant_award_seconds": round(dormant_award, 2),
        "dormant_award_ms_each": round(1000 * dormant_award / woken, 1) if woken else None,
    }


def _drop_tiers(org: Any) -> None:
    """Remove the organisation's tier ladder, the members' tier states and their tier history (a throwaway
    copy only: the history is append-only, so its guard is lifted for the delete and put back)."""
    from django.db import connection

    from meiye.core.immutable import append_only, drop_append_only
    from meiye.loyalty.models import LoyaltySettings, MemberTier, Tier, TierChange

    with connection.schema_editor() as editor:
        drop_append_only("loyalty_tierchange")(None, editor)
        TierChange.objects.filter(organisation=org).delete()
        append_only("loyalty_tierchange")(None, editor)
    MemberTier.objects.filter(organisation=org).delete()
    Tier.objects.filter(organisation=org).delete()
    LoyaltySettings.objects.filter(organisation=org).update(tiers_version=None)  # no tiers: no ladder to copy


def bench_checkout(args: argparse.Namespace) -> dict[str, Any]:
    """API checkouts in process, alternating rounds without and with tiers and rules configured."""
    import statistics
    import uuid

    from django.test import Client

    from benchmarks.prepare import ITEMS
    from benchmarks.prepare_body import checkout_body
    from meiye.catalog.models import Item
    from meiye.core.money import Money
    from meiye.loyalty.models import RulesSettings, Tier
    from meiye.loyalty.rules import _forget_config, rules_settings_save
    from meiye.loyalty.tiers import tier_save
    from meiye.members.models import Member
    from meiye.org.context import Actor
    from meiye.org.models import Staff
    from meiye.org.services import api_token_create
    from meiye.wallet.models import CardProduct
    from meiye.wallet.services import wallet_recharge

    org = _org()
    admin, front = Staff.objects.get(username="admin"), Staff.objects.get(username="front1")
    store = front.stores.order_by("id").first()
    assert store is not None, "the demo receptionist front1 works in a store"
    hq = Actor(staff=admin, organisation=org, store=store)
    desk = Actor(staff=front, organisation=org, store=store)
    items = [Item.objects.get(code=code).pk for code, *_ in ITEMS]
    members = list(
        Member.objects.filter(home_store=store, status="active", member_no__startswith="M")
        .order_by("id")
        .values_list("id", flat=True)[:40]
    )
    run = uuid.uuid4().hex[:8]
    uncapped = CardProduct.objects.filter(organisation=org, code="bench-uncapped").first()
    for member_id in members:
        wallet_recharge(
            actor=desk,
            member=Member.objects.get(pk=member_id),
            amount=Money.parse("100000.00"),
            tender="wechat",
            external_ref="bench",
            product=uncapped,  # the checkout benchmark's card product: the demo's caps a named card (S-16)
            idempotency_key=f"bench-loyalty-{run}-{member_id}",
        )
    _token, secret = api_token_create(actor=hq, staff=front, name="benchmark-loyalty")
    client = Client(SERVER_NAME="localhost")
    headers = {"Authorization": f"Bearer {secret}", "X-Store-Id": str(store.pk)}
    counter = iter(range(10**9))
    payable = [sum(Item.objects.get(pk=pk).price_fen for pk in items)]  # list price: no tier takes anything off

    def checkouts(n: int) -> list[float]:
        times = []
        for _ in range(n):
            member_id = members[next(counter) % len(members)]
            started = time.perf_counter()
            response = client.post(
                "/api/v1/bills/checkout/",
                data=json.dumps(checkout_body(member_id, items, payable[0])),
                content_type="application/json",
                headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
            )
            times.append(time.perf_counter() - started)
            if response.status_code >= 300:
                raise SystemExit(f"checkout failed: {response.status_code} {response.content[:400]!r}")
        return times

    def on() -> None:
        for code, name, threshold, bp, mult in (
            ("regular", "普通", "0", 0, 10_000),
            ("silver", "银卡", "1000000.00", 1000, 11_000),
            ("gold", "金卡", "2000000.00", 1500, 12_000),
            ("diamond", "钻石", "3000000.00", 2000, 15_000),
        ):
            tier_save(
                actor=hq,
                code=code,
                name_zh=name,
                threshold=Money.parse(threshold),
                discounts_bp={"service": bp} if bp else {},
                points_multiplier_bp=mult,
            )
        rules_settings_save(
            actor=hq,
            birthday_multiplier_bp=20_000,
            member_day=SCAN_DAY.day,
            member_day_multiplier_bp=15_000,
            daily_earning_limit=1_000_000,
        )

    # The scans above configured rules: start from none (a tier, once held, cannot be removed, so the runs
    # without loyalty come first). The checkout benchmark's database gives its members a Silver price: this
    # throwaway copy drops that ladder, its history included (append-only, so with the guard lifted for it).
    RulesSettings.objects.filter(organisation=org).delete()
    _forget_config(org.pk)
    _drop_tiers(org)
    assert not Tier.objects.filter(organisation=org).exists()
    checkouts(5)  # warm-up
    without = checkouts(args.checkouts)
    on()
    checkouts(5)
    with_loyalty = checkouts(args.checkouts)

    def ms(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    out = {
        "checkouts_each": len(without),
        "without_mean_ms": round(1000 * statistics.mean(without), 1),
        "without_p50_ms": ms(without, 0.5),
        "without_p90_ms": ms(without, 0.9),
        "with_mean_ms": round(1000 * statistics.mean(with_loyalty), 1),
        "with_p50_ms": ms(with_loyalty, 0.5),
        "with_p90_ms": ms(with_loyalty, 0.9),
    }
    out["ratio_mean"] = round(out["with_mean_ms"] / out["without_mean_ms"], 2)
    out["ratio_p50"] = round(out["with_p50_ms"] / out["without_p50_ms"], 2)
    say(
        f"   checkout: without loyalty p50 {out['without_p50_ms']} ms, with {out['with_p50_ms']} ms "
        f"(×{out['ratio_p50']} p50, ×{out['ratio_mean']} mean)"
    )
    return out


if __name__ == "__main__":
    main()
