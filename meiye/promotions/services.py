"""Writing coupons and promotions: templates, issuing, using on a bill, giving back on a refund."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from meiye.audit.services import audit_record
from meiye.catalog.models import Category, Item
from meiye.core.errors import ApplicationError, Conflict, ValidationFailed, not_found
from meiye.core.idempotency import conflict_error, validate_key
from meiye.core.stamps import new_stamp
from meiye.members.models import Member, MemberStatus
from meiye.members.selectors import member_get
from meiye.notify.events import COUPON_ISSUED
from meiye.notify.services import notify_event
from meiye.org.context import Actor
from meiye.org.models import Store
from meiye.org.roles import Perm
from meiye.promotions.models import (
    BASIS_POINTS,
    Coupon,
    CouponKind,
    CouponStatus,
    CouponTemplate,
    Promotion,
    PromotionKind,
    PromotionSettings,
    StackingPolicy,
)

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud at a counter
DEFAULT_VALID_DAYS = 30


@dataclass
class CouponTemplateInput:
    name: str
    kind: str
    amount_off_fen: int = 0
    pay_bp: int = BASIS_POINTS
    free_item_id: int | None = None
    min_spend_fen: int = 0
    category_ids: Sequence[int] = ()
    store_ids: Sequence[int] = ()
    valid_from: date | None = None
    valid_until: date | None = None
    valid_days: int | None = None
    per_member_limit: int = 0
    stackable: bool = False
    is_active: bool = True


def coupon_template_input(template: CouponTemplate) -> CouponTemplateInput:
    """What ``template`` holds now, as the input that would save it unchanged (edit forms, API PATCH)."""
    return CouponTemplateInput(
        name=template.name,
        kind=template.kind,
        amount_off_fen=template.amount_off_fen,
        pay_bp=template.pay_bp,
        free_item_id=template.free_item_id,
        min_spend_fen=template.min_spend_fen,
        category_ids=list(template.category_ids),
        store_ids=list(template.store_ids),
        valid_from=template.valid_from,
        valid_until=template.valid_until,
        valid_days=template.valid_days,
        per_member_limit=template.per_member_limit,
        stackable=template.stackable,
        is_active=template.is_active,
    )


def coupon_template_save(
    *, actor: Actor, data: CouponTemplateInput, template: CouponTemplate | None = None
) -> CouponTemplate:
    actor.require(Perm.PROMOTIONS_MANAGE)
    _require_name(data.name)
    if data.kind not in CouponKind.values:
        raise _invalid("kind", "类型无效", f"one of {', '.join(CouponKind.values)}")
    _require_fen("amount_off_fen", data.amount_off_fen)
    _require_fen("min_spend_fen", data.min_spend_fen)
    _require_pay_bp(data.pay_bp)
    if data.kind == CouponKind.AMOUNT_OFF and data.amount_off_fen <= 0:
        raise _invalid("amount_off", "满额减券需填写减免金额", "an amount-off coupon needs an amount above 0")
    if data.kind == CouponKind.PERCENT_OFF and data.pay_bp >= BASIS_POINTS:
        raise _invalid("pay_bp", "折扣券的折扣应低于 100%", "a percent-off coupon must pay less than 100%")
    free_item = None
    if data.kind == CouponKind.FREE_SERVICE:
        free_item = Item.objects.filter(organisation=actor.organisation, pk=data.free_item_id or 0).first()
        if free_item is None:
            raise _invalid(
                "free_item", "免费服务券需选择本机构的一个项目", "a free-service coupon needs one of our items"
            )
    if data.valid_days is None and (data.valid_from is None or data.valid_until is None):
        raise _invalid("valid_days", "请填写有效天数，或起止日期", "give a number of valid days, or both dates")
    if data.valid_days is not None and not 0 < data.valid_days <= 3650:
        raise _invalid("valid_days", "有效天数应为 1 到 3650", "valid days: 1 to 3650")
    _require_count("per_member_limit", data.per_member_limit, 1000)
    if data.valid_from and data.valid_until and data.valid_until < data.valid_from:
        raise _invalid("valid_until", "结束日期早于开始日期", "the end date is before the start date")
    category_ids = _own_ids(actor, Category, data.category_ids, "category_ids")
    store_ids = _own_ids(actor, Store, data.store_ids, "store_ids")
    values: dict[str, Any] = {
        "name": data.name.strip(),
        "kind": data.kind,
        "amount_off_fen": data.amount_off_fen,
        "pay_bp": data.pay_bp,
        "free_item": free_item,
        "min_spend_fen": data.min_spend_fen,
        "category_ids": category_ids,
        "store_ids": store_ids,
        "valid_from": data.valid_from,
        "valid_until": data.valid_until,
        "valid_days": data.valid_days,
        "per_member_limit": data.per_member_limit,
        "stackable": data.stackable,
        "is_active": data.is_active,
    }
    if template is not None and template.pk is not None:
        _refuse_changing_issued_terms(template, values)
    return _save_row(
        actor,
        CouponTemplate,
        template,
        values,
        "coupon_template",
        ("coupon.template_not_found", "优惠券模板", "Coupon template"),
    )


def coupon_issue(
    *,
    actor: Actor,
    member: Member,
    template: CouponTemplate,
    source: str,
    idempotency_key: str,
    on: date | None = None,
) -> Coupon:
    """Give ``member`` one coupon of ``template``. ``source`` says why ('manual', 'rule:referral',
    'campaign:<id>'); issuing by hand needs ``member.edit``. Idempotent per key: a repeat returns the first
    coupon. Refused when the template is inactive or the member already holds ``per_member_limit``."""
    if source == "manual":
        actor.require(Perm.MEMBER_EDIT)
    key = validate_key(idempotency_key)
    if template.organisation_id != actor.organisation.pk:
        raise not_found("coupon.template_not_found", "优惠券模板", "Coupon template")
    if not actor.is_system:
        member = member_get(actor, member.pk)  # scoped before anything, a replay included
    first = _issue_replay(actor, key, member=member, template=template)
    if first is not None:
        return first
    if member.status != MemberStatus.ACTIVE:
        raise Conflict(
            "coupon.member_inactive", zh="会员不是正常状态。", en="The member is not active.", field="member"
        )
    if not template.is_active:
        raise Conflict(
            "coupon.template_inactive",
            zh=f"优惠券 {template} 已停用。",
            en=f"Coupon {template} is no longer issued.",
            field="template",
        )
    today = on or timezone.localdate()
    valid_from = template.valid_from or today
    valid_until = template.valid_until or today + timedelta(days=(template.valid_days or DEFAULT_VALID_DAYS) - 1)
    if template.valid_days is not None:
        valid_from, valid_until = today, today + timedelta(days=template.valid_days - 1)
    if valid_until < today:
        raise Conflict(
            "coupon.template_expired",
            zh=f"优惠券 {template} 的有效期已于 {valid_until} 结束，不能再发放。",
            en=f"Coupon {template} was valid until {valid_until}; it can no longer be issued.",
            field="template",
        )
    try:
        with transaction.atomic():
            Member.objects.select_for_update(no_key=True).filter(pk=member.pk).values_list(
                "pk"
            ).first()  # one limit check at a time
            if template.per_member_limit:
                held = Coupon.objects.filter(template=template, member=member).count()
                if held >= template.per_member_limit:
                    raise Conflict(
                        "coupon.limit_reached",
                        zh=f"该会员已领取 {held} 张“{template}”，每人限 {template.per_member_limit} 张。",
                        en=f"The member already has {held} of “{template}”; the limit is {template.per_member_limit}.",
                        field="template",
                    )
            coupon = Coupon.objects.create(
                organisation=actor.organisation,
                template=template,
                member=member,
                code=_new_code(),
                valid_from=valid_from,
                valid_until=valid_until,
                source=source[:40],
                issued_by=actor.staff,
                idempotency_key=key,
            )
            audit_record(
                actor=actor,
                action="promotions.coupon_issue",
                obj=coupon,
                detail={"member": member.pk, "template": template.pk, "source": source},
            )
            with contextlib.suppress(ApplicationError):  # a refused message never undoes the coupon
                notify_event(
                    actor=actor,
                    member=member,
                    event=COUPON_ISSUED,
                    context={"coupon": template.name, "valid_until": coupon.valid_until},
                    idempotency_key=f"{COUPON_ISSUED}:{coupon.pk}",
                )
    except IntegrityError:
        first = _issue_replay(actor, key, member=member, template=template)
        if first is None:
            raise
        return first
    return coupon


def _issue_replay(actor: Actor, key: str, *, member: Member, template: CouponTemplate) -> Coupon | None:
    """The coupon first issued under ``key``; the same key for another member or template is a conflict."""
    first = Coupon.objects.filter(organisation=actor.organisation, idempotency_key=key).first()
    if first is not None and (first.member_id != member.pk or first.template_id != template.pk):
        raise conflict_error(key)
    return first


def coupons_lock_for_bill(*, actor: Actor, member: Member | None, coupon_ids: Sequence[int]) -> list[Coupon]:
    """The coupons a cashier applies to a bill, locked, in the order given; each must be the member's and
    active (dates, store and minimum spend are checked by ``offers.evaluate``). Runs in the caller's
    transaction."""
    if not coupon_ids:
        return []
    ids = list(dict.fromkeys(coupon_ids))
    if member is None:
        raise ValidationFailed(
            "coupon.member_required",
            zh="优惠券：散客不能使用会员优惠券。",
            en="coupons: a walk-in customer cannot use a member's coupon.",
            field="coupons",
        )
    found = {
        c.pk: c
        for c in Coupon.objects.select_for_update(of=("self",))
        .select_related("template")
        .filter(organisation=actor.organisation, member_id=member.pk, pk__in=ids)
        .order_by("pk")
    }
    missing = [i for i in ids if i not in found]
    if missing:
        raise ValidationFailed(
            "coupon.not_found",
            zh=f"优惠券：找不到该会员的优惠券 {missing}。",
            en=f"coupons: the member holds no coupon {missing}.",
            field="coupons",
        )
    return [found[i] for i in ids]


def coupons_mark_used(*, actor: Actor, used: Sequence[tuple[Coupon, int]], bill_id: int) -> None:
    """Mark the coupons a completed bill used (in the bill's transaction, the coupons locked)."""
    now = timezone.now()
    for coupon, amount in used:
        coupon.status, coupon.used_bill_id, coupon.used_at, coupon.discount_fen = (
            CouponStatus.USED,
            bill_id,
            now,
            amount,
        )
    if used:
        Coupon.objects.bulk_update([c for c, _ in used], ["status", "used_bill_id", "used_at", "discount_fen"])
        audit_record(
            actor=actor,
            action="promotions.coupons_used",
            obj=used[0][0],
            detail={"bill": bill_id, "coupons": [[c.pk, amount] for c, amount in used]},
        )


def coupons_return_for_bill(*, actor: Actor, bill_id: int, on: date) -> list[Coupon]:
    """A bill was refunded in full: its coupons become usable again if still valid on ``on`` (S-22); an
    expired one stays used. Runs in the refund's transaction."""
    coupons = list(
        Coupon.objects.select_for_update()
        .filter(organisation=actor.organisation, used_bill_id=bill_id, status=CouponStatus.USED)
        .order_by("pk")
    )
    returned = [c for c in coupons if c.valid_until >= on]
    for coupon in returned:
        coupon.status, coupon.used_bill_id, coupon.used_at, coupon.discount_fen = CouponStatus.ACTIVE, None, None, 0
    if returned:
        Coupon.objects.bulk_update(returned, ["status", "used_bill_id", "used_at", "discount_fen"])
        audit_record(
            actor=actor,
            action="promotions.coupons_returned",
            obj=returned[0],
            detail={"bill": bill_id, "coupons": [c.pk for c in returned]},
        )
    return returned


def coupon_void(*, actor: Actor, coupon: Coupon, reason: str) -> Coupon:
    actor.require(Perm.MEMBER_EDIT)
    if not reason.strip():
        raise _invalid("reason", "请填写作废原因", "give a reason")
    if not actor.is_system:
        member_get(actor, coupon.member_id)  # a coupon of a member out of the actor's stores is not found
    with transaction.atomic():
        locked = Coupon.objects.select_for_update().get(pk=coupon.pk, organisation=actor.organisation)
        if locked.status != CouponStatus.ACTIVE:
            raise Conflict("coupon.not_active", zh="只能作废可用的优惠券。", en="Only an active coupon can be voided.")
        locked.status = CouponStatus.VOID
        locked.save(update_fields=["status"])
        audit_record(actor=actor, action="promotions.coupon_void", obj=locked, detail={"reason": reason.strip()})
    return locked


@dataclass
class PromotionInput:
    name: str
    kind: str
    threshold_fen: int = 0
    save_fen: int = 0
    repeat: bool = False
    pay_bp: int = BASIS_POINTS
    buy_quantity: int = 0
    free_quantity: int = 0
    item_kind: str = ""
    category_ids: Sequence[int] = ()
    item_ids: Sequence[int] = ()
    store_ids: Sequence[int] = ()
    starts_on: date | None = None
    ends_on: date | None = None
    priority: int = 100
    is_active: bool = True


def promotion_input(promotion: Promotion) -> PromotionInput:
    """What ``promotion`` holds now, as the input that would save it unchanged (edit forms, API PATCH)."""
    return PromotionInput(
        name=promotion.name,
        kind=promotion.kind,
        threshold_fen=promotion.threshold_fen,
        save_fen=promotion.save_fen,
        repeat=promotion.repeat,
        pay_bp=promotion.pay_bp,
        buy_quantity=promotion.buy_quantity,
        free_quantity=promotion.free_quantity,
        item_kind=promotion.item_kind,
        category_ids=list(promotion.category_ids),
        item_ids=list(promotion.item_ids),
        store_ids=list(promotion.store_ids),
        starts_on=promotion.starts_on,
        ends_on=promotion.ends_on,
        priority=promotion.priority,
        is_active=promotion.is_active,
    )


def promotion_save(*, actor: Actor, data: PromotionInput, promotion: Promotion | None = None) -> Promotion:
    actor.require(Perm.PROMOTIONS_MANAGE)
    _require_name(data.name)
    if data.kind not in PromotionKind.values:
        raise _invalid("kind", "类型无效", f"one of {', '.join(PromotionKind.values)}")
    _require_fen("threshold_fen", data.threshold_fen)
    _require_fen("save_fen", data.save_fen)
    _require_pay_bp(data.pay_bp)
    _require_count("priority", data.priority, 10_000)
    _require_count("buy_quantity", data.buy_quantity, 1000)
    _require_count("free_quantity", data.free_quantity, 1000)
    if data.kind == PromotionKind.SPEND_SAVE and not 0 < data.save_fen <= data.threshold_fen:
        raise _invalid("save", "应大于 0 且不超过满减门槛", "spend X save Y: Y above 0 and not above X")
    if data.kind == PromotionKind.PERCENT_OFF and data.pay_bp >= BASIS_POINTS:
        raise _invalid("pay_bp", "折扣应低于 100%", "the share paid must be below 100%")
    if data.kind == PromotionKind.BUY_X_GET_Y and (data.buy_quantity < 1 or data.free_quantity < 1):
        raise _invalid("buy_quantity", "买X送Y：X 和 Y 都至少为 1", "buy X get Y: X and Y at least 1")
    if data.item_kind not in ("", "service", "product"):
        raise _invalid("item_kind", "适用类型应为服务或产品", "item kind: service, product or blank")
    if data.starts_on and data.ends_on and data.ends_on < data.starts_on:
        raise _invalid("ends_on", "结束日期早于开始日期", "the end date is before the start date")
    values: dict[str, Any] = {
        "name": data.name.strip(),
        "kind": data.kind,
        "threshold_fen": data.threshold_fen,
        "save_fen": data.save_fen,
        "repeat": data.repeat,
        "pay_bp": data.pay_bp,
        "buy_quantity": data.buy_quantity,
        "free_quantity": data.free_quantity,
        "item_kind": data.item_kind,
        "category_ids": _own_ids(actor, Category, data.category_ids, "category_ids"),
        "item_ids": _own_ids(actor, Item, data.item_ids, "item_ids"),
        "store_ids": _own_ids(actor, Store, data.store_ids, "store_ids"),
        "starts_on": data.starts_on,
        "ends_on": data.ends_on,
        "priority": data.priority,
        "is_active": data.is_active,
    }
    with transaction.atomic():  # the checkouts' cache is invalidated with the change, or not at all
        row = _save_row(
            actor, Promotion, promotion, values, "promotion", ("promotion.not_found", "促销活动", "Promotion")
        )
        _bump_version(actor)
    return row


def promotion_settings_set(*, actor: Actor, stacking: str) -> PromotionSettings:
    actor.require(Perm.PROMOTIONS_MANAGE)
    if stacking not in StackingPolicy.values:
        raise _invalid("stacking", "叠加规则无效", f"one of {', '.join(StackingPolicy.values)}")
    with transaction.atomic():
        row, _ = PromotionSettings.objects.select_for_update().get_or_create(organisation=actor.organisation)
        row.stacking = stacking
        row.version = new_stamp()
        row.save()
        audit_record(actor=actor, action="promotions.settings", obj=row, detail={"stacking": stacking})
    return row


def coupons_export_section(member: Member) -> tuple[str, Any]:
    return (
        "coupons",
        [
            {
                "code": c.code,
                "template": c.template.name,
                "status": c.status,
                "valid_from": c.valid_from.isoformat(),
                "valid_until": c.valid_until.isoformat(),
                "source": c.source,
                "used_bill_id": c.used_bill_id,
            }
            for c in Coupon.objects.filter(member=member).select_related("template").order_by("pk")
        ],
    )


def coupons_merge(actor: Actor, survivor: Member, merged: Member) -> dict[str, Any]:
    """A merge moves the merged member's active coupons to the survivor."""
    moved = Coupon.objects.filter(member=merged, status=CouponStatus.ACTIVE).update(member=survivor)
    return {"coupons_moved": moved}


# What a coupon means to the member who holds it: fixed once any coupon of the template is issued.
ISSUED_TERMS = ("kind", "amount_off_fen", "pay_bp", "free_item", "min_spend_fen", "category_ids", "store_ids")


def _refuse_changing_issued_terms(template: CouponTemplate, values: dict[str, Any]) -> None:
    """Coupons read their terms from the template, so once one is issued the terms cannot change (name,
    validity for new issues, limits and the active flag still can). Make a new template instead."""
    current = CouponTemplate.objects.get(pk=template.pk)
    changed = [
        name
        for name in ISSUED_TERMS
        if (current.free_item_id if name == "free_item" else getattr(current, name))
        != (values[name].pk if name == "free_item" and values[name] is not None else values[name])
    ]
    if changed and Coupon.objects.filter(template_id=template.pk).exists():
        raise Conflict(
            "coupon.template_in_use",
            zh=f"{FIELD_LABELS.get(changed[0], changed[0])}：已有会员持有此券，不能修改优惠内容；请新建一个模板。",
            en=f"{changed[0]}: coupons of this template were issued; its terms cannot change. Create a new template.",
            field=changed[0],
        )


def _save_row(
    actor: Actor, model: Any, row: Any, values: dict[str, Any], what: str, missing: tuple[str, str, str]
) -> Any:
    """Create ``model`` with ``values`` (``row`` None) or update ``row`` of the actor's organisation, with
    the audit row ``promotions.<what>_create`` / ``_update``, in one transaction."""
    with transaction.atomic():
        if row is None:
            row = model.objects.create(organisation=actor.organisation, **values)
            action = f"promotions.{what}_create"
        else:
            if row.organisation_id != actor.organisation.pk:
                raise not_found(*missing)
            for name, value in values.items():
                setattr(row, name, value)
            row.save()
            action = f"promotions.{what}_update"
        audit_record(actor=actor, action=action, obj=row, detail={"name": row.name, "kind": row.kind})
    return row


def _bump_version(actor: Actor) -> None:
    """Every change to the promotions invalidates the checkouts' cache (``selectors.promotions_live_cached``)."""
    row, _ = PromotionSettings.objects.get_or_create(organisation=actor.organisation)
    PromotionSettings.objects.filter(pk=row.pk).update(version=new_stamp())


# --- checks ------------------------------------------------------------------------------------------------


def _new_code() -> str:
    return "CP" + "".join(secrets.choice(CODE_ALPHABET) for _ in range(10))


FIELD_LABELS = {
    "name": "名称",
    "kind": "类型",
    "amount_off": "减免金额",
    "amount_off_fen": "减免金额",
    "pay_bp": "折扣",
    "free_item": "免费项目",
    "min_spend_fen": "最低消费",
    "valid_days": "有效天数",
    "valid_until": "结束日期",
    "category_ids": "适用分类",
    "item_ids": "适用项目",
    "store_ids": "适用门店",
    "per_member_limit": "每人限领",
    "threshold_fen": "门槛金额",
    "save_fen": "减免金额",
    "save": "减免金额",
    "buy_quantity": "购买数量",
    "free_quantity": "赠送数量",
    "item_kind": "适用类型",
    "ends_on": "结束日期",
    "priority": "优先级",
    "stacking": "叠加规则",
    "reason": "原因",
}


def _invalid(field: str, zh: str, en: str) -> ValidationFailed:
    """The rule broken, naming the field: its Chinese label in zh, its API name in en."""
    label = FIELD_LABELS.get(field, field)
    return ValidationFailed(f"promotions.invalid_{field}", zh=f"{label}：{zh}。", en=f"{field}: {en}.", field=field)


def _require_count(field: str, value: int, most: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= most:
        raise _invalid(field, f"应为 0 到 {most} 的整数", f"a whole number from 0 to {most}")


def _require_name(name: str) -> None:
    if not name or not name.strip() or len(name.strip()) > 60:
        raise _invalid("name", "名称必填，最多 60 字", "required, at most 60 characters")


def _require_fen(field: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**12:
        raise _invalid(field, "应为不小于 0 的金额（分）", "an amount in fen, not negative")


def _require_pay_bp(value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= BASIS_POINTS:
        raise _invalid("pay_bp", "折扣应在 0.01% 到 100% 之间", "the share paid is from 1 to 10,000 basis points")


def _own_ids(actor: Actor, model: Any, ids: Sequence[int], field: str) -> list[int]:
    wanted = sorted({int(i) for i in ids})
    if not wanted:
        return []
    found = set(model.objects.filter(organisation=actor.organisation, pk__in=wanted).values_list("pk", flat=True))
    missing = [i for i in wanted if i not in found]
    if missing:
        raise _invalid(field, f"不属于本机构：{missing}", f"not ours: {missing}")
    return wanted
