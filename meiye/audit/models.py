from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditLog(models.Model):
    """Who did what to which object, from which store and address, when. Never updated or deleted
    (database triggers refuse it, see the migration)."""

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    staff = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    store = models.ForeignKey("org.Store", on_delete=models.PROTECT, null=True, related_name="+")
    ip = models.GenericIPAddressField(null=True)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["organisation", "object_type", "object_id"], name="audit_object_idx")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.object_type}#{self.object_id}"
