"""Writing the audit log. Call inside the transaction of the change being recorded."""

from __future__ import annotations

from typing import Any, Protocol

from django.db import models

from meiye.audit.models import AuditLog
from meiye.core.db.fastwrite import insert_rows


class ActorLike(Protocol):
    @property
    def staff(self) -> Any: ...
    @property
    def organisation(self) -> Any: ...
    @property
    def store(self) -> Any: ...
    @property
    def ip(self) -> str | None: ...


def audit_record(
    *,
    actor: ActorLike,
    action: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditLog:
    if obj is not None:
        object_type = object_type or obj._meta.label
        object_id = object_id or str(obj.pk)
    row = AuditLog(
        organisation=actor.organisation,
        staff=actor.staff,
        store=actor.store,
        ip=actor.ip,
        action=action,
        object_type=object_type,
        object_id=object_id,
        object_repr=str(obj)[:200] if obj is not None else "",
        detail=detail or {},
    )
    # SQL built once per connection (meiye.core.db.fastwrite): every action is audited. In a pipelined block the
    # row is queued, its key set when the block settles (nothing reads an audit row's key at once).
    insert_rows([row], keys_later=True)
    return row
