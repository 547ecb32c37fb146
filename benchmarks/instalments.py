"""Recharge-bonus instalments benchmark (issue 5, S-13's job at scale). Prints figures; never asserts.

For each database (SQLite, PostgreSQL), in a THROWAWAY database of its own (created, migrated, dropped):
  - build --members members, each with one recharge under 充3000送600 in 6 monthly parts: the recharge's
    ``wallet.recharge`` journal (store bonus_issued −600.00, member bonus +100.00, member pending +500.00),
    her balances, and 5 pending ``BonusInstalment`` rows — --instalments in all — by bulk inserts;
  - release: time ``wallet_bonus_release_due`` releasing every instalment (one ``wallet.bonus_release``
    journal each, in batches), then a second run (idempotent: releases nothing), then check that every
    pending balance is zero and every bonus balance is 600.00.

Examples:  .venv/bin/python benchmarks/instalments.py --quick               (10,000 instalments, SQLite)
           .venv/bin/python benchmarks/instalments.py                       (100,000, SQLite and PostgreSQL)
           .venv/bin/python benchmarks/instalments.py --backends postgresql --instalments 200000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable
PG = "postgres://postgres@127.0.0.1:5432"
PG_DB = "meiye_bench_instalments"
PARTS = 5  # later parts per recharge (6 monthly parts, the first paid with the recharge)
RECHARGE_DAY = date(2026, 1, 15)
RELEASE_DAY = date(2026, 6, 15)  # every part is due by then


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--instalments", type=int, default=100_000, help="pending instalments to release")
    parser.add_argument("--batch", type=int, default=None, help="instalments per transaction (default: the service's)")
    parser.add_argument("--notify", action="store_true", help="also queue the members' messages")
    parser.add_argument("--quick", action="store_true", help="10,000 instalments on SQLite only")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.instalments, args.backends = 10_000, "sqlite"
    if args.inner:
        inner(args)
        return
    for backend in args.backends.split(","):
        print(f"\n## instalments, {backend}: {args.instalments:,} pending instalments", flush=True)
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "benchmarks.settings", "PYTHONPATH": str(ROOT)}
        env.pop("DATABASE_URL", None)
        if backend == "postgresql":
            pg = ["-h", "127.0.0.1", "-U", "postgres"]
            subprocess.run(["dropdb", *pg, "--if-exists", PG_DB], check=True)
            subprocess.run(["createdb", *pg, PG_DB], check=True)
            env["DATABASE_URL"] = f"{PG}/{PG_DB}"
        else:
            path = ROOT / "var" / "bench" / "instalments.sqlite3"
            path.parent.mkdir(parents=True, exist_ok=True)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            env["MEIYE_SQLITE_PATH"] = str(path)
        command = [PY, "benchmarks/instalments.py", "--inner", f"--instalments={args.instalments}"]
        if args.batch:
            command.append(f"--batch={args.batch}")
        if args.notify:
            command.append("--notify")
        out = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, check=False)
        if out.returncode != 0:
            raise SystemExit(f"instalments benchmark failed on {backend} (exit {out.returncode})")
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        for key, value in figures.items():
            print(f"  {key}: {value}")
        if backend == "postgresql":
            subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", PG_DB], check=False)


_CLOCK = [time.perf_counter()]


def say(text: str) -> None:
    now = time.perf_counter()
    print(f"{text}  [+{now - _CLOCK[0]:.1f} s]", file=sys.stderr, flush=True)
    _CLOCK[0] = now


def inner(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    say("   migrate")
    call_command("migrate", verbosity=0)
    figures: dict[str, Any] = {"database": connection.vendor, "instalments": args.instalments}
    started = time.perf_counter()
    members = build(args)
    figures["members"] = members
    figures["build_seconds"] = round(time.perf_counter() - started, 1)
    say(f"   built in {figures['build_seconds']} s")
    figures.update(release(args))
    print(json.dumps(figures))


def build(args: argparse.Namespace) -> int:
    """Organisation, store, members, recharges, journals, entries, balances and instalments in bulk."""
    from django.db import connection, transaction

    from meiye.ledger.models import Account, Balance, Entry, Journal
    from meiye.ledger.services import is_shared
    from meiye.members.models import Member
    from meiye.org.models import Organisation, Store
    from meiye.wallet.models import BonusInstalment, Recharge
    from meiye.wallet.selectors import add_months

    members = -(-args.instalments // PARTS)

    with transaction.atomic():
        org = Organisation.objects.create(name="基准测试", code="bench")
        store = Store.objects.create(organisation=org, code="s1", name="基准门店", time_zone="Asia/Shanghai")
        say(f"   {members:,} members")
        Member.objects.bulk_create(
            [
                Member(organisation=org, home_store=store, member_no=f"B{n:07d}", name=f"会员{n}")
                for n in range(1, members + 1)
            ],
            batch_size=5_000,
        )
        member_ids = list(Member.objects.filter(organisation=org).order_by("pk").values_list("pk", flat=True))
        say("   accounts and balances")
        issued, tender = (
            Account.objects.create(
                organisation_id=org.pk,
                owner_type="store",
                owner_id=store.pk,
                asset="CNY",
                kind=kind,
                may_go_negative=True,
                shared=is_shared("store", True),  # as account_get_or_create would create it (ADR 0009)
            )
            for kind in ("bonus_issued", "tender_wechat")
        )
        Account.objects.bulk_create(
            [
                Account(organisation_id=org.pk, owner_type="member", owner_id=m, asset="CNY", kind=kind)
                for m in member_ids
                for kind in ("wallet_principal", "wallet_bonus", "wallet_bonus_pending")
            ],
            batch_size=5_000,
        )
        accounts = {
            (owner_id, kind): pk
            for pk, owner_id, kind in Account.objects.filter(organisation_id=org.pk, owner_type="member").values_list(
                "pk", "owner_id", "kind"
            )
        }
        say("   recharges and their journals")
        Recharge.objects.bulk_create(
            [
                Recharge(
                    organisation=org,
                    store=store,
                    member_id=m,
                    amount_fen=300_000,
                    bonus_fen=10_000,
                    rule_bonus_fen=60_000,
                    pending_bonus_fen=50_000,
                    tender="wechat",
                    idempotency_key=f"bench:{m}",
                    local_date=RECHARGE_DAY,
                )
                for m in member_ids
            ],
            batch_size=5_000,
        )
        recharges = dict(Recharge.objects.filter(organisation=org).values_list("member_id", "pk"))
        Journal.objects.bulk_create(
            [
                Journal(
                    organisation_id=org.pk,
                    code="wallet.recharge",
                    reference_type="wallet.Recharge",
                    reference_id=str(recharges[m]),
                    store_id=store.pk,
                    idempotency_key=f"bench:{m}:cny",
                    payload_hash="",
                )
                for m in member_ids
            ],
            batch_size=5_000,
        )
        journals = dict(
            Journal.objects.filter(organisation_id=org.pk, code="wallet.recharge").values_list("reference_id", "pk")
        )
        Entry.objects.bulk_create(
            [
                Entry(journal_id=journals[str(recharges[m])], account_id=account, amount=amount, asset="CNY")
                for m in member_ids
                for account, amount in (
                    (tender.pk, -300_000),
                    (accounts[(m, "wallet_principal")], 300_000),
                    (issued.pk, -60_000),
                    (accounts[(m, "wallet_bonus")], 10_000),
                    (accounts[(m, "wallet_bonus_pending")], 50_000),
                )
            ],
            batch_size=5_000,
        )
        Balance.objects.bulk_create(
            [
                Balance(account_id=accounts[(m, kind)], amount=amount, may_go_negative=False)
                for m in member_ids
                for kind, amount in (
                    ("wallet_principal", 300_000),
                    ("wallet_bonus", 10_000),
                    ("wallet_bonus_pending", 50_000),
                )
            ]
            + [
                Balance(account_id=issued.pk, amount=-60_000 * members, may_go_negative=True),
                Balance(account_id=tender.pk, amount=-300_000 * members, may_go_negative=True),
            ],
            batch_size=5_000,
        )
        say(f"   {members * PARTS:,} instalments")
        BonusInstalment.objects.bulk_create(
            [
                BonusInstalment(
                    organisation=org,
                    recharge_id=recharges[m],
                    member_id=m,
                    store=store,
                    seq=k + 1,
                    due_on=add_months(RECHARGE_DAY, k),
                    amount_fen=10_000,
                )
                for m in member_ids
                for k in range(1, PARTS + 1)
            ],
            batch_size=5_000,
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return members


def release(args: argparse.Namespace) -> dict[str, Any]:
    from django.db import connection
    from django.db.models import Sum

    from meiye.ledger.models import Balance
    from meiye.wallet.models import BonusInstalment, InstalmentStatus
    from meiye.wallet.services import RELEASE_BATCH, wallet_bonus_release_due

    batch = args.batch or RELEASE_BATCH
    queries = [0]

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        queries[0] += 1
        return execute(sql, params, many, context)

    say(f"   release, batches of {batch:,}")
    started = time.perf_counter()
    with connection.execute_wrapper(count):
        released = wallet_bonus_release_due(on=RELEASE_DAY, batch_size=batch, notify=args.notify)
    seconds = time.perf_counter() - started
    say(f"   released {released:,} in {seconds:.1f} s")
    started = time.perf_counter()
    again = wallet_bonus_release_due(on=RELEASE_DAY, batch_size=batch, notify=args.notify)
    second = time.perf_counter() - started
    pending_left = Balance.objects.filter(account__kind="wallet_bonus_pending").aggregate(s=Sum("amount"))["s"]
    wrong_bonus = Balance.objects.filter(account__kind="wallet_bonus").exclude(amount=60_000).count()
    return {
        "released": released,
        "release_seconds": round(seconds, 2),
        "per_second": round(released / seconds) if seconds else None,
        "queries": queries[0],
        "second_run_released": again,
        "second_run_seconds": round(second, 2),
        "still_pending": BonusInstalment.objects.filter(status=InstalmentStatus.PENDING).count(),
        "pending_balance_left_fen": pending_left,
        "members_with_wrong_bonus": wrong_bonus,
    }


if __name__ == "__main__":
    main()
