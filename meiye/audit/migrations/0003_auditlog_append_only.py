from django.db import migrations

from meiye.core.immutable import append_only, drop_append_only


class Migration(migrations.Migration):
    """The audit log is never edited: database triggers refuse UPDATE and DELETE."""

    dependencies = [("audit", "0002_initial")]

    operations = [
        migrations.RunPython(append_only("audit_auditlog"), drop_append_only("audit_auditlog")),
    ]
