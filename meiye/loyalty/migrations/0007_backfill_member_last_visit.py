"""Backfill ``MemberVisit`` (each member's last bill journal on one of her accounts) from the whole ledger, and
record in ``VisitScan`` how far it read, so ``rules.member_visits_refresh`` continues from there. The SQL is
the refresh's own (``rules._VISITS_UPSERT``), copied so that this migration does not change when it does."""

from datetime import timedelta
from typing import Any

from django.db import migrations
from django.utils import timezone

UPSERT = (
    "INSERT INTO loyalty_membervisit (member_id, organisation_id, last_visit_at) "
    "SELECT a.owner_id, j.organisation_id, MAX(j.created_at) FROM ledger_journal j "
    "JOIN ledger_entry e ON e.journal_id = j.id JOIN ledger_account a ON a.id = e.account_id "
    "WHERE j.reference_type = %s AND j.reversal_of_id IS NULL AND j.code NOT LIKE %s AND a.owner_type = 'member' "
    "AND EXISTS (SELECT 1 FROM members_member m WHERE m.id = a.owner_id AND m.organisation_id = j.organisation_id) "
    "GROUP BY a.owner_id, j.organisation_id "
    "ON CONFLICT (member_id) DO UPDATE SET last_visit_at = excluded.last_visit_at "
    "WHERE loyalty_membervisit.last_visit_at < excluded.last_visit_at"
)


def backfill(apps: Any, schema_editor: Any) -> None:
    connection = schema_editor.connection
    organisation = apps.get_model("org", "Organisation")
    scan = apps.get_model("loyalty", "VisitScan")
    upto = connection.ops.adapt_datetimefield_value(timezone.now() - timedelta(hours=1))
    with connection.cursor() as cursor:
        cursor.execute(UPSERT, ["sales.Bill", "sales.refund%"])
        cursor.execute(
            "SELECT organisation_id, MAX(id) FROM ledger_journal WHERE created_at < %s GROUP BY organisation_id",
            [upto],
        )
        read = dict(cursor.fetchall())
    for pk in organisation.objects.values_list("pk", flat=True):
        scan.objects.update_or_create(organisation_id=pk, defaults={"journal_id": read.get(pk) or 0})


def forget(apps: Any, schema_editor: Any) -> None:
    apps.get_model("loyalty", "MemberVisit").objects.all().delete()
    apps.get_model("loyalty", "VisitScan").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0002_append_only_and_balanced_journals"),
        ("loyalty", "0006_member_last_visit"),
    ]

    operations = [migrations.RunPython(backfill, forget)]
