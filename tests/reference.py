"""The reference configuration of shared/SCENARIOS.md, built through the services.

Shared by the sales, API and front-desk tests: categories basic care / anti-ageing / retail earning
1 / 3 / 2 points per 元, and 基础护理 600.00, 抗衰紧致 1,000.00, 精华液 (retail) 250.00.
"""

from __future__ import annotations

from meiye.catalog.models import Category, Item
from meiye.catalog.services import category_save, item_save
from meiye.core.money import Money
from meiye.loyalty.services import earning_rate_set
from meiye.org.context import Actor

REFERENCE_RATES = {"basic_care": 1, "anti_ageing": 3, "retail": 2}
SERUM_BARCODE = "6901234567890"


def reference_categories(actor: Actor) -> dict[str, Category]:
    made = {
        "basic_care": category_save(
            actor=actor,
            code="basic-care",
            name="基础护理",
            kind="service",
            earning_category="basic_care",
            commission_category="service",
        ),
        "anti_ageing": category_save(
            actor=actor,
            code="anti-ageing",
            name="抗衰",
            kind="service",
            earning_category="anti_ageing",
            commission_category="service",
        ),
        "retail": category_save(
            actor=actor,
            code="retail",
            name="零售产品",
            kind="product",
            earning_category="retail",
            commission_category="product",
        ),
    }
    for earning_category, rate in REFERENCE_RATES.items():
        earning_rate_set(actor=actor, earning_category=earning_category, points_per_yuan=rate)
    return made


def reference_items(actor: Actor, categories: dict[str, Category]) -> dict[str, Item]:
    return {
        "care": item_save(
            actor=actor,
            code="basic-facial",
            name="基础护理",
            category=categories["basic_care"],
            price=Money.parse("600.00"),
            duration_minutes=60,
        ),
        "lifting": item_save(
            actor=actor,
            code="lifting",
            name="抗衰紧致",
            category=categories["anti_ageing"],
            price=Money.parse("1000.00"),
            duration_minutes=90,
        ),
        "serum": item_save(
            actor=actor,
            code="serum",
            name="精华液",
            category=categories["retail"],
            price=Money.parse("250.00"),
            barcode=SERUM_BARCODE,
            unit="瓶",
        ),
    }
