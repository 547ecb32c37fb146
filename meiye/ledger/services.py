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

Shared counter-accounts (``Account.shared``: a store's takings, the organisation's points issued; ADR 0009)
are not locked: a posting appends a ``BalanceDelta`` for each, and ``balances_fold`` adds the deltas to the
balance rows later. Their balance is the row plus the pending deltas (``selectors.balance_of``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.db.models.base import ModelState
from django.utils import timezone

from meiye.core.db import pipeline
from meiye.core.db.cursors import hot_cursor
from meiye.core.db.fastwrite import insert_rows, insert_rows_or_skip, insert_values
from meiye.core.errors import ApplicationError, Conflict, ValidationFailed
from meiye.core.idempotency import canonical_hash, validate_key
from meiye.ledger.models import ASSET_MAX_LENGTH, CODE_MAX_LENGTH, Account, Balance, BalanceDelta, Entry, Journal

# Far beyond any real amount of fen, points or sessions, and far inside a signed 64-bit column, so that
# no sum of entries can overflow.
MAX_AMOUNT = 10**15
_M = TypeVar("_M", Account, Balance)


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
                account = Account.objects.create(
                    **identity, may_go_negative=may_go_negative, shared=is_shared(owner_type, may_go_negative)
                )
                Balance.objects.create(account=account, amount=0, may_go_negative=may_go_negative)
        except IntegrityError:
            # Created at the same moment by another request: use theirs.
            account = Account.objects.filter(**identity).first()
            if account is None:
                raise
    if account.may_go_negative != may_go_negative:
        raise _flag_mismatch(account)
    return account


def is_shared(owner_type: str, may_go_negative: bool) -> bool:
    """Whether an account created with these values is shared (``settings.LEDGER_SHARED_OWNER_TYPES``)."""
    return may_go_negative and owner_type in settings.LEDGER_SHARED_OWNER_TYPES


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


# --- several journals of one operation, over accounts locked once -------------------------------------------


class AccountKey(NamedTuple):
    """Which account an operation needs: ``(owner_type, owner_id, asset, kind)`` within the organisation, and
    the ``may_go_negative`` it is created with if it does not exist yet (see ``account_get_or_create``)."""

    owner_type: str
    owner_id: int
    asset: str
    kind: str
    may_go_negative: bool = False

    @property
    def identity(self) -> tuple[str, int, str, str]:
        return (self.owner_type, self.owner_id, self.asset, self.kind)


@dataclass
class LockedAccounts:
    """Accounts whose balance rows the current transaction holds locked (``accounts_lock``), with their
    balances as they are now: ``journals_post`` keeps them current. Valid until the transaction ends."""

    organisation_id: int
    accounts: dict[tuple[str, int, str, str], Account] = field(default_factory=dict)
    balances: dict[int, Balance] = field(default_factory=dict)  # by account id
    shared: dict[int, Account] = field(default_factory=dict)  # by id: shared accounts, posted to unlocked

    def get(self, key: AccountKey) -> Account:
        try:
            return self.accounts[key.identity]
        except KeyError:
            raise ValueError(f"account {key.identity} was not locked by accounts_lock") from None

    def balance(self, account: Account) -> int:
        """The account's balance now (its locked row, plus what ``journals_post`` has posted since). Not for a
        shared account: its balance is not locked, so it may change under the operation."""
        if account.pk in self.shared:
            raise ValueError(f"account {account} is shared: its balance is not locked (read balance_of)")
        return self.balances[account.pk].amount

    def account(self, account_id: int) -> Account | None:
        """The account of this id, locked or shared, or None if it is not one of this operation's."""
        balance = self.balances.get(account_id)
        return balance.account if balance is not None else self.shared.get(account_id)


class Posting(NamedTuple):
    """One journal for ``journals_post``; the fields mean what ``journal_post``'s arguments mean."""

    code: str
    entries: Sequence[tuple[Account, int]]
    reference_type: str = ""
    reference_id: str = ""
    staff_id: int | None = None
    store_id: int | None = None
    idempotency_key: str | None = None
    memo: str = ""


def accounts_lock(*, organisation_id: int, keys: Iterable[AccountKey]) -> LockedAccounts:
    """Lock the balance rows of all the accounts an operation will post to, in ONE statement, in primary-key
    order (the ledger's lock order, so two operations cannot deadlock); accounts that do not exist yet are
    created first (``account_get_or_create``, which also refuses a different ``may_go_negative``).

    Call it inside the operation's transaction, once, before reading any of these balances: the locks and
    the balances returned stay valid until that transaction ends. One query once the accounts exist.

    Shared accounts (ADR 0009) are read in the same statement but not locked (``LockedAccounts.shared``):
    ``journals_post`` appends their changes as balance deltas.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("accounts_lock must run inside the operation's transaction")
    wanted: dict[tuple[str, int, str, str], AccountKey] = {}
    for key in keys:
        _require_text("owner_type", key.owner_type, 32)
        _require_text("asset", key.asset, ASSET_MAX_LENGTH)
        _require_text("kind", key.kind, 32)
        if wanted.setdefault(key.identity, key).may_go_negative != key.may_go_negative:
            raise ValueError(f"account {key.identity} asked for with both may_go_negative values")
    locked = LockedAccounts(organisation_id=organisation_id)
    if not wanted:
        return locked
    balances = _lock_by_known_ids(organisation_id, wanted)
    if balances is None:
        balances = _lock_by_identity(organisation_id, wanted)
    missing = sorted(set(wanted) - {_identity(balance.account) for balance in balances})
    if missing:
        # First use only. The new rows are invisible to other transactions until we commit, so locking them
        # after the existing ones cannot deadlock; a concurrent creator is resolved by account_get_or_create.
        for identity in missing:
            key = wanted[identity]
            account_get_or_create(
                organisation_id=organisation_id,
                owner_type=key.owner_type,
                owner_id=key.owner_id,
                asset=key.asset,
                kind=key.kind,
                may_go_negative=key.may_go_negative,
            )
        balances = _lock_by_identity(organisation_id, wanted)
    for balance in balances:
        account = balance.account
        if account.may_go_negative != wanted[_identity(account)].may_go_negative:
            raise _flag_mismatch(account)
        locked.accounts[_identity(account)] = account
        if account.shared:
            locked.shared[account.pk] = account
        else:
            locked.balances[account.pk] = balance
    if len(locked.accounts) != len(wanted) or not all(
        (organisation_id, identity) in _KNOWN_IDS for identity in locked.accounts
    ):
        # Remembered once this transaction commits: an account created in it (here, or earlier in it by
        # account_get_or_create) must not be remembered if it rolls back — its id could then name another
        # account, and a lock by that id would take a row out of the ledger's order.
        found = {(organisation_id, identity): account.pk for identity, account in locked.accounts.items()}
        transaction.on_commit(lambda: _remember(found))
    return locked


def journals_post(
    *,
    organisation_id: int,
    postings: Sequence[Posting],
    locked: LockedAccounts,
    keys_claimed: bool = False,
) -> list[Journal]:
    """Post several journals of one operation over accounts the transaction has locked (``accounts_lock``):
    the same checks as ``journal_post`` for each journal, in order (a balance must stay non-negative after
    each one), then one INSERT for the journals, one for all their entries and one UPDATE for the balances.

    Idempotency: with ``keys_claimed=False`` one query looks up all the keys first; if every journal was
    already posted with the same payload they are returned and nothing is written; any other use of the
    keys is refused with ``ledger.idempotency_conflict``. ``keys_claimed=True`` skips that look-up: for an
    operation whose OWN key was claimed by a unique row in this same transaction (a bill, a refund), the
    keys derived from it cannot have been used by an earlier run of that operation. A key used by anything
    else is still refused: when every journal has a key, the INSERT skips a journal whose key the unique index
    holds (``ON CONFLICT DO NOTHING``) and the post raises ``ledger.idempotency_conflict`` with the
    transaction still usable (the caller needs no savepoint); a batch with an unkeyed journal fails on the
    index (an IntegrityError that aborts the caller's transaction).
    """
    if not postings:
        return []
    if locked.organisation_id != organisation_id:
        raise ValidationFailed(
            "ledger.foreign_account",
            zh="账户不属于本机构。",
            en="The locked accounts belong to another organisation.",
        )
    prepared = [_prepare(organisation_id, posting, locked) for posting in postings]
    keys = [p.key for p in prepared if p.key is not None]
    if len(set(keys)) != len(keys):
        raise ValueError("two postings of one operation share an idempotency key")
    if keys and not keys_claimed:
        first = {
            journal.idempotency_key: journal
            for journal in Journal.objects.filter(organisation_id=organisation_id, idempotency_key__in=keys)
        }
        if first:
            return _replayed_batch(prepared, first)

    # Check every balance after each journal, in order, as separate posts would.
    running = {pk: balance.amount for pk, balance in locked.balances.items()}
    bumps: dict[int, int] = {}
    pending: dict[int, int] = {}  # shared accounts' changes: balance deltas, nothing to check
    for item in prepared:
        for account_id, change in item.deltas.items():
            if not change:
                continue
            if account_id in locked.shared:
                pending[account_id] = pending.get(account_id, 0) + change
                continue
            balance = locked.balances[account_id]
            after = running[account_id] + change
            if after < 0 and not balance.may_go_negative:
                raise _insufficient(balance, running[account_id], change)
            running[account_id] = after
            bumps[account_id] = bumps.get(account_id, 0) + 1

    journals = [
        Journal(
            organisation_id=organisation_id,
            code=item.posting.code,
            reference_type=item.posting.reference_type,
            reference_id=item.posting.reference_id,
            staff_id=item.posting.staff_id,
            store_id=item.posting.store_id,
            idempotency_key=item.key,
            payload_hash=item.payload_hash,
            memo=item.posting.memo,
        )
        for item in prepared
    ]
    if keys_claimed and len(keys) == len(journals):
        written = insert_rows_or_skip(journals, match="idempotency_key")  # one INSERT … ON CONFLICT … RETURNING
        if len(written) != len(journals):
            raise _key_used(next(journal.idempotency_key for journal in journals if journal.pk is None))
    else:
        journals = insert_rows(journals)  # one INSERT … RETURNING (PostgreSQL; SQLite 3.35+)
    insert_values(
        Entry,
        _ENTRY_COLUMNS,
        [
            (journal.pk, leg.account.pk, leg.amount, item.assets[leg.account.pk])
            for journal, item in zip(journals, prepared, strict=True)
            for leg in item.legs
        ],
    )
    changes = {pk: running[pk] - locked.balances[pk].amount for pk in bumps}
    _write_changes(changes, bumps, pending)
    for pk, bump in bumps.items():
        locked.balances[pk].amount = running[pk]
        locked.balances[pk].version += bump
    return journals


# --- shared accounts' balance deltas (ADR 0009) -----------------------------------------------------------


def balances_touch(account_ids: Iterable[int]) -> None:
    """Bump the versions of these accounts' balance rows without changing their amounts, locking them (in the
    ledger's order) if the transaction does not hold them yet; inside the caller's transaction.

    For a reader that saw a balance's ``version`` with other rows it depends on and, once it holds the balance
    locked, takes an unchanged version to mean that nothing it read has changed (``loyalty.tiers.GrowthSeen``):
    whoever changes such a row other than by posting to the account touches the balance in the same
    transaction."""
    ids = sorted(set(account_ids))
    if not ids:
        return
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("balances_touch runs inside the transaction that changes what the version stands for")
    for pk in ids:  # one row each, in primary-key order: the lock order of every posting
        Balance.objects.filter(account_id=pk).update(version=F("version") + 1)


def balances_fold(*, batch: int = 1_000) -> int:
    """Add the shared accounts' pending balance deltas to their balance rows and delete them, ``batch``
    accounts per transaction; returns the number of accounts folded. Run every minute (``ledger.tasks``)."""
    folded = 0
    while True:
        done = _fold_batch(batch)
        folded += done
        if done < batch:
            return folded


def _fold_batch(limit: int) -> int:
    """``balances_fold`` of up to ``limit`` accounts, in one transaction.

    The balance rows are locked ``SKIP LOCKED`` (an account whose row another transaction holds waits for the
    next run), so the fold never waits and cannot deadlock. It deletes only the deltas it has read (``DELETE …
    RETURNING``): a delta committed meanwhile stays for the next run, and every reader sees either the row
    before with the deltas, or the row after without them."""
    with transaction.atomic():
        ids = list(BalanceDelta.objects.order_by("account_id").values_list("account_id", flat=True).distinct()[:limit])
        if not ids:
            return 0
        rows = Balance.objects.filter(account_id__in=ids).order_by("account_id")
        if connection.features.has_select_for_update_skip_locked:
            rows = rows.select_for_update(skip_locked=True)
        held = list(rows.values_list("account_id", flat=True))
        if not held:
            return 0
        table = connection.ops.quote_name(BalanceDelta._meta.db_table)
        in_list, params = sql_in_list("account_id", held, "bigint")
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table} WHERE {in_list} RETURNING account_id, amount", params)  # noqa: S608
            changes: dict[int, int] = {}
            for account_id, amount in cursor.fetchall():
                changes[account_id] = changes.get(account_id, 0) + amount
        _update_balances(changes, dict.fromkeys(changes, 1))
        return len(changes)


# --- many journals of one shape, by bulk SQL (nightly jobs) --------------------------------------------------


class BulkLine(NamedTuple):
    """One journal of ``journals_post_bulk``: ``account`` moves by ``amount`` (signed, non-zero) and the
    batch's counter account by ``-amount``. ``reference_id`` and ``idempotency_key`` are this journal's."""

    account: Account
    amount: int
    reference_id: str = ""
    idempotency_key: str | None = None


def accounts_lock_owners(
    *,
    organisation_id: int,
    owner_type: str,
    owner_ids: Sequence[int],
    asset: str,
    kind: str,
    extra: Iterable[AccountKey] = (),
) -> LockedAccounts:
    """Lock the balance rows of the EXISTING ``(owner_type, owner, asset, kind)`` accounts of many owners (a
    nightly job's batch of members) plus the ``extra`` accounts (created first if missing, as
    ``accounts_lock`` does), in ONE ``SELECT … FOR UPDATE`` in primary-key order, into a ``LockedAccounts``
    for ``journals_post_bulk`` / ``journals_post``. An owner without the account is simply not in the result.

    ``accounts_lock`` names each account by its identity (one OR term each), which PostgreSQL plans slowly
    for thousands of accounts and SQLite refuses beyond ~900 terms; this takes the owners as one list."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("accounts_lock_owners must run inside the operation's transaction")
    _require_text("owner_type", owner_type, 32)
    _require_text("asset", asset, ASSET_MAX_LENGTH)
    _require_text("kind", kind, 32)
    extra_keys = {key.identity: key for key in extra}
    extra_accounts = [
        account_get_or_create(
            organisation_id=organisation_id,
            owner_type=key.owner_type,
            owner_id=key.owner_id,
            asset=key.asset,
            kind=key.kind,
            may_go_negative=key.may_go_negative,
        )
        for key in extra_keys.values()
    ]
    qn = connection.ops.quote_name
    account_table, balance_table = qn(Account._meta.db_table), qn(Balance._meta.db_table)
    owners, owner_params = sql_in_list("a.owner_id", sorted(set(owner_ids)), "bigint")
    extras, extra_params = sql_in_list("a.id", sorted(account.pk for account in extra_accounts), "bigint")
    columns = [f"a.{qn(c)}" for c in _ACCOUNT_FIELDS] + [f"b.{qn(c)}" for c in _BALANCE_FIELDS]
    sql = (
        f"SELECT {', '.join(columns)} FROM {balance_table} b JOIN {account_table} a ON a.id = b.account_id "  # noqa: S608
        f"WHERE a.organisation_id = %s AND ((a.owner_type = %s AND a.asset = %s AND a.kind = %s AND {owners}) "
        f"OR {extras}) ORDER BY b.account_id"
    )
    if connection.features.has_select_for_update:
        sql += " FOR UPDATE OF b" if connection.features.has_select_for_update_of else " FOR UPDATE"
    locked = LockedAccounts(organisation_id=organisation_id)
    with connection.cursor() as cursor:
        cursor.execute(sql, [organisation_id, owner_type, asset, kind, *owner_params, *extra_params])
        rows = cursor.fetchall()
    alias = connection.alias
    for row in rows:
        account = _instance(Account, _ACCOUNT_FIELDS, (*row[:6], bool(row[6]), bool(row[7])), alias)
        balance = _instance(Balance, _BALANCE_FIELDS, (row[8], row[9], bool(row[10]), row[11]), alias)
        balance.account = account
        locked.accounts[_identity(account)] = account
        locked.balances[account.pk] = balance
    for identity, key in extra_keys.items():
        if locked.accounts[identity].may_go_negative != key.may_go_negative:
            raise _flag_mismatch(locked.accounts[identity])
    return locked


def _instance(model: type[_M], names: Sequence[str], values: Sequence[Any], alias: str) -> _M:
    """A model instance from a row of ``names`` (the other fields deferred), as ``Model.from_db`` builds it
    but without ``__init__``: a batch lock builds hundreds of thousands of them."""
    obj = model.__new__(model)
    state = obj._state = ModelState()
    state.adding, state.db = False, alias
    obj.__dict__.update(zip(names, values, strict=True))
    return obj


def sql_in_list(column: str, values: Sequence[Any], pg_type: str) -> tuple[str, list[Any]]:
    """``column IN (…)`` for a long list: one array parameter on PostgreSQL (``= ANY``), so the driver does
    not parse thousands of placeholders; a plain list on SQLite. An empty list matches nothing."""
    if not values:
        return "1 = 0", []
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s::{pg_type}[])", [_pg_array(values)]
    return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)


