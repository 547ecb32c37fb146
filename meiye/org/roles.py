"""Positions (岗位) and what each may do.

Permissions are named capabilities checked by selectors and services. A position is a fixed set of them;
``ALL_STORES`` marks the HQ roles that see every store of the organisation.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Position(models.TextChoices):
    STORE_MANAGER = "store_manager", _("店长 Store manager")
    RECEPTIONIST = "receptionist", _("前台 Receptionist / cashier")
    BEAUTICIAN = "beautician", _("美容师 Beautician")
    SENIOR_BEAUTICIAN = "senior_beautician", _("高级美容师 Senior beautician")
    CONSULTANT = "consultant", _("顾问 Consultant")
    FINANCE = "finance", _("财务 Finance")
    HQ_ADMIN = "hq_admin", _("总部管理员 HQ admin")


class Perm:
    MEMBER_VIEW = "member.view"
    MEMBER_CREATE = "member.create"
    MEMBER_EDIT = "member.edit"
    MEMBER_REVEAL_PHONE = "member.reveal_phone"
    MEMBER_REVEAL_ID = "member.reveal_id"
    MEMBER_REVEAL_CONTACT = "member.reveal_contact"  # email and address
    MEMBER_REVEAL_HEALTH = "member.reveal_health"  # sensitive custom fields (allergies, skin)
    MEMBER_PHOTO = "member.photo"
    MEMBER_CONSENT = "member.consent"
    MEMBER_MERGE = "member.merge"
    MEMBER_EXPORT = "member.export"
    MEMBER_ERASE = "member.erase"
    CUSTOM_FIELDS_MANAGE = "custom_fields.manage"
    STAFF_VIEW = "staff.view"
    STAFF_MANAGE = "staff.manage"
    STORE_MANAGE = "store.manage"
    AUDIT_VIEW = "audit.view"
    MONEY_ADJUST = "money.adjust"
    CATALOG_MANAGE = "catalog.manage"  # the brand's categories, services and products (HQ)
    PROMOTIONS_MANAGE = "promotions.manage"  # coupon templates, promotions and how offers stack (HQ)
    CAMPAIGNS_MANAGE = "campaigns.manage"  # member segments and marketing campaigns, their reports (HQ)
    STORE_PRICE_SET = "catalog.store_price"  # a store's own prices
    CHECKOUT = "sales.checkout"  # open bills, take payment, recharge stored value
    REFUND = "sales.refund"  # refund a completed bill
    APPROVE_DISCOUNT = "sales.approve_discount"  # approve a price below the cashier's own threshold
    DAILY_CLOSE = "sales.daily_close"
    MALL_APPROVE = "mall.approve"  # approve or reject a points-mall redemption above the threshold
    NOTIFY_VIEW = "notify.view"  # the outbox of messages to members (store-scoped), retry a failed one
    NOTIFY_MANAGE = "notify.manage"  # message templates, quiet hours, which events are marketing
    CARDS_MANAGE = "cards.manage"  # card products, recharge rules, package products, gift-card kinds (HQ)
    CARD_SERVICE = "cards.service"  # issue, bind, freeze, report lost, replace cards; payment password at the desk
    PREPAID_REFUND = "prepaid.refund"  # cooling-off refunds, closing a card with a refund, package refunds, transfers
    PACKAGE_ADJUST = "packages.adjust"  # freeze or extend a package's validity, with a reason
    PREPAID_REPORT = "prepaid.report"  # the prepaid liability report (regulator, escrow bank)
    ALL_STORES = "org.all_stores"


_FRONT = {
    Perm.CHECKOUT,
    Perm.CARD_SERVICE,
    Perm.MEMBER_VIEW,
    Perm.MEMBER_CREATE,
    Perm.MEMBER_EDIT,
    Perm.MEMBER_REVEAL_PHONE,
    Perm.MEMBER_PHOTO,
    Perm.MEMBER_CONSENT,
}
_CARE = {Perm.MEMBER_VIEW, Perm.MEMBER_REVEAL_HEALTH, Perm.MEMBER_PHOTO}

POSITION_PERMS: dict[str, frozenset[str]] = {
    Position.RECEPTIONIST: frozenset(_FRONT),
    Position.CONSULTANT: frozenset(_FRONT | {Perm.MEMBER_REVEAL_CONTACT}),
    Position.BEAUTICIAN: frozenset(_CARE),
    Position.SENIOR_BEAUTICIAN: frozenset(_CARE | {Perm.MEMBER_EDIT}),
    Position.STORE_MANAGER: frozenset(
        _FRONT
        | _CARE
        | {
            Perm.MEMBER_REVEAL_ID,
            Perm.MEMBER_REVEAL_CONTACT,
            Perm.MEMBER_MERGE,
            Perm.MEMBER_EXPORT,
            Perm.STAFF_VIEW,
            Perm.AUDIT_VIEW,
            Perm.MONEY_ADJUST,
            Perm.STORE_PRICE_SET,
            Perm.REFUND,
            Perm.APPROVE_DISCOUNT,
            Perm.DAILY_CLOSE,
            Perm.MALL_APPROVE,
            Perm.NOTIFY_VIEW,
            Perm.PREPAID_REFUND,
            Perm.PACKAGE_ADJUST,
            Perm.PREPAID_REPORT,
        }
    ),
    Position.FINANCE: frozenset(
        {
            Perm.MEMBER_VIEW,
            Perm.AUDIT_VIEW,
            Perm.STAFF_VIEW,
            Perm.MONEY_ADJUST,
            Perm.DAILY_CLOSE,
            Perm.PREPAID_REPORT,
            Perm.ALL_STORES,
        }
    ),
    Position.HQ_ADMIN: frozenset(
        _FRONT
        | _CARE
        | {
            Perm.MEMBER_REVEAL_ID,
            Perm.MEMBER_REVEAL_CONTACT,
            Perm.MEMBER_MERGE,
            Perm.MEMBER_EXPORT,
            Perm.MEMBER_ERASE,
            Perm.CUSTOM_FIELDS_MANAGE,
            Perm.STAFF_VIEW,
            Perm.STAFF_MANAGE,
            Perm.STORE_MANAGE,
            Perm.CATALOG_MANAGE,
            Perm.PROMOTIONS_MANAGE,
            Perm.CAMPAIGNS_MANAGE,
            Perm.STORE_PRICE_SET,
            Perm.AUDIT_VIEW,
            Perm.MONEY_ADJUST,
            Perm.REFUND,
            Perm.APPROVE_DISCOUNT,
            Perm.DAILY_CLOSE,
            Perm.MALL_APPROVE,
            Perm.NOTIFY_VIEW,
            Perm.NOTIFY_MANAGE,
            Perm.CARDS_MANAGE,
            Perm.PREPAID_REFUND,
            Perm.PACKAGE_ADJUST,
            Perm.PREPAID_REPORT,
            Perm.ALL_STORES,
        }
    ),
}

# Roles that can read health data or adjust money must sign in with a second factor (OWASP ASVS L2),
# when MEIYE_REQUIRE_2FA is on.
TWO_FACTOR_PERMS = frozenset({Perm.MEMBER_REVEAL_HEALTH, Perm.MONEY_ADJUST})


def perms_for(position: str) -> frozenset[str]:
    return POSITION_PERMS.get(position, frozenset())
