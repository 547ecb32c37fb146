from django.apps import AppConfig


class PackagesConfig(AppConfig):
    """Count cards, combo packages and time cards (计次卡/套餐/时间卡)."""

    name = "meiye.packages"
    label = "packages"
    verbose_name = "Packages"

    def ready(self) -> None:
        from meiye.members.services import EXPORT_SECTIONS, MERGE_HOOKS
        from meiye.packages.services import packages_export_section, packages_merge

        if packages_merge not in MERGE_HOOKS:
            MERGE_HOOKS.append(packages_merge)
        if packages_export_section not in EXPORT_SECTIONS:
            EXPORT_SECTIONS.append(packages_export_section)
