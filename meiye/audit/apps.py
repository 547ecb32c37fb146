from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "meiye.audit"
    label = "audit"
    verbose_name = "Audit log"
