"""Writes for member cards (ADR 0006): issue, bind, freeze, loss, replacement (with its fee), balance
transfer, closing, import of old numbers, card settings, and payment security (password, one-time codes,
lock-out), plus the member merge / export hooks.

Balances are the member's (principal, bonus, pending bonus, package sessions), so a card's lifecycle moves
no money except:

- ``cards.replace_fee``: store ``tender_<kind>`` −fee, store ``revenue`` +fee; or, paid from stored value,
  member principal / bonus −split (the store's spend order), store ``revenue`` +fee;
- a transfer (``wallet.transfer``) and a closing (``wallet.close``), posted by wallet's own services.

Payment security: ``stored_value_authorize`` runs in its own transaction and *commits* the failure count
before it raises, so five wrong tries lock the member's stored-value payment for 30 minutes even though each
caller's operation fails. Staff never see a password or a code: the password is a password hash, a code is
hashed for checking and kept encrypted only until its SMS is delivered (``notify`` stores the body with the
code masked).
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import math
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib.auth.hashers import check_password, make_password
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.utils import timezone

from meiye.audit.services import audit_record
from meiye.cards.models import (
    LIVE_STATUSES,
    AliasSource,
    CardAlias,
    CardMedium,
    CardSettings,
    CardStatus,
    CodePurpose,
    MemberCard,
    PaymentCode,
    PaymentPassword,
)
from meiye.cards.selectors import (
    card_for_number,
    card_get,
    card_settings,
    member_cards,
    member_live_card,
    normalise_number,
    payment_auth_required,
)
from meiye.core.db.prepared import PreparedQuery
from meiye.core.errors import ApplicationError, Conflict, NotFound, PermissionDenied, ValidationFailed, not_found
from meiye.core.idempotency import canonical_hash, conflict_error, validate_key
from meiye.core.money import Money
from meiye.ledger.models import Journal
from meiye.ledger.services import Leg, Posting, accounts_lock, journals_post
from meiye.members.models import Member, MemberStatus
from meiye.members.selectors import member_find_by_phone, member_get, members_visible, members_visible_by_ids
from meiye.notify.events import WALLET_PAYMENT_CODE
from meiye.notify.models import Message
from meiye.notify.services import notify_event
from meiye.org.context import Actor
from meiye.org.models import Store
from meiye.org.roles import Perm
from meiye.org.selectors import first_in_scope, store_get
from meiye.wallet import services as wallet_services
from meiye.wallet.models import CardProduct, Tender, WalletClosure
from meiye.wallet.selectors import card_product_default, wallet_spend_order

__all__ = [
    "CardImportResult",
    "card_bind",
    "card_close",
    "card_for_number",
    "card_freeze",
    "card_issue",
    "card_replace",
    "card_report_lost",
    "card_settings_set",
    "card_transfer_balance",
    "card_unfreeze",
    "cards_export_section",
    "cards_import",
    "cards_merge",
    "payment_auth_required",
    "payment_code_secret",
    "payment_code_send",
    "payment_codes_purge_due",
    "payment_password_set",
    "stored_value_authorize",
]

VIRTUAL_PREFIX = "MY"
NUMBER_RE = re.compile(r"^[A-Z0-9-]{4,32}$")
PASSWORD_RE = re.compile(r"^\d{6}$")
CODE_LIFETIME = timedelta(minutes=5)
CODE_INTERVAL = timedelta(seconds=60)
CODE_DAILY_LIMIT = 10
CODE_MAX_ATTEMPTS = 5
MAX_FAILURES = 5
LOCK_TIME = timedelta(minutes=30)
MAX_REASON = 200
MAX_FEE_FEN = 100_000  # 1,000.00 元: a replacement fee above this is a typing mistake
MAX_IMPORT_ROWS = 5_000
STORED_VALUE = "stored_value"
FEE_TENDERS = (*Tender.values, STORED_VALUE)
CARD_REFERENCE = "cards.MemberCard"


def _now() -> datetime:
    """The current time (one place, so tests can move the clock)."""
    return timezone.now()


def _new_code() -> str:
    """A fresh 6-digit one-time code (one place, so tests can know it without reading the database)."""
    return f"{secrets.randbelow(10**6):06d}"


# --- Issue and bind ----------------------------------------------------------------------------------------


def card_issue(
    *,
    actor: Actor,
    member: Member,
    product: CardProduct | None = None,
    medium: str = CardMedium.VIRTUAL,
    number: str = "",
    named: bool = True,
    idempotency_key: str,
) -> MemberCard:
    """Issue a card to a member who has no live card: a virtual card gets a generated number "MY" + 8
    digits; a physical card takes the number typed or scanned. ``product=None``: the organisation's default
    card product, if it has one. Refused: ``card.already_has_card`` (she holds a live card: replace it),
    ``card.number_taken``, ``card.invalid_number``, ``card.product_not_found``, ``card.member_inactive``."""
    actor.require(Perm.CARD_SERVICE)
    member = _member_for_card(actor, member)
    product = _product(actor, product)
    medium, wanted = _medium_and_number(medium, number)
    key = validate_key(idempotency_key)
    request = {"member_id": member.pk, "product_id": product.pk if product else None, "medium": medium, "named": named}
    if wanted:
        request["number"] = wanted
    with transaction.atomic():
        first = _card_replay(actor, key, request)
        if first is not None:
            return first
        Member.objects.select_for_update(no_key=True).filter(pk=member.pk).first()
        live = member_live_card(member)
        if live is not None:
            raise Conflict(
                "card.already_has_card",
                zh=f"会员已有一张在用的卡 {live.number}（{live.get_status_display()}）；如需换卡请办理补卡。",
                en=f"The member already holds card {live.number} ({live.status}); replace it instead.",
                field="member",
                extra={"card_number": live.number},
            )
        card = _create_card(
            actor,
            member=member,
            product=product,
            medium=medium,
            number=wanted,
            named=named,
            key=key,
            request=request,
        )
        audit_record(
            actor=actor,
            action="cards.issue",
            obj=card,
            detail={
                "member": member.member_no,
                "medium": medium,
                "product": product.code if product else None,
                "named": named,
            },
        )
    return card


def card_bind(*, actor: Actor, card: MemberCard, number: str) -> MemberCard:
    """Put a physical card's number on a member's virtual card (the card becomes physical). The virtual
    number keeps finding the card (a ``CardAlias``), so what the member saved in her phone still works."""
    actor.require(Perm.CARD_SERVICE)
    wanted = _valid_number(number)
    with transaction.atomic():
        card = _card_locked(actor, card)
        if card.medium != CardMedium.VIRTUAL:
            raise ValidationFailed(
                "card.not_virtual",
                zh=f"卡号 {card.number}：只有电子卡可以绑定实体卡号。",
                en=f"card {card.number}: only a virtual card can be bound to a physical number.",
                field="number",
            )
        if card.status not in (CardStatus.ACTIVE, CardStatus.FROZEN):
            raise _status_error(card, "bind")
        _check_number_free(actor, wanted)
        old = card.number
        CardAlias.objects.create(
            organisation=actor.organisation, number=old, card=card, source=AliasSource.VIRTUAL, created_by=actor.staff
        )
        card.number = wanted
        card.medium = CardMedium.PHYSICAL
        card.save(update_fields=["number", "medium"])
        audit_record(actor=actor, action="cards.bind", obj=card, detail={"virtual_number": old, "number": wanted})
    return card


# --- Status ------------------------------------------------------------------------------------------------


def card_freeze(*, actor: Actor, card: MemberCard, reason: str) -> MemberCard:
    """Freeze an active card (冻结): stored-value payment stops until it is unfrozen. A reason is required."""
    actor.require(Perm.CARD_SERVICE)
    reason = _reason(reason, required=True)
    with transaction.atomic():
        card = _card_locked(actor, card)
        if card.status != CardStatus.ACTIVE:
            raise _status_error(card, "freeze")
        _set_status(card, CardStatus.FROZEN, reason, stamp="frozen_at")
        audit_record(actor=actor, action="cards.freeze", obj=card, detail={"reason": reason})
    return card


def card_unfreeze(*, actor: Actor, card: MemberCard, reason: str) -> MemberCard:
    """Unfreeze a frozen card (解冻), or cancel a loss report when the member found her card (解挂)."""
    actor.require(Perm.CARD_SERVICE)
    reason = _reason(reason, required=True)
    with transaction.atomic():
        card = _card_locked(actor, card)
        if card.status not in (CardStatus.FROZEN, CardStatus.LOST):
            raise _status_error(card, "unfreeze")
        before = card.status
        _set_status(card, CardStatus.ACTIVE, reason)
        audit_record(actor=actor, action="cards.unfreeze", obj=card, detail={"reason": reason, "from": before})
    return card


def card_report_lost(*, actor: Actor, card: MemberCard, reason: str = "") -> MemberCard:
    """Report a card lost (挂失, S-18): from now on every stored-value payment of the member is refused
    (``card.lost``), whatever number is used, while her balance stays visible. Audited."""
    actor.require(Perm.CARD_SERVICE)
    reason = _reason(reason, required=False)
    with transaction.atomic():
        card = _card_locked(actor, card)
        if card.status not in (CardStatus.ACTIVE, CardStatus.FROZEN):
            raise _status_error(card, "report_lost")
        _set_status(card, CardStatus.LOST, reason, stamp="lost_at")
        audit_record(
            actor=actor,
            action="cards.report_lost",
            obj=card,
            detail={"member": card.member.member_no, "reason": reason},
        )
    return card


# --- Replacement --------------------------------------------------------------------------------------------


def card_replace(
    *,
    actor: Actor,
    card: MemberCard,
    medium: str = CardMedium.VIRTUAL,
    number: str = "",
    fee_tender: str = "",
    password: str = "",
    code: str = "",
    idempotency_key: str,
    reason: str = "",
) -> MemberCard:
    """Replace a live card (补卡, S-18) with a new one (same member, product, named): the old card becomes
    ``replaced`` and its number never works again; the balances are the member's, so the new card carries
    principal, bonus, pending bonus and package sessions without a movement.

    The acting store's replacement fee (``CardSettings.replacement_fee_fen``), when set, is paid by
    ``fee_tender`` (cash, card, wechat, alipay: ``cards.replace_fee`` store tender −fee, store revenue
    +fee; or ``stored_value``: member principal/bonus −fee by the store's spend order, store revenue +fee,
    which needs her password or a one-time code when she has a password or the store requires it).
    Idempotent per key: a retry returns the new card.
    """
    actor.require(Perm.CARD_SERVICE)
    store = _store_required(actor)
    reason = _reason(reason, required=False)
    old = card_get(actor, card.pk)
    medium, wanted = _medium_and_number(medium, number)
    fee = Money(card_settings(store).replacement_fee_fen)
    tender = (fee_tender or "").strip()
    if fee.fen == 0:
        tender = ""
    elif tender not in FEE_TENDERS:
        raise ValidationFailed(
            "cards.fee_tender_required",
            zh=f"工本费支付方式：本店补卡收取工本费 {fee}，请选择现金、银行卡、微信、支付宝或储值。",
            en=f"fee_tender: this store charges a {fee} replacement fee; choose cash, card, wechat, alipay or stored_value.",
            field="fee_tender",
            extra={"fee": fee.as_decimal_string(), "choices": list(FEE_TENDERS)},
        )
    key = validate_key(idempotency_key)
    request = {"replaces": old.pk, "medium": medium, "fee_fen": fee.fen, "fee_tender": tender}
    if wanted:
        request["number"] = wanted
    first = _card_replay(actor, key, request)
    if first is not None:
        return first
    if tender == STORED_VALUE:
        # Identity first, in its own transaction (a wrong password counts even though the replacement fails).
        # The card being replaced may be lost: that is why she is here, so only the password/code is checked.
        _authorize(actor, old.member, store, password=password, code=code)
    with transaction.atomic():
        first = _card_replay(actor, key, request)
        if first is not None:
            return first
        old = _card_locked(actor, old)
        if old.status not in LIVE_STATUSES:
            raise _status_error(old, "replace")
        member = old.member
        before = old.status
        _set_status(old, CardStatus.REPLACED, reason or "补卡 replaced")
        new = _create_card(
            actor,
            member=member,
            product=old.product,
            medium=medium,
            number=wanted,
            named=old.named,
            key=key,
            request=request,
        )
        old.replaced_by = new
        old.save(update_fields=["replaced_by"])
        journal = _post_fee(actor, store, member, new, fee, tender, key) if fee.fen else None
        audit_record(
            actor=actor,
            action="cards.replace",
            obj=new,
            detail={
                "member": member.member_no,
                "old": old.number,
                "old_status": before,
                "new": new.number,
                "fee": fee.as_decimal_string(),
                "fee_tender": tender,
                "journal": journal.pk if journal else None,
                "reason": reason,
            },
        )
    return new


def _post_fee(
    actor: Actor, store: Store, member: Member, new: MemberCard, fee: Money, tender: str, key: str
) -> Journal:
    """The ``cards.replace_fee`` journal. Every account it posts to (the member's principal and bonus, or the
    store tender; the store revenue) is locked in ONE ``accounts_lock`` (primary-key order, as a checkout
    locks), never the member's balances first and the store's after: the two cannot deadlock."""
    revenue_key = wallet_services.store_account_key(store=store, kind="revenue")
    if tender == STORED_VALUE:
        wallet_keys = wallet_services.wallet_account_keys(member=member)
        spend_order = wallet_spend_order(store)
        locked = accounts_lock(
            organisation_id=actor.organisation.pk, keys=[wallet_keys.principal, wallet_keys.bonus, revenue_key]
        )
        split = wallet_services.wallet_split_locked(
            member=member, store=store, amount=fee, locked=locked, spend_order=spend_order
        )
        legs = [
            Leg(locked.get(account_key), -part.fen)
            for account_key, part in ((wallet_keys.principal, split.principal), (wallet_keys.bonus, split.bonus))
            if part.fen
        ]
    else:
        tender_key = wallet_services.store_account_key(store=store, kind=f"tender_{tender}")
        locked = accounts_lock(organisation_id=actor.organisation.pk, keys=[tender_key, revenue_key])
        legs = [Leg(locked.get(tender_key), -fee.fen)]
    legs.append(Leg(locked.get(revenue_key), fee.fen))
    (journal,) = journals_post(
        organisation_id=actor.organisation.pk,
        postings=[
            Posting(
                code="cards.replace_fee",
                entries=legs,
                reference_type=CARD_REFERENCE,
                reference_id=str(new.pk),
                staff_id=actor.staff.pk if actor.staff is not None else None,
                store_id=store.pk,
                idempotency_key=f"{key}:cny",
                memo=f"补卡工本费 replacement fee {tender}",
            )
        ],
        locked=locked,
    )
    return journal


# --- Transfer and closing ---------------------------------------------------------------------------------


def card_transfer_balance(
    *,
    actor: Actor,
    card: MemberCard,
    target: Member,
    idempotency_key: str,
    reason: str,
    password: str = "",
    code: str = "",
) -> Journal:
    """Move the card holder's whole stored value (principal, bonus, pending bonus) to another member
    (``wallet.transfer``), only where the acting store allows transfers (``card.transfer_not_allowed``).
    The holder's password or code is checked first when she needs one to pay. The target's cap applies
    (``wallet.cap_exceeded``, field ``target``: her live card's product, else the default product)."""
    actor.require(Perm.PREPAID_REFUND)
    store = _store_required(actor)
    reason = _reason(reason, required=True)
    if not card_settings(store).allow_balance_transfer:
        raise PermissionDenied(
            "card.transfer_not_allowed",
            zh="余额转赠：本店未开通储值余额转赠。",
            en="transfer: this store does not allow stored-value balance transfers.",
            field="target",
        )
    card = card_get(actor, card.pk)
    if card.status != CardStatus.ACTIVE:
        raise _status_error(card, "transfer")
    target = _member_for_card(actor, target, field_name="target")
    if target.pk == card.member_id:
        raise ValidationFailed(
            "card.transfer_same_member",
            zh="转入会员：不能转给持卡人自己。",
            en="target: cannot transfer to the card holder herself.",
            field="target",
        )
    key = validate_key(idempotency_key)
    _authorize(actor, card.member, store, password=password, code=code)
    with transaction.atomic():
        journal = wallet_services.wallet_transfer(
            actor=actor, source=card.member, target=target, idempotency_key=key, reason=reason
        )
        audit_record(
            actor=actor,
            action="cards.transfer",
            obj=card,
            detail={"from": card.member.member_no, "to": target.member_no, "journal": journal.pk, "reason": reason},
        )
    return journal


def card_close(
    *, actor: Actor, card: MemberCard, tender: str, idempotency_key: str, reason: str
) -> WalletClosure | None:
    """Close a card (销卡): the member's wallet is closed (``wallet_close``: the remaining principal paid
    out by ``tender``, bonus forfeited, pending bonus cancelled) and the card's number never works again.
    Returns wallet's ``WalletClosure``, or None when her wallet was already empty (nothing to pay out).
    A retry with the same key returns the first closing.

    No balance is locked here: ``wallet_close`` locks every account it posts to (member and store) in one
    ``accounts_lock``, so a card close and a checkout cannot deadlock; an empty wallet is its refusal
    ``wallet.nothing_to_close``, taken under that lock."""
    actor.require(Perm.PREPAID_REFUND)
    reason = _reason(reason, required=True)
    key = validate_key(idempotency_key)
    with transaction.atomic():
        card = _card_locked(actor, card)
        if card.status == CardStatus.CLOSED and card.closed_key == key:
            return WalletClosure.objects.filter(organisation=actor.organisation, idempotency_key=key).first()
        if card.status not in LIVE_STATUSES:
            raise _status_error(card, "close")
        closure = None
        # An empty wallet needs no tender: without a valid one, only a wallet that holds something is closed
        # (read unlocked; wallet_close then refuses the tender).
        if tender in Tender.values or _wallet_holds_anything(card.member):
            try:
                with transaction.atomic():
                    closure = wallet_services.wallet_close(
                        actor=actor, member=card.member, tender=tender, idempotency_key=key, reason=reason
                    )
            except ApplicationError as exc:
                if exc.code != "wallet.nothing_to_close":
                    raise
        _set_status(card, CardStatus.CLOSED, reason, stamp="closed_at")
        card.closed_key = key
        card.save(update_fields=["closed_key"])
        audit_record(
            actor=actor,
            action="cards.close",
            obj=card,
            detail={
                "member": card.member.member_no,
                "tender": tender,
                "reason": reason,
                "closure": closure.pk if closure is not None else None,
            },
        )
    return closure


def _wallet_holds_anything(member: Member) -> bool:
    balance = wallet_services.wallet_balance(member)
    return bool(balance.total.fen or balance.pending.fen)


# --- Settings --------------------------------------------------------------------------------------------------


def card_settings_set(
    *,
    actor: Actor,
    store: Store,
    replacement_fee: Money,
    allow_balance_transfer: bool,
    require_payment_auth: bool,
) -> CardSettings:
    """Set a store's replacement fee, whether balances may be transferred, and whether every member needs a
    password or a one-time code to pay from stored value. Needs ``store.manage``; audited."""
    actor.require(Perm.STORE_MANAGE)
    store = store_get(actor, store.pk)
    if not isinstance(replacement_fee, Money) or replacement_fee.fen < 0 or replacement_fee.fen > MAX_FEE_FEN:
        raise ValidationFailed(
            "cards.invalid_fee",
            zh=f"补卡工本费：须在 0 到 {Money(MAX_FEE_FEN)} 之间。",
            en=f"replacement_fee: must be between 0.00 and {Money(MAX_FEE_FEN)}.",
            field="replacement_fee",
        )
    with transaction.atomic():
        settings, _ = CardSettings.objects.select_for_update().get_or_create(store=store)
        before = [settings.replacement_fee_fen, settings.allow_balance_transfer, settings.require_payment_auth]
        settings.replacement_fee_fen = replacement_fee.fen
        settings.allow_balance_transfer = bool(allow_balance_transfer)
        settings.require_payment_auth = bool(require_payment_auth)
        settings.save()
        audit_record(
            actor=actor,
            action="cards.settings_set",
            obj=store,
            detail={
                "before": before,
                "after": [settings.replacement_fee_fen, settings.allow_balance_transfer, settings.require_payment_auth],
            },
        )
    return settings


# --- Import -----------------------------------------------------------------------------------------------------

IMPORT_COLUMNS = ("old_number", "member", "product_code")
_COLUMN_ZH = {"old_number": "旧卡号", "member": "会员手机号或会员号", "product_code": "卡种代码"}
_HEADER_WORDS = {"old_number", "旧卡号", "number", "卡号"}


@dataclass(frozen=True)
class ImportProblem:
    line: int
    column: str
    code: str
    zh: str
    en: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "code": self.code, "zh": self.zh, "en": self.en}


