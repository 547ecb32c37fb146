"""Which journal took how many points from which lot is history: ``loyalty_pointslotuse`` is append-only."""

from django.db import migrations

from meiye.core.immutable import append_only, drop_append_only


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0001_earning_rates_settings_points_lots")]

    operations = [
        migrations.RunPython(append_only("loyalty_pointslotuse"), drop_append_only("loyalty_pointslotuse")),
    ]
