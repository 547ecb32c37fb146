from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "meiye.demo"
    label = "demo"
    verbose_name = "Demo data"