def rows_source(name: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]) -> tuple[str, list[Any]]:
    """A common table expression ``name (columns) AS (…)`` over ``rows`` for bulk SQL, and its parameters:
    ``unnest`` of one typed array per column on PostgreSQL (a handful of parameters, however many rows),
    ``VALUES`` on SQLite. ``columns`` are ``(name, PostgreSQL type)`` pairs."""
    names = ", ".join(column for column, _ in columns)
    if connection.vendor == "postgresql":
        arrays = ", ".join(f"%s::{pg_type}[]" for _, pg_type in columns)
        return f"{name} ({names}) AS (SELECT * FROM unnest({arrays}))", [  # noqa: S608
            _pg_array([row[i] for row in rows]) for i in range(len(columns))
        ]
    one = f"({', '.join(['%s'] * len(columns))})"
    return f"{name} ({names}) AS (VALUES {', '.join([one] * len(rows))})", [value for row in rows for value in row]


def _pg_array(values: Sequence[Any]) -> str:
    """A PostgreSQL array literal (``{1,2,NULL}``, text elements quoted and escaped), passed as ONE text
    parameter and cast in SQL: the driver's own list adaptation costs more than the statement for a batch."""
    parts = []
    for value in values:
        if value is None:
            parts.append("NULL")
        elif isinstance(value, int) and not isinstance(value, bool):
            parts.append(str(value))
        else:
            parts.append('"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(parts) + "}"


# Lines per INSERT / UPDATE statement on SQLite: keeps every statement far below its 32,766 parameters.
# (PostgreSQL takes each column as one array parameter, so a batch is one statement of each kind there.)
BULK_STATEMENT_ROWS = 2_000


def journals_post_bulk(
    *,
    organisation_id: int,
    code: str,
    counter: Account,
    lines: Sequence[BulkLine],
    locked: LockedAccounts,
    reference_type: str = "",
    staff_id: int | None = None,
    store_id: int | None = None,
    memo: str = "",
    keys_claimed: bool = False,
) -> list[int]:
    """Post one two-legged journal per line — ``line.account`` +amount, ``counter`` −amount — over accounts
    the transaction has locked (``accounts_lock`` or the caller's own lock of the same rows), by bulk SQL.
    Returns the journals' ids in the order of ``lines``.

    For nightly jobs that post thousands of journals of one shape (points expiry: member −p, breakage +p).
    The result is exactly what ``journals_post`` of the same postings would write — same journals (code,
    references, staff, store, memo, key, payload hash, so a later ``journal_post`` replay of one of them
    matches), same entries, same balances and versions — and the same checks run first, in Python: amounts
    non-zero and in range, accounts locked and of this organisation, the line's and the counter's asset
    equal (so every journal nets to zero per asset), no non-negative balance below zero after any journal
    in order. A refused batch writes nothing. The database rules still apply (append-only triggers, the
    asset trigger, on PostgreSQL the deferred nets-to-zero trigger, the balance CHECK, the unique key).

    Idempotency as ``journals_post``: with ``keys_claimed=False`` the keys are looked up first; a batch that
    was posted before with the same payloads returns the first ids and writes nothing; any other use of
    the keys is ``ledger.idempotency_conflict``. ``keys_claimed=True`` skips the look-up (the caller has
    checked the keys under its own locks); the unique index still refuses a duplicate.

    Per statement of up to ``BULK_STATEMENT_ROWS`` lines: one ``INSERT … SELECT`` of the journals
    (``RETURNING`` their ids), one of both entries of each, one ``UPDATE … FROM`` of the balances.
    """
    if not lines:
        return []
    if locked.organisation_id != organisation_id:
        raise ValidationFailed(
            "ledger.foreign_account", zh="账户不属于本机构。", en="The locked accounts belong to another organisation."
        )
    _require_text("code", code, CODE_MAX_LENGTH)
    _limit_text("reference_type", reference_type, 64)
    _limit_text("memo", memo, 255)
    asset = _locked_account(organisation_id, locked, counter).asset
    running = {pk: balance.amount for pk, balance in locked.balances.items()}
    bumps: dict[int, int] = {}
    pending: dict[int, int] = {}  # shared accounts' changes (balance deltas)
    hashes: list[str] = []
    keys: list[str | None] = []
    for line in lines:
        account, amount = line.account, line.amount
        _checked_legs([(account, amount), (counter, -amount)])
        _limit_text("reference_id", line.reference_id, 64)
        if _locked_account(organisation_id, locked, account).asset != asset:
            raise ValidationFailed(
                "ledger.unbalanced",
                zh=f"分录借贷不平（按资产合计应为 0）：账户 #{account.pk} 与对方账户资产不同。",
                en=f"The entries do not net to zero per asset: account #{account.pk} and the counter account "
                "hold different assets.",
            )
        for pk, change in ((account.pk, amount), (counter.pk, -amount)):
            if pk in locked.shared:
                pending[pk] = pending.get(pk, 0) + change
                continue
            after = running[pk] + change
            if after < 0 and not locked.balances[pk].may_go_negative:
                raise _insufficient(locked.balances[pk], running[pk], change)
            running[pk] = after
        if account.pk != counter.pk:  # a journal moving one account both ways changes nothing on it
            for pk in (account.pk, counter.pk):
                if pk not in locked.shared:
                    bumps[pk] = bumps.get(pk, 0) + 1
        keys.append(validate_key(line.idempotency_key) if line.idempotency_key is not None else None)
        hashes.append(
            canonical_hash(
                {
                    "code": code,
                    "entries": sorted([[account.pk, amount], [counter.pk, -amount]]),
                    "reference_type": reference_type,
                    "reference_id": line.reference_id,
                    "staff_id": staff_id,
                    "store_id": store_id,
                    "memo": memo,
                    "reversal_of": None,
                }
            )
        )
    given = [key for key in keys if key is not None]
    if len(set(given)) != len(given):
        raise ValueError("two journals of one batch share an idempotency key")
    if given and not keys_claimed:
        first: dict[str, tuple[int, str]] = {}
        for start in range(0, len(given), 500):
            first.update(
                (str(key), (pk, payload_hash))
                for key, pk, payload_hash in Journal.objects.filter(
                    organisation_id=organisation_id, idempotency_key__in=given[start : start + 500]
                ).values_list("idempotency_key", "pk", "payload_hash")
            )
        if first:
            return _replayed_bulk(keys, hashes, first)

    ids: list[int] = []
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    qn = connection.ops.quote_name
    journal_table, entry_table = qn(Journal._meta.db_table), qn(Entry._meta.db_table)
    with connection.cursor() as cursor:
        size = len(lines) if connection.vendor == "postgresql" else BULK_STATEMENT_ROWS
        for start in range(0, len(lines), size):
            chunk = range(start, min(start + size, len(lines)))
            # Ids are handed out in insertion order, and the rows are inserted in the order of ``n``: the
            # ascending ids are the lines' in order (checked against the keys below).
            source, params = rows_source(
                "v",
                [("n", "bigint"), ("ref", "text"), ("k", "text"), ("h", "text")],
                [(i, lines[i].reference_id, keys[i], hashes[i]) for i in chunk],
            )
            cursor.execute(
                f"WITH {source} "  # noqa: S608
                f"INSERT INTO {journal_table} (organisation_id, code, reference_type, reference_id, staff_id, "
                "store_id, idempotency_key, payload_hash, memo, created_at, reversal_of_id) "
                "SELECT %s, %s, %s, v.ref, %s, %s, v.k, v.h, %s, %s, NULL FROM v ORDER BY v.n "
                "RETURNING id, idempotency_key",
                [*params, organisation_id, code, reference_type, staff_id, store_id, memo, now],
            )
            returned = sorted(cursor.fetchall())
            if len(returned) != len(chunk) or any(
                key != keys[i] for (_, key), i in zip(returned, chunk, strict=True)
            ):  # pragma: no cover - would mean the database inserted out of order
                raise RuntimeError("journals_post_bulk: the journal ids did not come back in insertion order")
            chunk_ids = [pk for pk, _ in returned]
            source, params = rows_source(
                "v",
                [("j", "bigint"), ("a", "bigint"), ("m", "bigint")],
                [(pk, lines[i].account.pk, lines[i].amount) for pk, i in zip(chunk_ids, chunk, strict=True)],
            )
            cursor.execute(
                f"WITH {source} INSERT INTO {entry_table} (journal_id, account_id, amount, asset) "  # noqa: S608
                "SELECT j, a, m, %s FROM v UNION ALL SELECT j, %s, -m, %s FROM v",
                [*params, asset, counter.pk, asset],
            )
            ids += chunk_ids
        changed = sorted(bumps)
        size = max(len(changed), 1) if connection.vendor == "postgresql" else BULK_STATEMENT_ROWS
        for start in range(0, len(changed), size):
            part = changed[start : start + size]
            _update_balances_from(
                cursor, [(pk, running[pk] - locked.balances[pk].amount, bumps[pk]) for pk in part], now
            )
    _insert_deltas(pending)
    for pk, bump in bumps.items():
        locked.balances[pk].amount = running[pk]
        locked.balances[pk].version += bump
    return ids


def _locked_account(organisation_id: int, locked: LockedAccounts, account: Account) -> Account:
    """The operation's own record of ``account`` (locked, or shared), checked to be of this organisation."""
    found = locked.account(account.pk)
    if found is None:
        raise ValidationFailed(
            "ledger.unknown_account",
            zh=f"账户 #{account.pk} 未锁定或不存在。",
            en=f"Account #{account.pk} is unknown or was not locked for this operation.",
        )
    if found.organisation_id != organisation_id:
        raise ValidationFailed(
            "ledger.foreign_account",
            zh=f"账户 #{found.pk} 不属于本机构。",
            en=f"Account #{found.pk} belongs to another organisation.",
        )
    return found


def _write_changes(changes: Mapping[int, int], bumps: Mapping[int, int], pending: Mapping[int, int]) -> None:
    """The locked rows' ``changes`` (and version ``bumps``) in one UPDATE, and the shared accounts' ``pending``
    changes as balance deltas. On SQLite, which has no row locks (the IMMEDIATE transaction holds the whole
    database), nobody could queue on a shared row: its change goes into the same UPDATE, one statement fewer."""
    if pending and not connection.features.has_select_for_update:
        changes, bumps, pending = {**changes, **pending}, {**bumps, **dict.fromkeys(pending, 1)}, {}
    _update_balances(changes, bumps)
    _insert_deltas(pending)


def _insert_deltas(pending: Mapping[int, int]) -> None:
    """Shared accounts' changes as balance deltas, one row per account, in ONE INSERT (nothing is locked)."""
    rows = [(pk, change) for pk, change in sorted(pending.items()) if change]
    if rows:
        insert_values(BalanceDelta, _DELTA_COLUMNS, rows)


def _replayed_bulk(keys: list[str | None], hashes: list[str], first: Mapping[str, tuple[int, str]]) -> list[int]:
    """The ids of a replayed bulk batch, or ``ledger.idempotency_conflict`` unless every journal matches."""
    ids: list[int] = []
    for key, payload_hash in zip(keys, hashes, strict=True):
        found = first.get(key) if key is not None else None
        if found is None or found[1] != payload_hash:
            shown = key if found is not None or key is None else next(iter(first))
            raise Conflict(
                "ledger.idempotency_conflict",
                zh=f"幂等键 {shown!r} 已用于另一笔内容不同的记账，请换一个新的键。",
                en=f"Idempotency key {shown!r} was already used for a different posting; use a new key.",
                field="idempotency_key",
            )
        ids.append(found[0])
    return ids


def _update_balances_from(cursor: Any, rows: Sequence[tuple[int, int, int]], now: Any) -> None:
    """``(account id, change, version bump)`` rows applied in ONE ``UPDATE … FROM (VALUES …)``: linear in the
    rows, where ``_update_balances``' CASE is quadratic (fine for a checkout's handful, not for thousands).
    The rows are locked by the caller; the CHECK constraint still refuses a negative balance."""
    if not rows:
        return
    table = connection.ops.quote_name(Balance._meta.db_table)
    source, params = rows_source("v", [("a", "bigint"), ("d", "bigint"), ("n", "bigint")], rows)
    cursor.execute(
        f"WITH {source} UPDATE {table} SET amount = {table}.amount + v.d, "  # noqa: S608
        f"version = {table}.version + v.n, updated_at = %s FROM v WHERE {table}.account_id = v.a",
        [*params, now],
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
    # The account data (organisation, asset, shared) is read from the database, not trusted from the caller's
    # objects. Then the balance rows of the accounts that are not shared are locked in primary-key order, so
    # two posts over the same accounts cannot deadlock; the shared ones get balance deltas (ADR 0009).
    by_account = Account.objects.in_bulk(list(deltas))
    balances = list(
        Balance.objects.select_for_update(of=("self",))
        .select_related("account")
        .filter(account_id__in=[pk for pk, account in by_account.items() if not account.shared])
        .order_by("account_id")
    )
    locked_ids = {balance.pk for balance in balances}
    missing = sorted(pk for pk in deltas if pk not in by_account or not (by_account[pk].shared or pk in locked_ids))
    if missing:
        raise ValidationFailed(
            "ledger.unknown_account",
            zh=f"账户不存在或没有余额行：{missing}。",
            en=f"Unknown account(s), or account(s) without a balance row: {missing}.",
        )
    for account in by_account.values():
        if account.organisation_id != organisation_id:
            raise ValidationFailed(
                "ledger.foreign_account",
                zh=f"账户 #{account.pk} 不属于本机构。",
                en=f"Account #{account.pk} belongs to another organisation.",
            )
    totals: dict[str, int] = {}
    for leg in legs:
        asset = by_account[leg.account.pk].asset
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
            raise _insufficient(balance, balance.amount, deltas[balance.account_id])

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
                asset=by_account[leg.account.pk].asset,
            )
            for leg in legs
        ]
    )
    changes = {pk: change for pk, change in deltas.items() if change and not by_account[pk].shared}
    pending = {pk: change for pk, change in deltas.items() if change and by_account[pk].shared}
    _write_changes(changes, dict.fromkeys(changes, 1), pending)
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


