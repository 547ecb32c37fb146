"""A double-entry ledger that knows nothing about salons.

An ``Account`` holds one asset ("CNY" fen, "PTS" points, "SES:<item id>" sessions) for one owner. Every
change to a balance is a ``Journal`` whose ``Entry`` rows net to zero per asset; the ``Balance`` row is
updated in the same transaction. Sign convention: a positive entry raises the account's balance, so a
balance always equals the sum of its account's entries.

Journals and entries are never updated or deleted (database triggers refuse it, see migration 0002);
a mistake is corrected by a reversing journal. Owners and organisations are plain ids because the
ledger must not import the apps that own them.
"""

from __future__ import annotations

from django.db import models

CODE_MAX_LENGTH = 64
ASSET_MAX_LENGTH = 32


class Account(models.Model):
    """One owner's holding of one asset for one purpose (``kind``, chosen by the calling app)."""

    organisation_id = models.BigIntegerField()
    owner_type = models.CharField(max_length=32, help_text="e.g. 'member', 'store', 'organisation'")
    owner_id = models.BigIntegerField()
    asset = models.CharField(max_length=ASSET_MAX_LENGTH, help_text="'CNY' (fen), 'PTS', 'SES:<item id>' …")
    kind = models.CharField(max_length=32, help_text="e.g. 'wallet_principal', 'points', 'revenue'")
    may_go_negative = models.BooleanField(
        default=False, help_text="counter-accounts (revenue, tender, breakage) may; member holdings may not"
    )
    shared = models.BooleanField(
        default=False,
        db_default=False,
        help_text="a counter-account many postings share (a store's takings, the organisation's points issued): "
        "postings append a BalanceDelta instead of locking and updating its balance row (ADR 0009)",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation_id", "owner_type", "owner_id", "asset", "kind"],
                name="ledger_account_unique_owner_asset_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.owner_type}#{self.owner_id} {self.kind} {self.asset}"


class Balance(models.Model):
    """The current balance of one account, kept equal to the sum of its entries by the posting service.

    ``may_go_negative`` is copied from the account because a CHECK constraint can only see its own row.
    """

    account = models.OneToOneField(Account, on_delete=models.PROTECT, primary_key=True, related_name="balance")
    amount = models.BigIntegerField(default=0)
    may_go_negative = models.BooleanField(default=False)
    version = models.PositiveBigIntegerField(default=0, help_text="bumped on every change")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gte=0) | models.Q(may_go_negative=True),
                name="ledger_balance_not_negative_unless_allowed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id}: {self.amount}"


class BalanceDelta(models.Model):
    """A change to a shared account's balance not yet added to its ``Balance`` row (ADR 0009).

    A shared account's balance is its row's ``amount`` plus the sum of its deltas. Postings insert deltas
    without locking anything, so checkouts in every store of a chain do not queue on the organisation's and
    the store's counter-accounts; ``ledger.services.balances_fold`` moves them into the rows (under the row's
    lock) every minute. Deltas are a cache of the entries like the balance row, not a record: the fold deletes
    them, and ``ledger_verify`` checks row + deltas against the entries."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="deltas")
    amount = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.account_id}: {self.amount:+d}"


class Journal(models.Model):
    """One business event's change to the ledger: why (``code``), for what (reference), by whom."""

    organisation_id = models.BigIntegerField()
    code = models.CharField(max_length=CODE_MAX_LENGTH, help_text="why, e.g. 'wallet.recharge'")
    reference_type = models.CharField(max_length=64, blank=True)
    reference_id = models.CharField(max_length=64, blank=True)
    staff_id = models.BigIntegerField(null=True, blank=True)
    store_id = models.BigIntegerField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=128, null=True, blank=True)
    payload_hash = models.CharField(max_length=64, help_text="SHA-256 of the canonical posting request")
    reversal_of = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reversed_by",
        help_text="the journal this one mirrors; unique, so a journal is reversed at most once",
    )
    memo = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation_id", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="ledger_journal_unique_org_idempotency_key",
            ),
        ]
        indexes = [
            models.Index(fields=["organisation_id", "reference_type", "reference_id"], name="ledger_journal_ref_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.code} {self.reference_type}#{self.reference_id}"


class Entry(models.Model):
    """One signed line of a journal. ``asset`` is copied from the account so netting per asset can be
    checked from this table alone (the database also checks that it matches the account)."""

    journal = models.ForeignKey(Journal, on_delete=models.PROTECT, related_name="entries")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries")
    amount = models.BigIntegerField()
    asset = models.CharField(max_length=ASSET_MAX_LENGTH)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~models.Q(amount=0), name="ledger_entry_amount_not_zero"),
        ]

    def __str__(self) -> str:
        return f"journal {self.journal_id} account {self.account_id}: {self.amount:+d} {self.asset}"
