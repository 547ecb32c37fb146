from django.apps import AppConfig


class SalesConfig(AppConfig):
    name = "meiye.sales"
    label = "sales"
    verbose_name = "Sales"