class _Prepared(NamedTuple):
    posting: Posting
    legs: list[Leg]
    key: str | None
    payload_hash: str
    deltas: dict[int, int]
    assets: dict[int, str]  # by account id, as the database has them


def _prepare(organisation_id: int, posting: Posting, locked: LockedAccounts) -> _Prepared:
    """``_post``'s checks for one posting of a batch, against the locked accounts."""
    _require_text("code", posting.code, CODE_MAX_LENGTH)
    _limit_text("reference_type", posting.reference_type, 64)
    _limit_text("reference_id", posting.reference_id, 64)
    _limit_text("memo", posting.memo, 255)
    legs = _checked_legs(posting.entries)
    key = validate_key(posting.idempotency_key) if posting.idempotency_key is not None else None
    deltas: dict[int, int] = {}
    totals: dict[str, int] = {}
    assets: dict[int, str] = {}
    for leg in legs:
        account = _locked_account(organisation_id, locked, leg.account)
        deltas[account.pk] = deltas.get(account.pk, 0) + leg.amount
        totals[account.asset] = totals.get(account.asset, 0) + leg.amount
        assets[account.pk] = account.asset
    unbalanced = {asset: total for asset, total in sorted(totals.items()) if total != 0}
    if unbalanced:
        raise ValidationFailed(
            "ledger.unbalanced",
            zh=f"分录借贷不平（按资产合计应为 0）：{unbalanced}。",
            en=f"The entries do not net to zero per asset: {unbalanced}.",
        )
    payload_hash = canonical_hash(
        {
            "code": posting.code,
            "entries": sorted([leg.account.pk, leg.amount] for leg in legs),
            "reference_type": posting.reference_type,
            "reference_id": posting.reference_id,
            "staff_id": posting.staff_id,
            "store_id": posting.store_id,
            "memo": posting.memo,
            "reversal_of": None,
        }
    )
    return _Prepared(posting, legs, key, payload_hash, deltas, assets)


