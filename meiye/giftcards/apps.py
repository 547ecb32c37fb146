from django.apps import AppConfig


class GiftCardsConfig(AppConfig):
    """Gift cards (礼品卡): bearer cards, separate from stored value."""

    name = "meiye.giftcards"
    label = "giftcards"
    verbose_name = "Gift cards"
