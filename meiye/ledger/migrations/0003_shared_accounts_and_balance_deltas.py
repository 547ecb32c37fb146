"""Shared counter-accounts and their pending balance deltas (ADR 0009).

Existing counter-accounts of stores and of the organisation become shared (the rule of
``settings.LEDGER_SHARED_OWNER_TYPES`` as it stood when this was written); their balance rows are already
current, so they start with no deltas.
"""

import django.db.models.deletion
from django.db import migrations, models

SHARED_OWNER_TYPES = ("store", "organisation")


def mark_shared(apps, schema_editor):
    Account = apps.get_model("ledger", "Account")
    Account.objects.filter(owner_type__in=SHARED_OWNER_TYPES, may_go_negative=True).update(shared=True)


def fold_deltas(apps, schema_editor):
    """Backwards: add the pending deltas to their balance rows before the table goes (nothing is lost)."""
    Balance = apps.get_model("ledger", "Balance")
    BalanceDelta = apps.get_model("ledger", "BalanceDelta")
    totals = BalanceDelta.objects.values("account_id").annotate(total=models.Sum("amount")).order_by("account_id")
    for row in totals:
        Balance.objects.filter(account_id=row["account_id"]).update(amount=models.F("amount") + row["total"])
    BalanceDelta.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0002_append_only_and_balanced_journals"),
    ]

    operations = [
        # On SQLite, Django would rebuild ledger_account to add the column, which the entry table's asset
        # trigger (migration 0002) forbids; a plain ADD COLUMN works on both databases.
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    "ALTER TABLE ledger_account ADD COLUMN shared boolean DEFAULT FALSE NOT NULL",
                    "ALTER TABLE ledger_account DROP COLUMN shared",
                )
            ],
            state_operations=[
                migrations.AddField(
                    model_name="account",
                    name="shared",
                    field=models.BooleanField(
                        db_default=False,
                        default=False,
                        help_text="a counter-account many postings share (a store's takings, the organisation's points issued): postings append a BalanceDelta instead of locking and updating its balance row (ADR 0009)",
                    ),
                ),
            ],
        ),
        migrations.RunPython(mark_shared, migrations.RunPython.noop),
        migrations.CreateModel(
            name="BalanceDelta",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("amount", models.BigIntegerField()),
                (
                    "account",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="deltas", to="ledger.account"
                    ),
                ),
            ],
        ),
        migrations.RunPython(migrations.RunPython.noop, fold_deltas),
    ]