def _replayed_batch(prepared: list[_Prepared], first: Mapping[str | None, Journal]) -> list[Journal]:
    """The journals of a replayed batch, or ``ledger.idempotency_conflict`` unless all match."""
    journals: list[Journal] = []
    for item in prepared:
        journal = first.get(item.key) if item.key is not None else None
        if journal is None or journal.payload_hash != item.payload_hash:
            raise _key_used(item.key if journal is not None or item.key is None else next(iter(first)))
        journals.append(journal)
    return journals


def _key_used(key: str | None) -> Conflict:
    return Conflict(
        "ledger.idempotency_conflict",
        zh=f"幂等键 {key!r} 已用于另一笔内容不同的记账，请换一个新的键。",
        en=f"Idempotency key {key!r} was already used for a different posting; use a new key.",
        field="idempotency_key",
    )


def _update_balances(changes: Mapping[int, int], bumps: Mapping[int, int]) -> None:
    """Add ``changes[pk]`` to each balance and ``bumps[pk]`` to its version, in ONE statement (a CASE for
    several rows). The rows are locked by the caller; the CHECK constraint still refuses a negative balance.

    Hand-written SQL: this runs in every checkout, and building the same CASE through the ORM cost more
    CPU than the rest of the posting (see docs/performance.md)."""
    if not bumps:
        return
    ids = sorted(bumps)
    table = connection.ops.quote_name(Balance._meta.db_table)
    whens = " ".join(["WHEN %s THEN CAST(%s AS BIGINT)"] * len(ids))
    sql = (
        f"UPDATE {table} SET amount = amount + CASE account_id {whens} ELSE 0 END, "  # noqa: S608
        f"version = version + CASE account_id {whens} ELSE 0 END, updated_at = %s "
        f"WHERE account_id IN ({', '.join(['%s'] * len(ids))})"
    )
    params: list[Any] = [value for pk in ids for value in (pk, changes.get(pk, 0))]
    params += [value for pk in ids for value in (pk, bumps[pk])]
    params.append(connection.ops.adapt_datetimefield_value(timezone.now()))
    params += ids
    pipeline.later(connection, hot_cursor(connection, len(params)), sql, params)  # queued in a pipelined block


