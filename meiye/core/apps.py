from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.db.backends.signals import connection_created


def _purge_allowed() -> int:
    return 1 if getattr(settings, "MEIYE_ALLOW_PURGE", False) else 0


def _register_sqlite_functions(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_function("meiye_purge_allowed", 0, _purge_allowed)


class CoreConfig(AppConfig):
    name = "meiye.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        connection_created.connect(_register_sqlite_functions, dispatch_uid="meiye_sqlite_functions")
