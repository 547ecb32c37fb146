from django.apps import AppConfig


class WalletConfig(AppConfig):
    name = "meiye.wallet"
    label = "wallet"
    verbose_name = "Stored value"

    def ready(self) -> None:
        # Members know nothing of stored value; the wallet hooks into merge, export and erasure.
        from meiye.members.services import EXPORT_SECTIONS, MERGE_HOOKS, RETENTION_HOOKS
        from meiye.wallet.services import wallet_export_section, wallet_merge, wallet_retention

        if wallet_merge not in MERGE_HOOKS:
            MERGE_HOOKS.append(wallet_merge)
        if wallet_export_section not in EXPORT_SECTIONS:
            EXPORT_SECTIONS.append(wallet_export_section)
        if wallet_retention not in RETENTION_HOOKS:
            RETENTION_HOOKS.append(wallet_retention)
