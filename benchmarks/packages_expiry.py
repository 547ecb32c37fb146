"""Package expiry benchmark: time ``packages_expire_due`` over 1,000,000 sessions on SQLite or PostgreSQL.
Prints figures; never asserts.

In a THROWAWAY database (SQLite ``--db``, default var/bench_packages.sqlite3; or ``--backend postgresql``,
a database created for the run and dropped after it), migrated afresh:
  - one organisation, store, member and a 10-session package product, through the services;
  - ``--items`` member package items of 10 sessions each (default 100,000 = 1,000,000 sessions), with their
    ledger accounts, balances and ``packages.issue`` journals, built in bulk (``journals_post`` in batches);
  - time ``packages_expire_due`` expiring all of them, then a second run (idempotent: nothing more), then
    check that every item's ``remaining`` matches its ledger balance.

Examples:  python benchmarks/packages_expiry.py --quick      (1,000 items = 10,000 sessions)
           python benchmarks/packages_expiry.py              (100,000 items = 1,000,000 sessions)
           python benchmarks/packages_expiry.py --backend postgresql
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SESSIONS_PER_ITEM = 10
PG_DB = "meiye_bench_packages"
PURCHASE = date(2025, 1, 1)
EXPIRY_DAY = date(2026, 6, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000, help="member package items of 10 sessions")
    parser.add_argument("--batch", type=int, default=None, help="expiry batch size (default: the service's)")
    parser.add_argument("--db", default=str(ROOT / "var" / "bench_packages.sqlite3"))
    parser.add_argument(
        "--backend",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help=f"postgresql: a throwaway database {PG_DB} on 127.0.0.1, dropped afterwards",
    )
    parser.add_argument("--quick", action="store_true", help="1,000 items (10,000 sessions)")
    args = parser.parse_args()
    if args.quick:
        args.items = 1_000
    os.environ.pop("DATABASE_URL", None)
    if args.backend == "postgresql":
        pg = ["-h", "127.0.0.1", "-U", "postgres"]
        subprocess.run(["dropdb", *pg, "--if-exists", "--force", PG_DB], check=True)
        subprocess.run(["createdb", *pg, PG_DB], check=True)
        os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{PG_DB}"
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{args.db}{suffix}").unlink(missing_ok=True)
        os.environ["MEIYE_SQLITE_PATH"] = args.db
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    import django

    django.setup()
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    print(f"migrate: {time.perf_counter() - started:.1f}s")
    try:
        build_and_run(args)
    finally:
        if args.backend == "postgresql":
            from django.db import connections

            connections.close_all()
            subprocess.run(
                ["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "--force", PG_DB], check=False
            )


def build_and_run(args: argparse.Namespace) -> None:
    from django.db import transaction

    from meiye.catalog.services import category_save, item_save
    from meiye.core.money import Money
    from meiye.ledger.models import Account, Balance
    from meiye.ledger.services import Leg, LockedAccounts, Posting, is_shared, journals_post
    from meiye.members.services import MemberInput, member_create
    from meiye.org.context import Actor
    from meiye.org.models import Organisation, Store
    from meiye.packages.models import MemberPackage, MemberPackageItem
    from meiye.packages.services import (
        ProductItemInput,
        package_product_save,
        packages_expire_due,
        packages_verify,
    )

    organisation = Organisation.objects.create(code="bench", name="Bench")
    store = Store.objects.create(organisation=organisation, code="s1", name="Bench store")
    actor = Actor.system(organisation, store)
    category = category_save(
        actor=actor,
        code="care",
        name="护理",
        kind="service",
        earning_category="basic_care",
        commission_category="service",
    )
    facial = item_save(
        actor=actor, code="facial", name="面部护理", category=category, price=Money(29800), duration_minutes=60
    )
    product = package_product_save(
        actor=actor,
        code="facial-10",
        name="面部护理10次卡",
        price=Money(198000),
        kind="count",
        items=[ProductItemInput(service_id=facial.pk, count=SESSIONS_PER_ITEM, validity_value=12)],
    )
    member = member_create(actor=actor, data=MemberInput(name="Bench", phone="13900000000", home_store_id=store.pk))

    started = time.perf_counter()
    chunk = 5_000
    for start in range(0, args.items, chunk):
        n = min(chunk, args.items - start)
        with transaction.atomic():
            packages = MemberPackage.objects.bulk_create(
                [
                    MemberPackage(
                        organisation=organisation,
                        store=store,
                        member=member,
                        product=product,
                        name="面部护理10次卡",
                        price_paid_fen=198000,
                        purchased_on=PURCHASE,
                        refund_formula="unit_price",
                    )
                    for _ in range(n)
                ]
            )
            items = MemberPackageItem.objects.bulk_create(
                [
                    MemberPackageItem(
                        member_package=p,
                        service=facial,
                        name="面部护理",
                        count=SESSIONS_PER_ITEM,
                        remaining=SESSIONS_PER_ITEM,
                        share_fen=198000,
                        unit_price_fen=19800,
                        list_price_fen=29800,
                        validity_value=12,
                        validity_unit="months",
                        valid_from=PURCHASE,
                        valid_until=date(2025, 12, 31),
                    )
                    for p in packages
                ]
            )
            accounts = Account.objects.bulk_create(
                [
                    Account(
                        organisation_id=organisation.pk,
                        owner_type=owner_type,
                        owner_id=owner_id,
                        asset=f"SES:{item.pk}",
                        kind=kind,
                        may_go_negative=negative,
                        shared=is_shared(owner_type, negative),  # as account_get_or_create would (ADR 0009)
                    )
                    for item in items
                    for owner_type, owner_id, kind, negative in (
                        ("member", member.pk, "package_sessions", False),
                        ("store", store.pk, "package_sessions_source", True),
                    )
                ]
            )
            balances = Balance.objects.bulk_create(
                [Balance(account=a, amount=0, may_go_negative=a.may_go_negative) for a in accounts]
            )
            locked = LockedAccounts(organisation_id=organisation.pk)
            for account, balance in zip(accounts, balances, strict=True):
                balance.account = account
                locked.accounts[(account.owner_type, account.owner_id, account.asset, account.kind)] = account
                locked.balances[account.pk] = balance
            postings = []
            for index, item in enumerate(items):
                member_account, source_account = accounts[2 * index], accounts[2 * index + 1]
                item.account_id, item.source_account_id = member_account.pk, source_account.pk
                postings.append(
                    Posting(
                        code="packages.issue",
                        entries=[Leg(source_account, -SESSIONS_PER_ITEM), Leg(member_account, SESSIONS_PER_ITEM)],
                        reference_type="packages.MemberPackage",
                        reference_id=str(item.member_package_id),
                        idempotency_key=f"packages.issue:{item.member_package_id}",
                    )
                )
            journals_post(organisation_id=organisation.pk, postings=postings, locked=locked, keys_claimed=True)
            MemberPackageItem.objects.bulk_update(items, ["account_id", "source_account_id"], batch_size=1000)
    sessions = args.items * SESSIONS_PER_ITEM
    print(f"build: {args.items:,} items, {sessions:,} sessions in {time.perf_counter() - started:.1f}s")

    kwargs = {"batch_size": args.batch} if args.batch else {}
    started = time.perf_counter()
    expired = packages_expire_due(on=EXPIRY_DAY, **kwargs)
    took = time.perf_counter() - started
    print(f"expire: {expired:,} sessions of {args.items:,} items in {took:.2f}s ({expired / max(took, 1e-9):,.0f}/s)")
    started = time.perf_counter()
    again = packages_expire_due(on=EXPIRY_DAY, **kwargs)
    print(f"second run: {again} sessions in {time.perf_counter() - started:.2f}s")
    started = time.perf_counter()
    drift = packages_verify()
    print(f"verify: {len(drift)} items out of step in {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
