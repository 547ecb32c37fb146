"""Quiet hours (免打扰时段): a local-time window, e.g. 21:00–09:00, in which marketing messages wait.

A window whose start is after its end runs over midnight. Equal start and end means no quiet hours.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "Asia/Shanghai")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Asia/Shanghai")


def in_quiet_hours(at: datetime, *, start: time, end: time, zone: ZoneInfo) -> bool:
    local = at.astimezone(zone).time().replace(tzinfo=None)
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def quiet_hours_end(at: datetime, *, start: time, end: time, zone: ZoneInfo) -> datetime:
    """When the quiet hours that contain ``at`` end (the next local ``end`` after ``at``)."""
    local = at.astimezone(zone)
    candidate = datetime.combine(local.date(), end, tzinfo=zone)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), end, tzinfo=zone)
    return candidate
