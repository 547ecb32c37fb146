"""Prepare one benchmark database: migrate, seed N members, set up a realistic checkout and report it.

Run by benchmarks/run.py in a subprocess with DATABASE_URL or MEIYE_SQLITE_PATH pointing at the
benchmark database. Idempotent: running it again on the same database adds nothing.
Prints one JSON object: the API token, member ids with stored value, item ids, phones to look up, and
the number of queries and row writes of one checkout (measured inside a rolled-back transaction).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from benchmarks.prepare_body import checkout_body  # noqa: E402
from meiye.catalog.models import Item  # noqa: E402
from meiye.catalog.services import category_save, item_save  # noqa: E402
from meiye.core.money import Money  # noqa: E402
from meiye.ledger.services import balances_fold  # noqa: E402
from meiye.loyalty.models import MemberTier  # noqa: E402
from meiye.loyalty.services import earning_rate_set  # noqa: E402
from meiye.loyalty.tiers import tier_grant, tier_save  # noqa: E402
from meiye.members import demo_data  # noqa: E402
from meiye.members.models import Member  # noqa: E402
from meiye.org.context import Actor  # noqa: E402
from meiye.org.models import Organisation, Staff  # noqa: E402
from meiye.org.services import api_token_create  # noqa: E402
from meiye.sales.models import Bill, BillStatus  # noqa: E402
from meiye.sales.services import bill_add_line, bill_open  # noqa: E402
from meiye.wallet.models import CardProduct  # noqa: E402
from meiye.wallet.services import CardProductInput, card_product_save, wallet_recharge  # noqa: E402

FUNDED_MEMBERS = 400
# The member's price: a tier ladder whose Silver takes 10% off services, and every funded member holds Silver
# (granted; her growth also earns it after a bill). Gold is out of reach, so the price never changes between runs,
# yet each bill still checks for an upgrade as a real chain's would.
TIERS = [
    ("normal", "普通", "Standard", "0.00", {}),
    ("silver", "银卡", "Silver", "1000.00", {"service": 1000}),
    ("gold", "金卡", "Gold", "1000000000.00", {"service": 2000}),
]
ITEMS = [
    ("bench-facial", "基础面部护理", "basic_care", "service", "298.00", 60),
    ("bench-lift", "抗衰提拉", "anti_ageing", "service", "680.00", 90),
    ("bench-serum", "修护精华", "retail", "product", "260.00", None),
]


class WriteCounter:
    """A ``connection.execute_wrapper`` counting write statements and, on PostgreSQL, the rows they change
    (on SQLite, ``rows_since`` reads the connection's total changes: sqlite3 steps a RETURNING statement's
    rows only as they are fetched)."""

    def __init__(self) -> None:
        self.statements = 0
        self.rows = 0
        self.sqlite_changes = connection.connection.total_changes if connection.vendor == "sqlite" else 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        result = execute(sql, params, many, context)
        if sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            self.statements += 1
            if connection.vendor != "sqlite":
                self.rows += max(context["cursor"].rowcount, 0)
        return result

    def finish(self) -> None:
        if connection.vendor == "sqlite":
            self.rows = connection.connection.total_changes - self.sqlite_changes


def _api_checkout(client: Client, headers: dict[str, Any], body: dict[str, Any]) -> None:
    response = client.post(
        "/api/v1/bills/checkout/",
        json.dumps(body),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
        **headers,
    )
    if response.status_code != 201:
        raise SystemExit(f"a checkout of the preparer failed: {response.status_code} {response.content[:500]!r}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, required=True)
    parser.add_argument("--lookups", type=int, default=2000)
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    if Member.objects.count() < args.members:
        call_command("seed_demo", members=args.members, quiet=True)
    org = Organisation.objects.get(code="liyan")
    admin = Staff.objects.get(username="admin")
    front = Staff.objects.get(username="front1")
    store = front.stores.order_by("id").first()
    assert store is not None, "the demo receptionist front1 works in a store"
    hq = Actor(staff=admin, organisation=org, store=store)
    desk = Actor(staff=front, organisation=org, store=store)

    categories = {}
    for code, name, earning, kind in [
        ("bench-basic", "基础护理", "basic_care", "service"),
        ("bench-anti", "抗衰", "anti_ageing", "service"),
        ("bench-retail", "零售产品", "retail", "product"),
    ]:
        categories[earning] = category_save(
            actor=hq,
            code=code,
            name=name,
            kind=kind,
            earning_category=earning,
            commission_category="service" if kind == "service" else "product",
        )
    for category, rate in (("basic_care", 1), ("anti_ageing", 3), ("retail", 2)):
        earning_rate_set(actor=hq, earning_category=category, points_per_yuan=rate)
    item_ids = []
    for code, name, earning, _kind, price, minutes in ITEMS:
        item = item_save(
            actor=hq,
            code=code,
            name=name,
            category=categories[earning],
            price=Money.parse(price),
            duration_minutes=minutes,
        )
        item_ids.append(item.pk)

    members = list(
        Member.objects.filter(home_store=store, status="active")
        .order_by("id")
        .values_list("id", flat=True)[:FUNDED_MEMBERS]
    )
    # Top every funded card up on each run (a fresh key per run), the hot card (the last) generously, so
    # no request of this run is refused for an empty wallet.
    # The demo's default card product caps a named card at 5,000.00 (S-16); the benchmark's cards use a
    # product of their own with no cap, so the hot card can hold enough for a whole run.
    product = CardProduct.objects.filter(organisation=org, code="bench-uncapped").first() or card_product_save(
        actor=hq, data=CardProductInput(code="bench-uncapped", name="压测储值卡 Benchmark card", cooling_off_days=0)
    )
    run = uuid.uuid4().hex[:8]
    ladder = {
        code: tier_save(
            actor=hq, code=code, name_zh=zh, name_en=en, threshold=Money.parse(threshold), discounts_bp=discounts
        )
        for code, zh, en, threshold, discounts in TIERS
    }
    silver = ladder["silver"]
    holding = set(MemberTier.objects.filter(member_id__in=members, tier=silver).values_list("member_id", flat=True))
    until = date.today() + timedelta(days=3650)
    for member_id in members:
        if member_id not in holding:
            tier_grant(
                actor=hq, member=Member(pk=member_id), tier=silver, until=until, reason="benchmark: member price"
            )
    # What the realistic bill costs a Silver member: priced by an open bill that is rolled back.
    with transaction.atomic():
        bill = bill_open(actor=desk, member=Member.objects.get(pk=members[0]))
        for item_id in item_ids:
            bill_add_line(actor=desk, bill=bill, item=Item.objects.get(pk=item_id))
        bill.refresh_from_db()
        payable_fen = bill.payable_total_fen
        transaction.set_rollback(True)
    for member_id in members:
        amount = "1000000.00" if member_id == members[-1] else "100000.00"
        wallet_recharge(
            actor=desk,
            member=Member.objects.get(pk=member_id),
            amount=Money.parse(amount),
            tender="wechat",
            external_ref="bench",
            product=product,
            idempotency_key=f"bench-recharge-{run}-{member_id}",
        )
    _token, secret = api_token_create(actor=hq, staff=front, name="benchmark")
    # Lookups sample members of every store, so they use the HQ admin's token (she sees all stores).
    _token, hq_secret = api_token_create(actor=hq, staff=admin, name="benchmark-lookup")

    # One checkout through the API, measured and rolled back: its statements, and the rows its writes touch
    # (a multi-row INSERT is one statement of several row writes). The member's first checkout also creates
    # her points and growth accounts, so a warm-up checkout runs first and only the second, the steady state,
    # is counted.
    body = checkout_body(members[0], item_ids, payable_fen)
    client = Client(HTTP_HOST="127.0.0.1")
    headers: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {secret}", "HTTP_X_STORE_ID": str(store.pk)}
    # A shop's members come back: the benchmark measures returning members, not first visits. A member's first
    # checkout also opens her points and growth accounts, and its growth earns her Silver (a tier change, its
    # history and an audit row); without this, every funded member paid that in the first run after a seed,
    # which measured a quarter lower than the next run. So each funded member without a bill gets one here.
    with_bills = set(
        Bill.objects.filter(member_id__in=members, status=BillStatus.COMPLETED).values_list("member_id", flat=True)
    )
    for member_id in members:
        if member_id not in with_bills:
            _api_checkout(client, headers, checkout_body(member_id, item_ids, payable_fen))
    with transaction.atomic():
        _api_checkout(client, headers, body)
        writes = WriteCounter()
        # Each statement waited for (no pipeline, meiye.core.db.pipeline), so that its row count is there to add.
        with (
            override_settings(MEIYE_PG_PIPELINE="0"),
            CaptureQueriesContext(connection) as ctx,
            connection.execute_wrapper(writes),
        ):
            _api_checkout(client, headers, body)
        writes.finish()
        transaction.set_rollback(True)
    sql = [q["sql"].lstrip().upper() for q in ctx.captured_queries]
    # The shared accounts' balance deltas of earlier runs, folded as the every-minute job would have (ADR 0009).
    balances_fold()
    if connection.vendor == "postgresql":
        # Fresh statistics, as autovacuum would have in a running shop: the seed has just written every table,
        # and a planner that still believes the account table empty scans it for the balance lock.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

    rng = random.Random(7)
    indexes = rng.sample(range(args.members), min(args.lookups, args.members))
    print(
        json.dumps(
            {
                "token": secret,
                "hq_token": hq_secret,
                "store_id": store.pk,
                "members": members,
                "items": item_ids,
                "payable_fen": payable_fen,
                "checkout_queries": len(sql),
                "checkout_writes": writes.statements,
                "checkout_rows": writes.rows,
                "phones": [demo_data.phone_for(i) for i in indexes],
                "example_body": body,
            }
        )
    )


if __name__ == "__main__":
    main()
