from django.apps import AppConfig


class FrontdeskConfig(AppConfig):
    name = "meiye.frontdesk"
    label = "frontdesk"
    verbose_name = "Front desk"
