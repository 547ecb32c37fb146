"""Writing the ledger. These functions are the only code that creates accounts and journals or changes
balances; other apps call them from inside their own service's transaction.

A post runs in one ``transaction.atomic()``: it locks the affected balance rows in primary-key order
(``select_for_update``; on SQLite the IMMEDIATE transaction already holds the write lock), checks the
request, writes the journal and its entries and updates the balances. A refused post writes nothing.

How the rules are enforced, in Python and in the database (migration 0002):

- entries are non-zero: checked here, and a CHECK constraint on ``ledger_entry``;
- a journal nets to zero per asset: checked here; on PostgreSQL also a DEFERRABLE INITIALLY DEFERRED
  constraint trigger that re-checks at COMMIT. SQLite has no deferred triggers and an immediate
  trigger would reject the first entry of every journal, so there the check is this service plus the
  nightly ``ledger_verify``;
- an entry's asset equals its account's asset: set here; a trigger checks it on both databases;
- a non-negative account never goes below zero: checked here (the ``ledger.insufficient_balance``
  error), and a CHECK constraint on ``ledger_balance``;
- journals and entries are append-only: UPDATE/DELETE triggers (``meiye.core.immutable``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from django.db import IntegrityError, transaction

from meiye.core.errors import ApplicationError, Conflict, ValidationFailed
from meiye.core.idempotency import canonical_hash, validate_key
from meiye.ledger.models import ASSET_MAX_LENGTH, CODE_MAX_LENGTH, Account, Balance, Entry, Journal

# Far beyond any real amount of fen, points or sessions, and far inside a signed 64-bit column, so that
# no sum of entries can overflow.
MAX_AMOUNT = 10**15


class Leg(NamedTuple):
    """One line of a journal to post. ``amount`` is signed: positive raises the account's balance.

    A plain ``(account, amount)`` tuple is accepted wherever a ``Leg`` is.
    """

    account: Account
    amount: int


def account_get_or_create(
    *,
    organisation_id: int,
    owner_type: str,
    owner_id: int,
    asset: str,
    kind: str,
    may_go_negative: bool = False,
) -> Account:
    """The account for (organisation, owner, asset, kind), created with its zero balance row if new.

    ``may_go_negative`` is fixed when the account is created; asking for the same account with the
    other value is a programming error and is refused rather than silently ignored.
    """
    _require_text("owner_type", owner_type, 32)
    _require_text("asset", asset, ASSET_MAX_LENGTH)
    _require_text("kind", kind, 32)
    identity = {
        "organisation_id": organisation_id,
        "owner_type": owner_type,
        "owner_id": owner_id,
        "asset": asset,
        "kind": kind,
    }
    account = Account.objects.filter(**identity).first()
    if account is None:
        try:
            with transaction.atomic():
                account = Account.objects.create(**identity, may_go_negative=may_go_negative)
                Balance.objects.create(account=account, amount=0, may_go_negative=may_go_negative)
        except IntegrityError:
            # Created at the same moment by another request: use theirs.
            account = Account.objects.filter(**identity).first()
            if account is None:
                raise
    if account.may_go_negative != may_go_negative:
        raise Conflict(
            "ledger.account_flag_mismatch",
            zh=f"账户 {account} 已存在，但“允许负余额”设置不同。",
            en=f"Account {account} exists with a different may-go-negative setting.",
        )
    return account


def journal_post(
    *,
    organisation_id: int,
    code: str,
    entries: Sequence[tuple[Account, int]],
    reference_type: str = "",
    reference_id: str = "",
    staff_id: int | None = None,
    store_id: int | None = None,
    idempotency_key: str | None = None,
    memo: str = "",
) -> Journal:
    """Post one journal and update the balances it touches; returns the journal.

    With an ``idempotency_key``: a replay of the same request (same payload hash) returns the journal
    written the first time and writes nothing; the same key with a different payload is refused with
    ``ledger.idempotency_conflict``.
    """
    return _post(
        organisation_id=organisation_id,
        code=code,
        legs=entries,
        reference_type=reference_type,
        reference_id=reference_id,
        staff_id=staff_id,
        store_id=store_id,
        idempotency_key=idempotency_key,
        memo=memo,
        reversal_of=None,
    )


def journal_reverse(
    *,
    journal: Journal,
    code: str | None = None,
    staff_id: int | None = None,
    idempotency_key: str | None = None,
    memo: str = "",
) -> Journal:
    """Post the mirror image of ``journal`` (every entry negated), linked by ``reversal_of``.

    A journal is reversed at most once (``ledger.already_reversed``). A reversal is an ordinary post:
    if undoing it would take a non-negative account below zero (a recharge whose money was already
    spent), it is refused with ``ledger.insufficient_balance``. There is deliberately no override:
    the balance CHECK constraint would refuse it anyway, and the calling app must decide what the
    correction is (e.g. reverse the spending first, or post a different adjustment).

    The default code is the original's with ".reversal" appended (a reversal of a reversal gets the
    original code back, so codes never grow); reference and store are copied.
    """
    legs = [Leg(entry.account, -entry.amount) for entry in journal.entries.select_related("account").order_by("pk")]
    return _post(
        organisation_id=journal.organisation_id,
        code=code if code is not None else _reversal_code(journal.code),
        legs=legs,
        reference_type=journal.reference_type,
        reference_id=journal.reference_id,
        staff_id=staff_id,
        store_id=journal.store_id,
        idempotency_key=idempotency_key,
        memo=memo,
        reversal_of=journal,
    )


# --- internals -------------------------------------------------------------------------------------------


def _reversal_code(code: str) -> str:
    if code.endswith(".reversal"):
        return code.removesuffix(".reversal")
    return f"{code}.reversal"[:CODE_MAX_LENGTH]


def _post(
    *,
    organisation_id: int,
    code: str,
    legs: Sequence[tuple[Account, int]],
    reference_type: str,
    reference_id: str,
    staff_id: int | None,
    store_id: int | None,
    idempotency_key: str | None,
    memo: str,
    reversal_of: Journal | None,
) -> Journal:
    _require_text("code", code, CODE_MAX_LENGTH)
    _limit_text("reference_type", reference_type, 64)
    _limit_text("reference_id", reference_id, 64)
    _limit_text("memo", memo, 255)
    checked = _checked_legs(legs)
    key = validate_key(idempotency_key) if idempotency_key is not None else None
    payload_hash = canonical_hash(
        {
            "code": code,
            # Order of the lines does not change the meaning of a journal.
            "entries": sorted([leg.account.pk, leg.amount] for leg in checked),
            "reference_type": reference_type,
            "reference_id": reference_id,
            "staff_id": staff_id,
            "store_id": store_id,
            "memo": memo,
            "reversal_of": reversal_of.pk if reversal_of is not None else None,
        }
    )
    if key is not None:
        first = _replayed(organisation_id=organisation_id, key=key, payload_hash=payload_hash)
        if first is not None:
            return first
    try:
        with transaction.atomic():
            return _write(
                organisation_id=organisation_id,
                code=code,
                legs=checked,
                reference_type=reference_type,
                reference_id=reference_id,
                staff_id=staff_id,
                store_id=store_id,
                key=key,
                payload_hash=payload_hash,
                memo=memo,
                reversal_of=reversal_of,
            )
    except IntegrityError:
        # Lost a race: the same key, or a reversal of the same journal, was committed meanwhile.
        if key is not None:
            first = _replayed(organisation_id=organisation_id, key=key, payload_hash=payload_hash)
            if first is not None:
                return first
        if reversal_of is not None and Journal.objects.filter(reversal_of=reversal_of).exists():
            raise _already_reversed(reversal_of) from None
        raise


def _write(
    *,
    organisation_id: int,
    code: str,
    legs: list[Leg],
    reference_type: str,
    reference_id: str,
    staff_id: int | None,
    store_id: int | None,
    key: str | None,
    payload_hash: str,
    memo: str,
    reversal_of: Journal | None,
) -> Journal:
    deltas: dict[int, int] = {}
    for leg in legs:
        deltas[leg.account.pk] = deltas.get(leg.account.pk, 0) + leg.amount
    # Lock in primary-key order so two posts over the same accounts cannot deadlock. The account data
    # (organisation, asset) is read from the database, not trusted from the caller's objects.
    balances = list(
        Balance.objects.select_for_update(of=("self",))
        .select_related("account")
        .filter(account_id__in=deltas)
        .order_by("account_id")
    )
    by_account = {balance.account_id: balance for balance in balances}
    if len(by_account) != len(deltas):
        missing = sorted(set(deltas) - set(by_account))
        raise ValidationFailed(
            "ledger.unknown_account",
            zh=f"账户不存在或没有余额行：{missing}。",
            en=f"Unknown account(s), or account(s) without a balance row: {missing}.",
        )
    for balance in balances:
        if balance.account.organisation_id != organisation_id:
            raise ValidationFailed(
                "ledger.foreign_account",
                zh=f"账户 #{balance.account_id} 不属于本机构。",
                en=f"Account #{balance.account_id} belongs to another organisation.",
            )
    totals: dict[str, int] = {}
    for leg in legs:
        asset = by_account[leg.account.pk].account.asset
        totals[asset] = totals.get(asset, 0) + leg.amount
    unbalanced = {asset: total for asset, total in sorted(totals.items()) if total != 0}
    if unbalanced:
        raise ValidationFailed(
            "ledger.unbalanced",
            zh=f"分录借贷不平（按资产合计应为 0）：{unbalanced}。",
            en=f"The entries do not net to zero per asset: {unbalanced}.",
        )
    # Checked under the balance locks, so a concurrent reversal of the same journal (which locks the
    # same rows) is seen here; the unique reversal_of column catches anything else.
    if reversal_of is not None and Journal.objects.filter(reversal_of=reversal_of).exists():
        raise _already_reversed(reversal_of)
    for balance in balances:
        after = balance.amount + deltas[balance.account_id]
        if after < 0 and not balance.may_go_negative:
            raise ApplicationError(
                "ledger.insufficient_balance",
                zh=f"余额不足：账户 {balance.account} 现有 {balance.amount}，本次变动 {deltas[balance.account_id]}。",
                en=(
                    f"Insufficient balance: account {balance.account} holds {balance.amount}, "
                    f"the change is {deltas[balance.account_id]}."
                ),
                extra={
                    "account_id": balance.account_id,
                    "balance": balance.amount,
                    "change": deltas[balance.account_id],
                },
            )

    journal = Journal.objects.create(
        organisation_id=organisation_id,
        code=code,
        reference_type=reference_type,
        reference_id=reference_id,
        staff_id=staff_id,
        store_id=store_id,
        idempotency_key=key,
        payload_hash=payload_hash,
        reversal_of=reversal_of,
        memo=memo,
    )
    Entry.objects.bulk_create(
        [
            Entry(
                journal=journal,
                account_id=leg.account.pk,
                amount=leg.amount,
                asset=by_account[leg.account.pk].account.asset,
            )
            for leg in legs
        ]
    )
    for balance in balances:
        change = deltas[balance.account_id]
        if change:
            balance.amount += change
            balance.version += 1
            balance.save(update_fields=["amount", "version", "updated_at"])
    return journal


def _checked_legs(legs: Sequence[tuple[Account, int]]) -> list[Leg]:
    if not legs:
        raise ValidationFailed(
            "ledger.no_entries", zh="凭证至少需要一条分录。", en="A journal needs at least one entry."
        )
    checked: list[Leg] = []
    for account, amount in legs:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise TypeError(f"ledger amounts are ints, got {type(amount).__name__}")
        if amount == 0 or abs(amount) >= MAX_AMOUNT:
            raise ValidationFailed(
                "ledger.invalid_amount",
                zh=f"分录金额必须非零且绝对值小于 {MAX_AMOUNT}，收到 {amount}。",
                en=f"Entry amounts must be non-zero and smaller than {MAX_AMOUNT} in size, got {amount}.",
            )
        if account.pk is None:
            raise ValidationFailed("ledger.unknown_account", zh="账户尚未保存。", en="The account has not been saved.")
        checked.append(Leg(account, amount))
    return checked


def _replayed(*, organisation_id: int, key: str, payload_hash: str) -> Journal | None:
    """The journal first posted with this key, or None; a different payload under the key is refused."""
    first = Journal.objects.filter(organisation_id=organisation_id, idempotency_key=key).first()
    if first is None:
        return None
    if first.payload_hash != payload_hash:
        raise Conflict(
            "ledger.idempotency_conflict",
            zh=f"幂等键 {key!r} 已用于另一笔内容不同的记账，请换一个新的键。",
            en=f"Idempotency key {key!r} was already used for a different posting; use a new key.",
            field="idempotency_key",
        )
    return first


def _already_reversed(journal: Journal) -> Conflict:
    return Conflict(
        "ledger.already_reversed",
        zh=f"凭证 #{journal.pk} 已冲正过，不能再次冲正。",
        en=f"Journal #{journal.pk} has already been reversed.",
    )


def _require_text(field: str, value: str, max_length: int) -> None:
    if not value:
        raise ValidationFailed(
            "input.required", zh=f"{field}：必填。", en=f"{field}: this field is required.", field=field
        )
    _limit_text(field, value, max_length)


def _limit_text(field: str, value: str, max_length: int) -> None:
    if len(value) > max_length:
        raise ValidationFailed(
            "input.too_long",
            zh=f"{field}：最多 {max_length} 个字符。",
            en=f"{field}: at most {max_length} characters.",
            field=field,
        )