def _identity(account: Account) -> tuple[str, int, str, str]:
    return (account.owner_type, account.owner_id, account.asset, account.kind)


# The columns the lock reads (timestamps are left deferred: nothing on the posting path reads them, and
# SQLite would hand them back as text without the ORM's converters). Booleans go through bool() below.
_ENTRY_COLUMNS = ("journal_id", "account_id", "amount", "asset")
_DELTA_COLUMNS = ("account_id", "amount")
_ACCOUNT_FIELDS = ["id", "organisation_id", "owner_type", "owner_id", "asset", "kind", "may_go_negative", "shared"]
_BALANCE_FIELDS = ["account_id", "amount", "may_go_negative", "version"]


# Account ids by (organisation, identity), remembered by this process once the transaction that locked them
# has committed: a committed account keeps its id and identity for good (nothing updates or deletes ledger
# accounts), so a repeat lock can select the balance rows by primary key — a much cheaper plan than one OR term
# per identity. The lock still matches each row's identity in the same statement, so a row that is not the
# account remembered (a database restored or flushed under a running process) is neither returned nor locked,
# and the identity lock takes over.
_KNOWN_IDS: dict[tuple[int, tuple[str, int, str, str]], int] = {}
_KNOWN_IDS_MAX = 200_000


def _remember(found: Mapping[tuple[int, tuple[str, int, str, str]], int]) -> None:
    if len(_KNOWN_IDS) + len(found) > _KNOWN_IDS_MAX:
        _KNOWN_IDS.clear()
    _KNOWN_IDS.update(found)


