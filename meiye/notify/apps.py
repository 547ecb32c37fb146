from django.apps import AppConfig


class NotifyConfig(AppConfig):
    name = "meiye.notify"
    label = "notify"
    verbose_name = "Notifications"

    def ready(self) -> None:
        # Members know nothing of messages; notifications hook into the member merge, export and erasure.
        from meiye.members.services import EXPORT_SECTIONS, MERGE_HOOKS, RETENTION_HOOKS
        from meiye.notify import checks  # noqa: F401 - registers the configuration checks
        from meiye.notify.services import notify_erasure_hook, notify_export_section, notify_merge

        if notify_merge not in MERGE_HOOKS:
            MERGE_HOOKS.append(notify_merge)
        if notify_export_section not in EXPORT_SECTIONS:
            EXPORT_SECTIONS.append(notify_export_section)
        if notify_erasure_hook not in RETENTION_HOOKS:
            RETENTION_HOOKS.append(notify_erasure_hook)
