from django.apps import AppConfig


class CardsConfig(AppConfig):
    """Member cards (会员卡): the card numbers a member pays with, their lifecycle and payment security."""

    name = "meiye.cards"
    label = "cards"
    verbose_name = "Member cards"

    def ready(self) -> None:
        # Members and notify know nothing of cards: cards hook into merge and export, and give notify the
        # one-time code of a payment-code SMS at delivery time (the stored body shows it masked).
        from meiye.cards.services import cards_export_section, cards_merge, payment_code_secret
        from meiye.members.services import EXPORT_SECTIONS, MERGE_HOOKS
        from meiye.notify.events import WALLET_PAYMENT_CODE
        from meiye.notify.services import SECRET_SOURCES

        if cards_merge not in MERGE_HOOKS:
            MERGE_HOOKS.append(cards_merge)
        if cards_export_section not in EXPORT_SECTIONS:
            EXPORT_SECTIONS.append(cards_export_section)
        SECRET_SOURCES[WALLET_PAYMENT_CODE] = payment_code_secret