def _lock_by_known_ids(
    organisation_id: int, wanted: Mapping[tuple[str, int, str, str], AccountKey]
) -> list[Balance] | None:
    """The balance rows of ``wanted`` locked by their remembered ids, or None when an id is not remembered or
    a row read back is not the account remembered (the caller then locks by identity)."""
    ids = {}
    for identity in wanted:
        pk = _KNOWN_IDS.get((organisation_id, identity))
        if pk is None:
            return None
        ids[pk] = identity
    # Each id with the identity it was remembered for, so only rows that still match are read and locked; the
    # shared ones by the rule they were created by, read without a lock (checked against the rows below).
    rows = {pk: (pk, *ids[pk]) for pk in sorted(ids)}
    shared = {pk for pk in rows if is_shared(ids[pk][0], wanted[ids[pk]].may_go_negative)}
    balances = _lock_rows(
        organisation_id,
        [row for pk, row in rows.items() if pk not in shared],
        by_id=True,
        unlocked=[row for pk, row in rows.items() if pk in shared],
    )
    if len(balances) != len(ids) or any(balance.account.shared != (balance.pk in shared) for balance in balances):
        for identity in wanted:
            _KNOWN_IDS.pop((organisation_id, identity), None)
        # Only after the database changed under this process (restored, flushed): the rows read are wanted
        # ones, and the identity lock takes the rest (out of order, so a deadlock is possible, never a wrong row).
        return None
    return balances