@dataclass(frozen=True)
class ImportRow:
    line: int
    old_number: str
    member_id: int
    member_no: str
    product_code: str
    card_number: str  # the live card the old number will find; "" when a new virtual card is issued


@dataclass
class CardImportResult:
    dry_run: bool
    rows: list[ImportRow] = field(default_factory=list)
    errors: list[ImportProblem] = field(default_factory=list)
    cards_created: int = 0
    aliases_created: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


def cards_import(actor: Actor, csv_text: str, dry_run: bool = True) -> CardImportResult:
    """Import old card numbers from another system. Columns: old number, member (phone or member no.),
    product code (empty: the default product). An optional header row is skipped.

    Each old number becomes a ``CardAlias`` of the member's live card; a member without one gets a new
    virtual card of that product first. ``dry_run`` checks everything and writes nothing; a real run with
    any bad row writes nothing and is refused (``cards.import_invalid``, ``extra["errors"]``: line, column,
    rule in zh and en)."""
    actor.require(Perm.CARD_SERVICE)
    result = CardImportResult(dry_run=dry_run)
    parsed = _import_parse(actor, csv_text, result)
    if result.errors:
        if dry_run:
            return result
        raise _import_refused(result)
    result.rows = parsed
    if dry_run:
        result.cards_created = len({r.member_id for r in parsed if not r.card_number})
        result.aliases_created = len(parsed)
        return result
    with transaction.atomic():
        made: dict[int, MemberCard] = {}
        for row in parsed:
            card = made.get(row.member_id)
            if card is None:
                member = Member.objects.select_for_update(no_key=True).get(pk=row.member_id)
                card = member_live_card(member)
                if card is None:
                    product = CardProduct.objects.filter(
                        organisation=actor.organisation, code=row.product_code
                    ).first() or _default_product(actor)
                    card = _create_card(
                        actor,
                        member=member,
                        product=product,
                        medium=CardMedium.VIRTUAL,
                        number="",
                        named=True,
                        key=None,
                    )
                    result.cards_created += 1
                made[row.member_id] = card
            try:
                with transaction.atomic():
                    CardAlias.objects.create(
                        organisation=actor.organisation, number=row.old_number, card=card, created_by=actor.staff
                    )
            except IntegrityError:
                raise _import_refused(
                    CardImportResult(
                        dry_run=False,
                        errors=[_import_error(row.line, "old_number", "card.number_taken", row.old_number)],
                    )
                ) from None
            result.aliases_created += 1
        audit_record(
            actor=actor,
            action="cards.import",
            object_type="cards.CardAlias",
            detail={"rows": len(parsed), "cards_created": result.cards_created, "aliases": result.aliases_created},
        )
    return result


