from django.apps import AppConfig


class MembersConfig(AppConfig):
    name = "meiye.members"
    label = "members"
    verbose_name = "Members"
