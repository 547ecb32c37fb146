from django.apps import AppConfig


class LoyaltyConfig(AppConfig):
    name = "meiye.loyalty"
    label = "loyalty"
    verbose_name = "Points and growth value"

    def ready(self) -> None:
        # Members know nothing of points or tiers; both hook into the member merge and the data export.
        from meiye.loyalty.services import points_export_section, points_merge
        from meiye.loyalty.tiers import TIER_CHANGE_HOOKS, tier_change_notify, tier_export_section, tier_merge
        from meiye.members.services import EXPORT_SECTIONS, MERGE_HOOKS

        for hook in (points_merge, tier_merge):
            if hook not in MERGE_HOOKS:
                MERGE_HOOKS.append(hook)
        for section in (points_export_section, tier_export_section):
            if section not in EXPORT_SECTIONS:
                EXPORT_SECTIONS.append(section)
        # A tier change tells the member (notification event "tier.changed").
        if tier_change_notify not in TIER_CHANGE_HOOKS:
            TIER_CHANGE_HOOKS.append(tier_change_notify)
