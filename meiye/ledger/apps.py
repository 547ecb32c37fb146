from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "meiye.ledger"
    label = "ledger"
    verbose_name = "Ledger"
