from django.apps import AppConfig


class PromotionsConfig(AppConfig):
    name = "meiye.promotions"
    label = "promotions"
    verbose_name = "Coupons and promotions"

    def ready(self) -> None:
        # Members know nothing of coupons; coupons hook into the member merge and the data export.
        from meiye.members.services import EXPORT_SECTIONS, MERGE_HOOKS
        from meiye.promotions.services import coupons_export_section, coupons_merge

        if coupons_merge not in MERGE_HOOKS:
            MERGE_HOOKS.append(coupons_merge)
        if coupons_export_section not in EXPORT_SECTIONS:
            EXPORT_SECTIONS.append(coupons_export_section)
