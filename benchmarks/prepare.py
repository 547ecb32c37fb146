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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from benchmarks.prepare_body import checkout_body  # noqa: E402
from meiye.catalog.services import category_save, item_save  # noqa: E402
from meiye.core.money import Money  # noqa: E402
from meiye.loyalty.services import earning_rate_set  # noqa: E402
from meiye.members import demo_data  # noqa: E402
from meiye.members.models import Member  # noqa: E402
from meiye.org.context import Actor  # noqa: E402
from meiye.org.models import Organisation, Staff  # noqa: E402
from meiye.org.services import api_token_create  # noqa: E402
from meiye.sales.services import LineInput, TenderInput, bill_checkout  # noqa: E402
from meiye.wallet.models import CardProduct  # noqa: E402
from meiye.wallet.services import CardProductInput, card_product_save, wallet_recharge  # noqa: E402

FUNDED_MEMBERS = 400
ITEMS = [
    ("bench-facial", "基础面部护理", "basic_care", "service", "298.00", 60),
    ("bench-lift", "抗衰提拉", "anti_ageing", "service", "680.00", 90),
    ("bench-serum", "修护精华", "retail", "product", "260.00", None),
]


def _measured_checkout(desk: Actor, member_id: int, item_ids: list[int], key: str) -> None:
    bill_checkout(
        actor=desk,
        member=Member.objects.get(pk=member_id),
        lines=[LineInput(item_id=i, quantity=1) for i in item_ids],
        tenders=[
            TenderInput(kind="stored_value", amount=Money.parse("500.00")),
            TenderInput(kind="wechat", amount=Money.parse("738.00"), external_ref="wx-bench"),
        ],
        idempotency_key=key,
    )


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

    # One checkout, measured and rolled back.
    body = checkout_body(members[0], item_ids)
    # Measured inside one rolled-back transaction: a first checkout creates the member's points and growth
    # accounts, so only the second one, the steady state, is counted.
    with transaction.atomic():
        _measured_checkout(desk, members[0], item_ids, "bench-warm")
        with CaptureQueriesContext(connection) as ctx:
            _measured_checkout(desk, members[0], item_ids, "bench-measure")
        transaction.set_rollback(True)
    sql = [q["sql"].lstrip().upper() for q in ctx.captured_queries]
    writes = sum(1 for s in sql if s.startswith(("INSERT", "UPDATE", "DELETE")))

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
                "checkout_queries": len(sql),
                "checkout_writes": writes,
                "phones": [demo_data.phone_for(i) for i in indexes],
                "example_body": body,
            }
        )
    )


if __name__ == "__main__":
    main()
