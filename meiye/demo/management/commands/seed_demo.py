"""``manage.py seed_demo``: the whole demo chain — stores, staff, members (``seed_demo_members``), then the
catalogue and ``--days`` of front-desk history (recharges, bills, a few refunds) through the real services.

Idempotent: a second run writes nothing. ``--days 0`` leaves out the history (members only).
"""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from meiye.demo.prepaid import seed_prepaid
from meiye.demo.sales_history import seed_sales_history
from meiye.members import demo_data
from meiye.members.management.commands.seed_demo_members import (
    DEFAULT_BATCH,
    _batch_size,
    _check_option,
    _member_count,
    _whole_number,
)
from meiye.org.models import Organisation

DEFAULT_DAYS = 21


def _days(text: str) -> int:
    return _whole_number("--days", text, 0, 366)


class Command(BaseCommand):
    help = "Load the demo chain: stores, staff, members and a few weeks of front-desk history / 加载演示数据"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--members", type=_member_count, default=demo_data.DEFAULT_MEMBERS)
        parser.add_argument("--batch-size", type=_batch_size, default=DEFAULT_BATCH)
        parser.add_argument("--days", type=_days, default=DEFAULT_DAYS, help="days of bills and recharges (0: none)")
        parser.add_argument("--quiet", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        # call_command(days=...) bypasses argparse's type=, so check again here.
        days = _check_option("--days", options["days"], _days)
        call_command(
            "seed_demo_members",
            members=options["members"],
            batch_size=options["batch_size"],
            quiet=options["quiet"],
            stdout=self.stdout,
            stderr=self.stderr,
        )
        organisation = Organisation.objects.get(code=demo_data.ORG_CODE)
        counts = seed_sales_history(organisation=organisation, days=days)
        prepaid = seed_prepaid(organisation=organisation)
        if options["quiet"]:
            return
        if not prepaid.skipped:
            self.stdout.write(
                f"  储值与卡 Cards and prepaid: {prepaid.rules} recharge rules, {prepaid.packages} packages, "
                f"{prepaid.cards} member cards, {prepaid.gift_cards} gift cards"
            )
        if counts.skipped:
            self.stdout.write("  收银记录 Front-desk history: already there (or --days 0) / 已存在，跳过")
        else:
            self.stdout.write(
                f"  收银记录 Front-desk history ({days} days): {counts.recharges} recharges, "
                f"{counts.bills} bills, {counts.refunds} refunds"
                + (f", refused {counts.refused}" if counts.refused else "")
            )
