from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "meiye.api"
    label = "api"
    verbose_name = "API v1"

    def ready(self) -> None:
        # Registers the OpenAPI description of the Bearer token scheme with drf-spectacular.
        from meiye.api import schema  # noqa: F401
