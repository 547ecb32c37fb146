"""Demo cards and prepaid (issue 5): a stored-value card product with the usual rules, two packages, member
cards for a few members and a gift card, so every prepaid screen has something to show on the first run.

Idempotent: a second run finds the card product and leaves everything as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from meiye.cards.models import MemberCard
from meiye.cards.services import card_issue, card_settings_set
from meiye.catalog.models import Item
from meiye.core.money import Money
from meiye.giftcards.services import gift_card_sell
from meiye.members.models import Member, MemberStatus
from meiye.org.context import Actor
from meiye.org.models import Organisation, Position, Staff
from meiye.packages.services import ProductItemInput, package_product_save
from meiye.wallet.models import CardProduct
from meiye.wallet.services import CardProductInput, RechargeRuleInput, card_product_save, recharge_rule_save

PRODUCT_CODE = "standard"


@dataclass
class PrepaidCounts:
    skipped: bool = False
    rules: int = 0
    packages: int = 0
    cards: int = 0
    gift_cards: int = 0


def seed_prepaid(*, organisation: Organisation) -> PrepaidCounts:
    counts = PrepaidCounts()
    if CardProduct.objects.filter(organisation=organisation, code=PRODUCT_CODE).exists():
        counts.skipped = True
        return counts
    admin = Staff.objects.filter(organisation=organisation, position=Position.HQ_ADMIN).order_by("id").first()
    store = organisation.stores.filter(is_active=True).order_by("id").first()
    if admin is None or store is None:
        raise RuntimeError("seed the demo members and staff first")
    hq = Actor(staff=admin, organisation=organisation, store=store)

    product = card_product_save(
        actor=hq,
        data=CardProductInput(
            code=PRODUCT_CODE,
            name="标准储值卡",
            named_cap_fen=500_000,  # 5,000.00 for a named card, 1,000.00 anonymous (a provincial standard)
            anonymous_cap_fen=100_000,
            cooling_off_days=7,
            is_default=True,
        ),
    )
    for threshold, bonus, instalments, points in ((100_000, 10_000, 1, 100), (300_000, 60_000, 6, 300)):
        recharge_rule_save(
            actor=hq,
            product=product,
            data=RechargeRuleInput(
                threshold_fen=threshold,
                bonus_fen=bonus,
                instalments=instalments,
                bonus_points=points,
                name=f"充{threshold // 100}送{bonus // 100}",
            ),
        )
        counts.rules += 1

    services = {
        i.code: i for i in Item.objects.filter(organisation=organisation, code__in=["facial-basic", "eye-care"])
    }
    if "facial-basic" in services:
        package_product_save(
            actor=hq,
            code="facial-10",
            name="面部护理10次卡",
            price=Money.parse("1980.00"),
            kind="count",
            items=[ProductItemInput(service_id=services["facial-basic"].pk, count=10, validity_value=12)],
        )
        counts.packages += 1
        if "eye-care" in services:
            package_product_save(
                actor=hq,
                code="face-eye-combo",
                name="面部眼部组合套餐",
                price=Money.parse("1880.00"),
                kind="combo",
                items=[
                    ProductItemInput(service_id=services["facial-basic"].pk, count=5, validity_value=6),
                    ProductItemInput(service_id=services["eye-care"].pk, count=4, validity_value=12),
                ],
            )
            counts.packages += 1

    card_settings_set(
        actor=hq,
        store=store,
        replacement_fee=Money.parse("10.00"),
        allow_balance_transfer=False,
        require_payment_auth=False,
    )
    members = Member.objects.filter(home_store=store, status=MemberStatus.ACTIVE).order_by("id")[:5]
    for index, member in enumerate(members):
        if MemberCard.objects.filter(member=member).exists():
            continue
        card_issue(
            actor=hq,
            member=member,
            product=product,
            medium="physical",
            number=f"MY{12345 + index:08d}",
            idempotency_key=f"demo:card:{member.pk}",
        )
        counts.cards += 1

    gift_card_sell(
        actor=hq,
        face=Money.parse("500.00"),
        price=Money.parse("450.00"),
        tender="wechat",
        expires_on=timezone.localdate() + timedelta(days=365),
        quantity=2,
        idempotency_key="demo:gift-cards",
    )
    counts.gift_cards += 2
    return counts