def _lock_by_identity(organisation_id: int, wanted: Mapping[tuple[str, int, str, str], AccountKey]) -> list[Balance]:
    """``SELECT … FOR UPDATE`` of the wanted accounts' balance rows with their accounts, in account order; the
    accounts the rule calls shared are read in the same statement without a lock. Should a row not be what
    the rule said (an account created under another rule), all the rows are locked instead.

    Hand-written SQL for the same reason as ``_update_balances``; the rows become model instances by
    ``_instance`` (no ``__init__``: a checkout builds sixteen of them). SQLite has no row locks: its IMMEDIATE
    transaction already holds the database's write lock."""
    shared = {identity for identity, key in wanted.items() if is_shared(key.owner_type, key.may_go_negative)}
    balances = _lock_rows(
        organisation_id,
        sorted(set(wanted) - shared),
        by_id=False,
        unlocked=sorted(shared),
    )
    if any(balance.account.shared != (_identity(balance.account) in shared) for balance in balances):
        return _lock_rows(organisation_id, sorted(wanted), by_id=False)
    return balances


_LOCK_SQL: dict[tuple[str, int, bool, int], str] = {}
_IDENTITY_COLUMNS = ("owner_type", "owner_id", "asset", "kind")


def _lock_sql(count: int, *, by_id: bool, unlocked: int = 0) -> str:
    """The lock statement for ``count`` wanted accounts, built once per shape; its parameters are the wanted
    rows' values, then the organisation (``_lock_rows``). With ``unlocked``, that many more accounts (shared
    ones) are read in the same statement without locking their balance rows; their rows' values and the
    organisation come after. SQLite locks nothing row by row, so there they are simply more wanted rows.

    Each wanted identity must be one look-up in the account table's unique (organisation, owner, asset,
    kind) index. PostgreSQL does that for an ``OR`` of identities (a BitmapOr of index scans); SQLite's
    planner scanned every account of the organisation for it (0.4 ms at 2,000 accounts, growing with the
    chain), so there the identities are a ``VALUES`` list that drives the join (SQLite's ``CROSS JOIN`` keeps
    the written order). PostgreSQL, given that list, hashed the whole balance table instead."""
    key = (connection.vendor, count, by_id, unlocked)
    sql = _LOCK_SQL.get(key)
    if sql is not None:
        return sql
    if unlocked and connection.vendor == "sqlite":
        sql = _LOCK_SQL[key] = _lock_sql(count + unlocked, by_id=by_id)
        return sql
    qn = connection.ops.quote_name
    account_table, balance_table = qn(Account._meta.db_table), qn(Balance._meta.db_table)
    columns = ", ".join([f"a.{qn(c)}" for c in _ACCOUNT_FIELDS] + [f"b.{qn(c)}" for c in _BALANCE_FIELDS])
    wanted = ([qn("id")] if by_id else []) + [qn(c) for c in _IDENTITY_COLUMNS]
    organisation = f"a.{qn('organisation_id')} = %s"
    if connection.vendor == "sqlite":
        names = [f"w{i}" for i in range(len(wanted))]
        row = "(" + ", ".join(["%s"] * len(wanted)) + ")"
        match = " AND ".join([organisation] + [f"a.{c} = w.{n}" for c, n in zip(wanted, names, strict=True)])
        sql = (
            f"WITH w({', '.join(names)}) AS (VALUES {', '.join([row] * count)}) "  # noqa: S608
            f"SELECT {columns} FROM w CROSS JOIN {account_table} a ON {match} "
            f"JOIN {balance_table} b ON b.{qn('account_id')} = a.{qn('id')} ORDER BY b.{qn('account_id')}"
        )
    else:
        one = "(" + " AND ".join(f"a.{c} = %s" for c in wanted) + ")"
        sql = (
            f"SELECT {columns} FROM {balance_table} b JOIN {account_table} a ON a.{qn('id')} = b.{qn('account_id')} "  # noqa: S608
            f"WHERE ({' OR '.join([one] * count)}) AND {organisation} ORDER BY b.{qn('account_id')}"
        )
    if connection.features.has_select_for_update:
        sql += " FOR UPDATE OF b" if connection.features.has_select_for_update_of else " FOR UPDATE"
    if unlocked:
        # The shared accounts from the account table alone, so no balance row of theirs is locked; their
        # balance columns are placeholders (nothing reads a shared account's locked balance).
        one = "(" + " AND ".join(f"a.{c} = %s" for c in wanted) + ")"
        account_columns = ", ".join(f"a.{qn(c)}" for c in _ACCOUNT_FIELDS)
        shared_sql = (
            f"SELECT {account_columns}, a.{qn('id')}, 0, a.{qn('may_go_negative')}, 0 FROM {account_table} a "  # noqa: S608
            f"WHERE ({' OR '.join([one] * unlocked)}) AND {organisation}"
        )
        sql = f"WITH l AS ({sql}) SELECT * FROM l UNION ALL {shared_sql}" if count else shared_sql  # noqa: S608
    _LOCK_SQL[key] = sql
    return sql