def _import_parse(actor: Actor, csv_text: str, result: CardImportResult) -> list[ImportRow]:
    text = (csv_text or "").lstrip("\ufeff")
    reader = csv.reader(io.StringIO(text))
    rows: list[ImportRow] = []
    seen: dict[str, int] = {}
    live_numbers: dict[int, str] = {}
    products = {p.code: p for p in CardProduct.objects.filter(organisation=actor.organisation, active=True)}
    default = _default_product(actor)
    count = 0
    try:
        records = list(enumerate(reader, start=1))
    except csv.Error as exc:
        result.errors.append(
            ImportProblem(0, "", "cards.import_unreadable", f"文件无法读取：{exc}", f"The file cannot be read: {exc}")
        )
        return []
    for line, record in records:
        cells = [c.strip() for c in record]
        if not any(cells):
            continue
        if count == 0 and cells and cells[0].lower() in _HEADER_WORDS:
            continue
        count += 1
        if count > MAX_IMPORT_ROWS:
            result.errors.append(
                ImportProblem(
                    line,
                    "",
                    "cards.import_too_many",
                    f"第 {line} 行：一次最多导入 {MAX_IMPORT_ROWS} 行。",
                    f"line {line}: at most {MAX_IMPORT_ROWS} rows per import.",
                )
            )
            break
        if len(cells) not in (2, 3):
            result.errors.append(
                ImportProblem(
                    line,
                    "",
                    "cards.import_columns",
                    f"第 {line} 行：应有 3 列（旧卡号、会员手机号或会员号、卡种代码），实际 {len(cells)} 列。",
                    f"line {line}: expected 3 columns (old number, member phone or member no., product code), "
                    f"found {len(cells)}.",
                )
            )
            continue
        old_raw, member_ref = cells[0], cells[1]
        product_code = cells[2] if len(cells) == 3 else ""
        bad = False
        old = normalise_number(old_raw)
        if not old:
            result.errors.append(_import_error(line, "old_number", "input.required", old_raw))
            bad = True
        elif not NUMBER_RE.match(old):
            result.errors.append(_import_error(line, "old_number", "card.invalid_number", old_raw))
            bad = True
        elif old in seen:
            result.errors.append(_import_error(line, "old_number", "cards.import_duplicate", old_raw, other=seen[old]))
            bad = True
        elif _number_in_use(actor, old):
            result.errors.append(_import_error(line, "old_number", "card.number_taken", old_raw))
            bad = True
        else:
            seen[old] = line
        member = _import_member(actor, member_ref)
        if member is None:
            result.errors.append(_import_error(line, "member", "member.not_found", member_ref))
            bad = True
        product: CardProduct | None
        if product_code:
            product = products.get(product_code)
            if product is None:
                result.errors.append(_import_error(line, "product_code", "card.product_not_found", product_code))
                bad = True
        else:
            product = default
        if bad or member is None:
            continue
        if member.pk not in live_numbers:
            live = member_live_card(member)
            live_numbers[member.pk] = live.number if live is not None else ""
        rows.append(
            ImportRow(
                line=line,
                old_number=old,
                member_id=member.pk,
                member_no=member.member_no,
                product_code=product.code if product is not None else "",
                card_number=live_numbers[member.pk],
            )
        )
    if count == 0 and not result.errors:
        result.errors.append(
            ImportProblem(0, "", "cards.import_empty", "文件中没有数据行。", "The file has no data rows.")
        )
    return rows


