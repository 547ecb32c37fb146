from django.apps import AppConfig


class MallConfig(AppConfig):
    name = "meiye.mall"
    label = "mall"
    verbose_name = "Points mall"

    def ready(self) -> None:
        # Members know nothing of the mall; redemptions follow a merge and appear in the data export.
        from meiye.mall.services import mall_export_section, mall_merge
        from meiye.members.services import EXPORT_SECTIONS, MERGE_HOOKS

        if mall_merge not in MERGE_HOOKS:
            MERGE_HOOKS.append(mall_merge)
        if mall_export_section not in EXPORT_SECTIONS:
            EXPORT_SECTIONS.append(mall_export_section)
