from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "meiye.campaigns"
    label = "campaigns"
    verbose_name = "Segments and campaigns"