def _import_member(actor: Actor, ref: str) -> Member | None:
    ref = (ref or "").strip()
    if not ref:
        return None
    digits = re.sub(r"\D", "", ref)
    if len(digits) == 11 and digits == ref.replace(" ", "").replace("-", "").lstrip("+"):
        found = member_find_by_phone(actor, digits)
        if found is not None:
            return found
    return members_visible(actor).filter(member_no=ref).first()


def _import_error(line: int, column: str, code: str, value: str, *, other: int = 0) -> ImportProblem:
    zh_col = _COLUMN_ZH.get(column, column)
    rules = {
        "input.required": ("必填", "this field is required"),
        "card.invalid_number": ("须为 4 到 32 位字母、数字或短横线", "must be 4 to 32 letters, digits or dashes"),
        "cards.import_duplicate": (f"与第 {other} 行重复", f"repeats line {other}"),
        "card.number_taken": ("该号码已是本机构的卡号或旧卡号", "is already a card number or old number here"),
        "member.not_found": ("找不到该会员，或您无权查看", "no such member, or not visible to you"),
        "card.product_not_found": ("找不到该卡种或已停用", "no such card product, or it is inactive"),
    }
    zh_rule, en_rule = rules[code]
    return ImportProblem(
        line,
        column,
        code,
        f"第 {line} 行，{zh_col}「{value}」：{zh_rule}。",
        f"line {line}, {column} {value!r}: {en_rule}.",
    )


def _import_refused(result: CardImportResult) -> ValidationFailed:
    first = result.errors[0]
    return ValidationFailed(
        "cards.import_invalid",
        zh=f"导入未执行：{len(result.errors)} 处错误，例如 {first.zh}",
        en=f"Nothing was imported: {len(result.errors)} errors, e.g. {first.en}",
        field="file",
        extra={"errors": [e.as_dict() for e in result.errors]},
    )


# --- Payment security ---------------------------------------------------------------------------------------


