from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "meiye.catalog"
    label = "catalog"
    verbose_name = "Catalogue"
