"""Reads of the audit log, scoped to the organisation and, for store staff, to the stores they see.

``audit`` sits below ``org`` in the layer contract, so the acting context is described by a protocol
(like ``audit.services.ActorLike``) rather than imported.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Protocol

from django.db.models import QuerySet

from meiye.audit.models import AuditLog

# The permission name as defined by ``meiye.org.roles.Perm.AUDIT_VIEW`` (not imported: layer contract).
AUDIT_VIEW = "audit.view"


class AuditReader(Protocol):
    @property
    def staff(self) -> Any: ...
    @property
    def organisation(self) -> Any: ...
    def require(self, perm: str) -> None: ...


def audit_list(
    actor: AuditReader,
    *,
    action: str | None = None,
    staff_id: int | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> QuerySet[AuditLog]:
    """Audit rows the actor may read, newest first.

    ``action`` matches exactly, or as a prefix when it ends with "." (``member.`` = every member action).
    ``date_from`` and ``date_to`` are inclusive calendar days in the current time zone.
    HQ roles see the whole organisation; other staff only rows written in the stores they belong to.
    """
    actor.require(AUDIT_VIEW)
    qs = AuditLog.objects.filter(organisation=actor.organisation).select_related("staff", "store")
    staff = actor.staff
    if staff is not None and not staff.sees_all_stores:
        store_ids = list(staff.stores.filter(organisation=actor.organisation).values_list("id", flat=True))
        qs = qs.filter(store_id__in=store_ids)
    if action:
        action = action.strip()
        qs = qs.filter(action__startswith=action) if action.endswith(".") else qs.filter(action=action)
    if staff_id is not None:
        qs = qs.filter(staff_id=staff_id)
    if object_type:
        qs = qs.filter(object_type=object_type.strip())
    if object_id:
        qs = qs.filter(object_id=str(object_id).strip())
    if date_from is not None:
        qs = qs.filter(at__date__gte=date_from)
    if date_to is not None:
        qs = qs.filter(at__date__lte=date_to)
    return qs.order_by("-at", "-id")