def payment_code_send(*, actor: Actor, member: Member, purpose: str) -> PaymentCode:
    """Send a 6-digit one-time code to the member's phone by SMS (event ``wallet.payment_code``), valid
    5 minutes. ``purpose``: ``payment`` (pay from stored value without a password) or ``password`` (the
    identity check before setting or resetting the payment password). At most one code a minute
    (``cards.code_too_soon``, ``extra["retry_after"]`` seconds) and 10 a day (``cards.code_daily_limit``)
    per member. A new code replaces the member's unused codes of the same purpose. The code is never
    returned, stored in plain text or shown to staff."""
    actor.require(Perm.CARD_SERVICE)
    member = member_get(actor, member.pk)
    if purpose not in CodePurpose.values:
        raise ValidationFailed(
            "cards.invalid_purpose",
            zh=f"用途：{purpose!r} 无效，可选 payment、password。",
            en=f"purpose: {purpose!r} is not valid; use payment or password.",
            field="purpose",
        )
    if not member.phone:
        raise ValidationFailed(
            "cards.no_phone",
            zh="会员没有手机号，无法发送验证码。",
            en="The member has no phone number to send a code to.",
            field="member",
        )
    now = _now()
    with transaction.atomic():
        _state_locked(member)
        recent = PaymentCode.objects.filter(member=member, created_at__gt=now - timedelta(days=1))
        last = recent.order_by("-created_at").first()
        if last is not None and now - last.created_at < CODE_INTERVAL:
            wait = max(1, math.ceil((CODE_INTERVAL - (now - last.created_at)).total_seconds()))
            raise ApplicationError(
                "cards.code_too_soon",
                zh=f"验证码：发送过于频繁，请 {wait} 秒后再试。",
                en=f"code: sent too recently; try again in {wait} seconds.",
                field="code",
                extra={"retry_after": wait},
            )
        if recent.count() >= CODE_DAILY_LIMIT:
            raise ApplicationError(
                "cards.code_daily_limit",
                zh=f"验证码：每位会员 24 小时内最多发送 {CODE_DAILY_LIMIT} 次。",
                en=f"code: at most {CODE_DAILY_LIMIT} codes per member in 24 hours.",
                field="code",
            )
        PaymentCode.objects.filter(member=member, purpose=purpose, used_at__isnull=True).update(
            expires_at=now, code_sealed=None
        )
        plain = _new_code()
        record = PaymentCode.objects.create(
            organisation=actor.organisation,
            member=member,
            purpose=purpose,
            code_hash=make_password(plain),
            code_sealed=plain,
            created_at=now,
            expires_at=now + CODE_LIFETIME,
            sent_by=actor.staff,
        )
        record.message_key = f"{WALLET_PAYMENT_CODE}:{record.pk}"
        record.save(update_fields=["message_key"])
        notify_event(
            actor=actor,
            member=member,
            event=WALLET_PAYMENT_CODE,
            context={"code": plain, "minutes": int(CODE_LIFETIME.total_seconds() // 60)},
            idempotency_key=record.message_key,
            channels=("sms",),
            secret="code",  # noqa: S106 - the name of the secret variable, not a secret
        )
        audit_record(
            actor=actor, action="cards.code_send", obj=member, detail={"purpose": purpose, "code_id": record.pk}
        )
    return record


def payment_code_secret(message: Message) -> str | None:
    """``notify.services.SECRET_SOURCES`` entry: the plain code for its SMS, while it is still valid."""
    record = PaymentCode.objects.filter(
        organisation_id=message.organisation_id,
        message_key=message.idempotency_key,
        used_at__isnull=True,
        expires_at__gt=_now(),
    ).first()
    return record.code_sealed if record is not None and record.code_sealed else None


def payment_password_set(*, actor: Actor, member: Member, password: str, code: str) -> None:
    """Set or reset the member's 6-digit payment password, typed by the member. Needs a valid one-time code
    of purpose ``password`` sent to her phone (the identity check). Refuses trivial passwords
    (``cards.password_trivial``: all one digit, ascending or descending runs such as 123456 / 654321, the
    last six digits of her phone). Resets the lock-out. Nothing is returned; staff can never read it."""
    actor.require(Perm.CARD_SERVICE)
    member = member_get(actor, member.pk)
    password = password or ""
    if not PASSWORD_RE.match(password):
        raise ValidationFailed(
            "cards.password_invalid",
            zh="支付密码：须为 6 位数字。",
            en="password: must be exactly 6 digits.",
            field="password",
        )
    if _trivial(password, member.phone or ""):
        raise ValidationFailed(
            "cards.password_trivial",
            zh="支付密码：过于简单（相同数字、连续数字或手机号后六位），请换一个。",
            en="password: too easy to guess (one repeated digit, a run like 123456, or the phone's last six digits).",
            field="password",
        )
    if not (code or "").strip():
        raise ValidationFailed(
            "cards.code_required",
            zh="验证码：设置或重置支付密码需要会员手机收到的验证码。",
            en="code: setting or resetting the payment password needs the code sent to the member's phone.",
            field="code",
        )
    failure: ApplicationError | None = None
    with transaction.atomic():
        state = _state_locked(member)
        now = _now()
        record, failure = _code_use(member, CodePurpose.PASSWORD, code, now)
        if record is not None:
            reset = state.is_set
            state.password_hash = make_password(password)
            state.set_at = now
            state.failures = 0
            state.locked_until = None
            state.save()
            audit_record(actor=actor, action="cards.payment_password_set", obj=member, detail={"reset": reset})
    if failure is not None:
        raise failure


def stored_value_authorize(
    *, actor: Actor, member: Member, password: str = "", code: str = "", card_number: str = ""
) -> Member:
    """May the member pay from stored value now (ADR 0006)? Returns the member as ``members.selectors.
    member_get`` reads her (same scope, same related rows: a checkout need not read her again), or raises:

    - ``card.lost`` / ``card.frozen`` / ``card.closed`` / ``card.replaced``: the card used, or the member's
      live card (a lost card stops stored-value payment whatever number is used);
    - when she has a password or the acting store requires it: ``wallet.payment_locked`` (``extra
      ["locked_until"]``), ``wallet.payment_auth_required``, ``wallet.payment_password_wrong`` /
      ``wallet.payment_code_wrong`` (``extra["tries_left"]``). Five wrong tries in a row lock stored-value
      payment for 30 minutes; a success resets the count.

    Runs in its own transaction and commits the failure count before raising: call it before opening the
    operation's transaction.
    """
    gate = _payment_gate(actor, member.pk)
    member = gate.member
    if (card_number or "").strip():
        card = card_for_number(actor, card_number)
        if card.member_id != member.pk:
            raise ValidationFailed(
                "card.wrong_member",
                zh=f"卡号 {card.number}：不是该会员的卡。",
                en=f"card number {card.number}: this card belongs to another member.",
                field="card_number",
            )
        _refuse_card_status(card)
    if gate.live_status is not None and gate.live_status != CardStatus.ACTIVE:
        live = member_live_card(member)
        if live is not None:
            _refuse_card_status(live)
    if gate.has_password or gate.store_requires_auth:
        _authorize(actor, member, actor.store, password=password, code=code, required=True)
    return member


@dataclass(frozen=True)
class _PaymentGate:
    member: Member
    live_status: str | None  # the status of her active, frozen or lost card, if she has one
    has_password: bool
    store_requires_auth: bool


def _payment_gate_query(
    organisation_id: int, member_id: int, store_id: int, staff_id: int | None = None
) -> QuerySet[Member]:
    """The scope of ``members.selectors.member_get`` (a staff member's visible stores as a subquery), with the
    member's live card status, whether she has a payment password and whether the store requires one."""
    return (
        members_visible_by_ids(organisation_id, staff_id)
        .filter(pk=member_id)
        .select_related("home_store", "referrer")  # as member_get
        .annotate(
            _live_status=Subquery(
                MemberCard.objects.filter(member=OuterRef("pk"), status__in=LIVE_STATUSES).values("status")[:1]
            ),
            _has_password=Exists(PaymentPassword.objects.filter(member=OuterRef("pk")).exclude(password_hash="")),
            _store_requires=Exists(CardSettings.objects.filter(store_id=store_id, require_payment_auth=True)),
        )
        .order_by("pk")[:1]
    )


# Compiled once per connection (meiye.core.db.prepared): every stored-value payment asks.
_GATE_ANY_STORE: PreparedQuery[Member] = PreparedQuery(_payment_gate_query, [int, int, int])
_GATE_OWN_STORES: PreparedQuery[Member] = PreparedQuery(_payment_gate_query, [int, int, int, int])


def _payment_gate(actor: Actor, member_id: int) -> _PaymentGate:
    """What ``stored_value_authorize`` decides on, in ONE query (the checkout's hot path): the member as
    the actor may see her (``member.not_found`` otherwise), her live card's status, whether she has a payment
    password and whether the acting store requires one from everybody."""
    store_id = actor.store.pk if actor.store is not None else 0  # 0: no store, which requires nothing
    actor.require(Perm.MEMBER_VIEW)
    row = first_in_scope(actor, _GATE_ANY_STORE, _GATE_OWN_STORES, member_id, store_id)
    if row is None:
        raise not_found("member.not_found", "会员", "Member")
    annotated: Any = row
    return _PaymentGate(
        member=row,
        live_status=annotated._live_status,
        has_password=bool(annotated._has_password),
        store_requires_auth=bool(annotated._store_requires),
    )


def _authorize(
    actor: Actor, member: Member, store: Store | None, *, password: str, code: str, required: bool = False
) -> None:
    """The password / code check of ``stored_value_authorize`` (own transaction, committed failures).
    ``required``: the caller knows authorisation is needed (else it is looked up)."""
    if not required and not payment_auth_required(member, store):
        return
    password, code = (password or "").strip(), (code or "").strip()
    failure: ApplicationError | None = None
    counted_at: datetime | None = None
    code_again: Callable[[], None] | None = None
    with transaction.atomic():
        state = _state_locked(member)
        now = _now()
        if state.locked_until is not None and state.locked_until > now:
            failure = _locked_error(state.locked_until)
        elif not password and not code:
            failure = ApplicationError(
                "wallet.payment_auth_required",
                zh="储值支付：请会员输入支付密码，或发送验证码到会员手机。",
                en="stored value: the member must enter her payment password or a code sent to her phone.",
                field="password" if state.is_set else "code",
                extra={"has_password": state.is_set},
            )
        else:
            ok = False
            wrong_code = ""
            if password and state.is_set and check_password(password, state.password_hash):
                ok = True
            if not ok and code:
                record, code_error = _code_use(member, CodePurpose.PAYMENT, code, now)
                ok = record is not None
                wrong_code = "" if ok else "code"
                code_again = code_error.after_rollback if code_error is not None else None
            if ok:
                if state.failures or state.locked_until is not None:
                    state.failures = 0
                    state.locked_until = None
                    state.save(update_fields=["failures", "locked_until", "updated_at"])
            else:
                counted_at = _count_failure(actor, member, state, now)
                if state.locked_until is not None:
                    failure = _locked_error(state.locked_until)
                else:
                    left = MAX_FAILURES - state.failures
                    if wrong_code and not password:
                        failure = ApplicationError(
                            "wallet.payment_code_wrong",
                            zh=f"验证码错误或已失效，还可尝试 {left} 次。",
                            en=f"code: wrong or expired; {left} tries left.",
                            field="code",
                            extra={"tries_left": left},
                        )
                    else:
                        failure = ApplicationError(
                            "wallet.payment_password_wrong",
                            zh=f"支付密码错误，还可尝试 {left} 次。",
                            en=f"password: wrong payment password; {left} tries left.",
                            field="password",
                            extra={"tries_left": left},
                        )
    if failure is not None:
        if counted_at is not None:
            # Inside a caller's transaction (an API request runs in one) the count above is rolled back with
            # the refused operation: the interface then counts the failure again, unless it stood — and the
            # wrong code's attempt on the code too.
            failure.after_rollback = functools.partial(_count_failure_again, actor, member.pk, counted_at, code_again)
        raise failure


def _count_failure(actor: Actor, member: Member, state: PaymentPassword, now: datetime) -> datetime:
    """One more wrong password or code on the locked ``state``; the fifth in a row locks stored value for
    ``LOCK_TIME`` (audited). Returns the row's new ``updated_at``, which tells whether the write stood."""
    state.failures += 1
    if state.failures >= MAX_FAILURES:
        state.failures = 0
        state.locked_until = now + LOCK_TIME
        state.save(update_fields=["failures", "locked_until", "updated_at"])
        audit_record(
            actor=actor, action="cards.payment_locked", obj=member, detail={"until": state.locked_until.isoformat()}
        )
    else:
        state.save(update_fields=["failures", "updated_at"])
    return state.updated_at


def _count_failure_again(
    actor: Actor, member_id: int, counted_at: datetime, code_again: Callable[[], None] | None = None
) -> None:
    """``ApplicationError.after_rollback`` of a wrong password or code: count it in a transaction of its own
    if the caller's rollback took the first count away (the row no longer shows that write); ``code_again``
    does the same for the wrong code's attempt on the code."""
    if code_again is not None:
        code_again()
    with transaction.atomic():
        member = Member.objects.filter(pk=member_id).first()
        if member is None:
            return
        state = _state_locked(member)
        if state.updated_at == counted_at:
            return  # the first count stood
        _count_failure(actor, member, state, _now())


def _locked_error(until: datetime) -> ApplicationError:
    local = timezone.localtime(until).strftime("%H:%M")
    return ApplicationError(
        "wallet.payment_locked",
        zh=f"储值支付：连续输错 {MAX_FAILURES} 次，已锁定至 {local}。",
        en=f"stored value: locked after {MAX_FAILURES} wrong tries until {local}.",
        field="password",
        extra={"locked_until": until.isoformat()},
    )


def _code_use(
    member: Member, purpose: str, code: str, now: datetime
) -> tuple[PaymentCode | None, ApplicationError | None]:
    """Check and use the member's latest valid code of ``purpose``: the code row, or None and the error.
    Each code allows ``CODE_MAX_ATTEMPTS`` wrong tries."""
    code = (code or "").strip()
    record = (
        PaymentCode.objects.select_for_update()
        .filter(member=member, purpose=purpose, used_at__isnull=True, expires_at__gt=now)
        .order_by("-created_at")
        .first()
    )
    if record is not None and record.attempts < CODE_MAX_ATTEMPTS and check_password(code, record.code_hash):
        record.used_at = now
        record.code_sealed = None
        record.save(update_fields=["used_at", "code_sealed"])
        return record, None
    error = ValidationFailed(
        "cards.code_wrong",
        zh="验证码：错误或已过期，请重新获取。",
        en="code: wrong or expired; send a new one.",
        field="code",
    )
    if record is not None:
        record.attempts += 1
        record.save(update_fields=["attempts"])
        # Counted again after a caller's rollback (an API request's transaction), unless this count stood.
        error.after_rollback = functools.partial(_count_code_attempt_again, record.pk, record.attempts)
    return None, error


def _count_code_attempt_again(code_id: int, counted: int) -> None:
    """``ApplicationError.after_rollback`` of a wrong code: one more attempt on the code, unless the row still
    shows the count written (it stood) or more."""
    with transaction.atomic():
        record = PaymentCode.objects.select_for_update().filter(pk=code_id).first()
        if record is not None and record.attempts < counted:
            record.attempts += 1
            record.save(update_fields=["attempts"])


def _state_locked(member: Member) -> PaymentPassword:
    state, _ = PaymentPassword.objects.get_or_create(member=member)
    return PaymentPassword.objects.select_for_update().get(pk=state.pk)


def _trivial(password: str, phone: str) -> bool:
    digits = [int(c) for c in password]
    steps = {b - a for a, b in itertools.pairwise(digits)}
    if steps in ({0}, {1}, {-1}):
        return True
    phone_digits = re.sub(r"\D", "", phone)
    return len(phone_digits) >= 6 and phone_digits[-6:] == password


def _refuse_card_status(card: MemberCard) -> None:
    if card.status == CardStatus.LOST:
        raise ApplicationError(
            "card.lost",
            zh=f"会员卡 {card.number} 已挂失：储值支付已停止，请先补卡或解挂。",
            en=f"card {card.number} was reported lost: stored-value payment is stopped until it is replaced or found.",
            field="card_number",
            extra={"card_number": card.number},
        )
    if card.status == CardStatus.FROZEN:
        raise ApplicationError(
            "card.frozen",
            zh=f"会员卡 {card.number} 已冻结：储值支付已停止。",
            en=f"card {card.number} is frozen: stored-value payment is stopped.",
            field="card_number",
            extra={"card_number": card.number},
        )
    if card.status == CardStatus.CLOSED:
        raise ApplicationError(
            "card.closed",
            zh=f"会员卡 {card.number} 已销卡。",
            en=f"card {card.number} is closed.",
            field="card_number",
        )
    if card.status == CardStatus.REPLACED:
        raise ApplicationError(
            "card.replaced",
            zh=f"会员卡 {card.number} 已补办新卡，旧卡号不能再使用。",
            en=f"card {card.number} was replaced; its number no longer works.",
            field="card_number",
        )


# --- Job: one-time codes ------------------------------------------------------------------------------------

CODE_RETENTION_DAYS = 30


def payment_codes_purge_due(*, on: date, organisation_id: int | None = None) -> int:
    """Hourly/nightly clean-up of one-time codes, set-based and idempotent: the encrypted copy of every
    expired code is wiped (it was only kept for the SMS), and codes created more than 30 days before ``on``
    are deleted (the rate limit needs a day of them; 30 days answer a member's "who sent me a code?").
    Returns the number of rows changed."""
    cutoff = timezone.make_aware(datetime.combine(on - timedelta(days=CODE_RETENTION_DAYS), time.min))
    codes = PaymentCode.objects.all()
    if organisation_id is not None:
        codes = codes.filter(organisation_id=organisation_id)
    with transaction.atomic():
        wiped = codes.filter(expires_at__lte=_now(), code_sealed__isnull=False).update(code_sealed=None)
        deleted, _ = codes.filter(created_at__lt=cutoff).delete()
    return wiped + deleted


# --- Member merge, export ------------------------------------------------------------------------------------


def cards_merge(actor: Actor, survivor: Member, merged: Member) -> dict[str, Any]:
    """``members.services.MERGE_HOOKS`` entry: the merged member's cards move to the survivor. If both
    hold a live card, the survivor keeps hers and the merged member's becomes ``replaced`` by it (one live
    card per member); its number then names the survivor's card in the refusal.

    Payment password: her stored value now sits in the survivor's wallet, so it stays protected. When the
    survivor has no password, the merged member's (hash, date and lock-out state) becomes hers; when both
    have one, the survivor keeps her own (she is the one who pays from now on) and the merged member's row is
    left with the tombstone."""
    survivor_live = MemberCard.objects.select_for_update().filter(member=survivor, status__in=LIVE_STATUSES).first()
    merged_live = MemberCard.objects.select_for_update().filter(member=merged, status__in=LIVE_STATUSES).first()
    retired = ""
    if survivor_live is not None and merged_live is not None:
        _set_status(merged_live, CardStatus.REPLACED, "会员合并 member merge")
        merged_live.replaced_by = survivor_live
        merged_live.save(update_fields=["replaced_by"])
        retired = merged_live.number
    moved = MemberCard.objects.filter(member=merged).update(member=survivor)
    return {"cards": moved, "cards_retired": retired, "payment_password": _merge_password(survivor, merged)}


def _merge_password(survivor: Member, merged: Member) -> str:
    """ "carried" (the merged member's password is now the survivor's), "kept" (both had one: the
    survivor's stays) or "" (the merged member had none)."""
    theirs = PaymentPassword.objects.select_for_update().filter(member=merged).exclude(password_hash="").first()
    if theirs is None:
        return ""
    mine = PaymentPassword.objects.select_for_update().filter(member=survivor).first()
    if mine is not None and mine.password_hash:
        return "kept"
    if mine is None:
        theirs.member = survivor
        theirs.save(update_fields=["member", "updated_at"])
        return "carried"
    mine.password_hash, mine.set_at = theirs.password_hash, theirs.set_at
    mine.failures = max(mine.failures, theirs.failures)
    if theirs.locked_until is not None and (mine.locked_until is None or theirs.locked_until > mine.locked_until):
        mine.locked_until = theirs.locked_until
    mine.save(update_fields=["password_hash", "set_at", "failures", "locked_until", "updated_at"])
    theirs.password_hash, theirs.set_at = "", None
    theirs.save(update_fields=["password_hash", "set_at", "updated_at"])
    return "carried"


def _live_card_product(member: Member) -> tuple[CardProduct | None, bool] | None:
    """``wallet.services.TARGET_PRODUCT_SOURCES`` entry: the product (else the default) and named flag of the
    member's live card; None when she has none."""
    card = member_live_card(member)
    if card is None:
        return None
    return (card.product or card_product_default(member.organisation_id), card.named)


# Registered when this module is imported (``CardsConfig.ready`` imports it), like the merge hook.
if _live_card_product not in wallet_services.TARGET_PRODUCT_SOURCES:
    wallet_services.TARGET_PRODUCT_SOURCES.append(_live_card_product)


def cards_export_section(member: Member) -> tuple[str, Any]:
    """``members.services.EXPORT_SECTIONS`` entry: her cards and whether a payment password is set."""
    state = PaymentPassword.objects.filter(member=member).first()
    return (
        "cards",
        {
            "cards": [
                {
                    "number": c.number,
                    "status": c.status,
                    "medium": c.medium,
                    "named": c.named,
                    "product": c.product.name if c.product else None,
                    "issued_at": c.issued_at.isoformat(),
                    "old_numbers": sorted(a.number for a in c.aliases.all()),
                }
                for c in member_cards(member).prefetch_related("aliases")
            ],
            "payment_password_set": bool(state and state.is_set),
        },
    )


# --- internals -------------------------------------------------------------------------------------------------


def _member_for_card(actor: Actor, member: Member, *, field_name: str = "member") -> Member:
    member = member_get(actor, member.pk)
    if member.status != MemberStatus.ACTIVE:
        raise ValidationFailed(
            "card.member_inactive",
            zh=f"会员 {member.member_no} 已停用，不能办理。",
            en=f"member {member.member_no} is not active.",
            field=field_name,
        )
    return member


def _default_product(actor: Actor) -> CardProduct | None:
    return CardProduct.objects.filter(organisation=actor.organisation, is_default=True, active=True).first()


def _product(actor: Actor, product: CardProduct | None) -> CardProduct | None:
    if product is None:
        return _default_product(actor)
    found = CardProduct.objects.filter(organisation=actor.organisation, pk=product.pk, active=True).first()
    if found is None:
        raise NotFound(
            "card.product_not_found",
            zh="卡种：找不到或已停用。",
            en="product: not found, or no longer active.",
            field="product",
        )
    return found


def _valid_number(number: str) -> str:
    wanted = normalise_number(number)
    if not NUMBER_RE.match(wanted):
        raise ValidationFailed(
            "card.invalid_number",
            zh="卡号：须为 4 到 32 位字母、数字或短横线。",
            en="number: must be 4 to 32 letters, digits or dashes.",
            field="number",
        )
    return wanted


def _medium_and_number(medium: str, number: str) -> tuple[str, str]:
    if medium not in CardMedium.values:
        raise ValidationFailed(
            "card.invalid_medium",
            zh=f"介质：{medium!r} 无效，可选 physical（实体卡）、virtual（电子卡）。",
            en=f"medium: {medium!r} is not valid; use physical or virtual.",
            field="medium",
        )
    if medium == CardMedium.VIRTUAL:
        if (number or "").strip():
            raise ValidationFailed(
                "card.virtual_number_generated",
                zh="卡号：电子卡的卡号由系统生成，请不要填写。",
                en="number: a virtual card's number is generated; leave it empty.",
                field="number",
            )
        return medium, ""
    if not (number or "").strip():
        raise ValidationFailed(
            "input.required",
            zh="卡号：实体卡请输入或扫描卡号。",
            en="number: type or scan the physical card's number.",
            field="number",
        )
    return medium, _valid_number(number)


def _number_in_use(actor: Actor, number: str) -> bool:
    return (
        MemberCard.objects.filter(organisation=actor.organisation, number=number).exists()
        or CardAlias.objects.filter(organisation=actor.organisation, number=number).exists()
    )


def _check_number_free(actor: Actor, number: str) -> None:
    if _number_in_use(actor, number):
        raise Conflict(
            "card.number_taken",
            zh=f"卡号 {number}：已被使用（本机构的卡号或旧卡号）。",
            en=f"number {number}: already in use (a card number or an old number here).",
            field="number",
        )


def _new_virtual_number(actor: Actor) -> str:
    for _ in range(20):
        candidate = f"{VIRTUAL_PREFIX}{secrets.randbelow(10**8):08d}"
        if not _number_in_use(actor, candidate):
            return candidate
    raise RuntimeError("could not find a free virtual card number")  # pragma: no cover - 10^8 numbers


def _create_card(
    actor: Actor,
    *,
    member: Member,
    product: CardProduct | None,
    medium: str,
    number: str,
    named: bool,
    key: str | None,
    request: dict[str, Any] | None = None,
) -> MemberCard:
    if number:
        _check_number_free(actor, number)
    else:
        number = _new_virtual_number(actor)
    try:
        with transaction.atomic():
            return MemberCard.objects.create(
                organisation=actor.organisation,
                member=member,
                number=number,
                product=product,
                named=named,
                medium=medium,
                status=CardStatus.ACTIVE,
                issued_store=actor.store,
                issued_by=actor.staff,
                status_changed_at=_now(),
                idempotency_key=key,
                request_hash=canonical_hash(request) if request is not None else "",
            )
    except IntegrityError:
        # A concurrent issue took the number (or gave her a live card) first.
        raise Conflict(
            "card.number_taken",
            zh=f"卡号 {number}：刚被占用，或会员已有在用的卡，请重试。",
            en=f"number {number}: just taken, or the member already holds a live card; try again.",
            field="number",
        ) from None


def _card_replay(actor: Actor, key: str, request: dict[str, Any]) -> MemberCard | None:
    first = MemberCard.objects.filter(organisation=actor.organisation, idempotency_key=key).first()
    if first is None:
        return None
    if first.request_hash != canonical_hash(request):
        raise conflict_error(key)
    return first


def _card_locked(actor: Actor, card: MemberCard) -> MemberCard:
    visible = card_get(actor, card.pk)
    return MemberCard.objects.select_for_update(of=("self",)).select_related("member", "product").get(pk=visible.pk)


def _set_status(card: MemberCard, status: str, reason: str, *, stamp: str = "") -> None:
    now = _now()
    card.status = status
    card.status_changed_at = now
    card.status_reason = reason[:MAX_REASON]
    fields = ["status", "status_changed_at", "status_reason"]
    if stamp:
        setattr(card, stamp, now)
        fields.append(stamp)
    card.save(update_fields=fields)


def _status_error(card: MemberCard, operation: str) -> ApplicationError:
    labels = {
        "bind": ("绑定实体卡", "bind"),
        "freeze": ("冻结", "freeze"),
        "unfreeze": ("解冻/解挂", "unfreeze"),
        "report_lost": ("挂失", "report lost"),
        "replace": ("补卡", "replace"),
        "transfer": ("转赠余额", "transfer from"),
        "close": ("销卡", "close"),
    }
    zh_op, en_op = labels[operation]
    code = {
        CardStatus.LOST: "card.lost",
        CardStatus.FROZEN: "card.frozen",
        CardStatus.CLOSED: "card.closed",
        CardStatus.REPLACED: "card.replaced",
    }.get(CardStatus(card.status), "card.invalid_status")
    return ApplicationError(
        code,
        zh=f"会员卡 {card.number} 当前状态为「{card.get_status_display()}」，不能{zh_op}。",
        en=f"card {card.number} is {card.status}; cannot {en_op} it.",
        field="card",
        extra={"status": card.status},
    )


def _reason(reason: str, *, required: bool) -> str:
    reason = (reason or "").strip()
    if required and not reason:
        raise ValidationFailed(
            "input.required", zh="原因：必填。", en="reason: this field is required.", field="reason"
        )
    if len(reason) > MAX_REASON:
        raise ValidationFailed(
            "input.too_long",
            zh=f"原因：最多 {MAX_REASON} 个字符。",
            en=f"reason: at most {MAX_REASON} characters.",
            field="reason",
        )
    return reason


def _store_required(actor: Actor) -> Store:
    store = actor.store
    if store is None or store.organisation_id != actor.organisation.pk:
        raise ValidationFailed(
            "cards.store_required",
            zh="请先选择当前门店。",
            en="Choose the current store first.",
            field="store",
        )
    return store
