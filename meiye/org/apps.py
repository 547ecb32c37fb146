from django.apps import AppConfig


class OrgConfig(AppConfig):
    name = "meiye.org"
    label = "org"
    verbose_name = "Organisation, stores and staff"