def _lock_rows(
    organisation_id: int, wanted: list[tuple[Any, ...]], *, by_id: bool, unlocked: Sequence[tuple[Any, ...]] = ()
) -> list[Balance]:
    """``SELECT … FOR UPDATE`` of the balance rows (with their accounts) of the ``wanted`` rows — identities,
    each led by its account id when ``by_id`` — in account order; and the ``unlocked`` rows' accounts read in
    the same statement without a lock (their balances are placeholders)."""
    params: list[Any] = [value for row in wanted for value in row]
    if unlocked and connection.vendor == "sqlite":  # one VALUES list of all, then the organisation
        params += [value for row in unlocked for value in row]
        params.append(organisation_id)
    else:
        if wanted:
            params.append(organisation_id)
        if unlocked:
            params += [value for row in unlocked for value in row]
            params.append(organisation_id)
    balances = []
    alias = connection.alias
    with hot_cursor(connection, len(params)) as cursor:
        cursor.execute(_lock_sql(len(wanted), by_id=by_id, unlocked=len(unlocked)), params)
        for row in cursor.fetchall():
            pk, org_id, owner_type, owner_id, asset, kind, flag, shared, _, amount, balance_flag, version = row
            account = _instance(
                Account,
                _ACCOUNT_FIELDS,
                (pk, org_id, owner_type, owner_id, asset, kind, bool(flag), bool(shared)),
                alias,
            )
            balance = _instance(Balance, _BALANCE_FIELDS, (pk, amount, bool(balance_flag), version), alias)
            balance.account = account  # the related object, as select_related would set it
            balances.append(balance)
    return balances


def _flag_mismatch(account: Account) -> Conflict:
    return Conflict(
        "ledger.account_flag_mismatch",
        zh=f"账户 {account} 已存在，但“允许负余额”设置不同。",
        en=f"Account {account} exists with a different may-go-negative setting.",
    )


def _insufficient(balance: Balance, before: int, change: int) -> ApplicationError:
    return ApplicationError(
        "ledger.insufficient_balance",
        zh=f"余额不足：账户 {balance.account} 现有 {before}，本次变动 {change}。",
        en=f"Insufficient balance: account {balance.account} holds {before}, the change is {change}.",
        extra={"account_id": balance.account_id, "balance": before, "change": change},
    )


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
