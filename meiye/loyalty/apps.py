from django.apps import AppConfig


class LoyaltyConfig(AppConfig):
    name = "meiye.loyalty"
    label = "loyalty"
    verbose_name = "Points and growth value"

    def ready(self) -> None:
        # Members know nothing of points; points hook into the member merge and the data export.
        from meiye.loyalty.services import points_export_section, points_merge
        from meiye.members.services import EXPORT_SECTIONS, MERGE_HOOKS

        if points_merge not in MERGE_HOOKS:
            MERGE_HOOKS.append(points_merge)
        if points_export_section not in EXPORT_SECTIONS:
            EXPORT_SECTIONS.append(points_export_section)
