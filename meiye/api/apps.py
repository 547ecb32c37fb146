from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "meiye.api"
    label = "api"
    verbose_name = "API v1"
