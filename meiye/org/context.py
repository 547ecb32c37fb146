"""Who is acting, from which store and address. Every service takes one."""

from __future__ import annotations

from dataclasses import dataclass

from meiye.core.errors import forbidden
from meiye.org.models import Organisation, Staff, Store


@dataclass(frozen=True)
class Actor:
    staff: Staff | None
    organisation: Organisation
    store: Store | None = None
    ip: str | None = None

    @classmethod
    def system(cls, organisation: Organisation, store: Store | None = None) -> Actor:
        """Scheduled jobs and management commands act as the system."""
        return cls(staff=None, organisation=organisation, store=store)

    @property
    def is_system(self) -> bool:
        return self.staff is None

    def can(self, perm: str) -> bool:
        return self.staff is None or self.staff.can(perm)

    def require(self, perm: str) -> None:
        if not self.can(perm):
            raise forbidden(perm)
