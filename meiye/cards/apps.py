from django.apps import AppConfig


class CardsConfig(AppConfig):
    """Member cards (会员卡): the card numbers a member pays with, their lifecycle and payment security."""

    name = "meiye.cards"
    label = "cards"
    verbose_name = "Member cards"
