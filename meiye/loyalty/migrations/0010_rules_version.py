import secrets

from django.db import migrations, models


def stamp_rules(apps, schema_editor):
    """Every organisation's rules row gets a version (a checkout then takes the rules from its process's copy)."""
    rules = apps.get_model("loyalty", "RulesSettings")
    for pk in rules.objects.order_by("pk").values_list("pk", flat=True):
        rules.objects.filter(pk=pk).update(version=secrets.randbits(62) + 1)


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty", "0009_tiers_version"),
    ]

    operations = [
        migrations.AddField(
            model_name="rulessettings",
            name="version",
            field=models.PositiveBigIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(stamp_rules, migrations.RunPython.noop),
    ]
