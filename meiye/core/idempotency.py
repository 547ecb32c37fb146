"""Idempotency: a replay of the same request returns the first result; a different body is refused.

Service level: ``run_idempotent(...)`` wraps a write so that it happens once per (organisation, key).
HTTP level: ``meiye.api.idempotency`` stores whole responses with the same model.

Retention: records are kept ``MEIYE_IDEMPOTENCY_RETENTION_DAYS`` (30) days, then ``idempotency_purge``
deletes them (``manage.py idempotency_purge``, the daily Huey task ``core.tasks.idempotency_purge_task``).
A retry older than that is no longer answered from the stored response, but it still cannot charge twice:
bills, refunds, recharges and ledger journals keep their own idempotency keys for good, so the service
answers the first result again (only the stored HTTP answer is gone).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from meiye.core.db.fastwrite import EncodedJSON, insert_rows
from meiye.core.db.prepared import PreparedQuery
from meiye.core.errors import Conflict, ValidationFailed
from meiye.core.models import IdempotencyRecord

MAX_KEY_LENGTH = 128
PURGE_BATCH = 1_000

log = logging.getLogger("meiye.idempotency")


def canonical_hash(payload: Any) -> str:
    """SHA-256 of the payload as canonical JSON (sorted keys, no spaces)."""
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def validate_key(key: str) -> str:
    key = (key or "").strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationFailed(
            "idempotency.invalid_key",
            zh=f"Idempotency-Key：需要 1 到 {MAX_KEY_LENGTH} 个可打印字符。",
            en=f"Idempotency-Key: must be 1 to {MAX_KEY_LENGTH} printable characters.",
            field="idempotency_key",
        )
    return key


def conflict_error(key: str) -> Conflict:
    return Conflict(
        "idempotency.key_reused",
        zh=f"幂等键 {key!r} 已用于另一个不同内容的请求，请换一个新的键。",
        en=f"Idempotency key {key!r} was already used for a request with a different body; use a new key.",
        field="idempotency_key",
    )


@dataclass(frozen=True)
class Replay:
    status_code: int
    response: dict[str, Any]


_RECORD: PreparedQuery[IdempotencyRecord] = PreparedQuery(
    lambda organisation_id, key: IdempotencyRecord.objects.filter(organisation_id=organisation_id, key=key).order_by(
        "pk"
    )[:1],
    [int, str],
)


def lookup(*, organisation_id: int, key: str, request_hash: str) -> Replay | None:
    """The stored result for this key, or None. Raises ``idempotency.key_reused`` on a different body."""
    record = _RECORD.first(organisation_id, key)
    if record is None:
        return None
    if record.request_hash != request_hash:
        raise conflict_error(key)
    return Replay(status_code=record.status_code, response=record.response)


def store(
    *,
    organisation_id: int,
    key: str,
    scope: str,
    request_hash: str,
    status_code: int,
    response: dict[str, Any] | EncodedJSON,
) -> None:
    """Store the first result (a JSON object, or its text already encoded); must run inside the transaction of
    the operation it records."""
    record = IdempotencyRecord(
        organisation_id=organisation_id,
        key=key,
        scope=scope,
        request_hash=request_hash,
        status_code=status_code,
        response=response,
    )
    insert_rows([record], keys_later=True)  # queued in a pipelined block (meiye.core.db.pipeline)


def run_idempotent(
    *,
    organisation_id: int,
    key: str,
    scope: str,
    payload: Any,
    operation: Callable[[], dict[str, Any]],
) -> tuple[dict[str, Any], bool]:
    """Run ``operation`` once per (organisation, key); returns (result, replayed).

    The operation and the record are written in one transaction, so a failed operation leaves no record
    and may be retried with the same key. Two concurrent first attempts: one wins, the other sees the
    unique constraint and gets the winner's stored result.
    """
    key = validate_key(key)
    request_hash = canonical_hash(payload)
    replay = lookup(organisation_id=organisation_id, key=key, request_hash=request_hash)
    if replay is not None:
        return replay.response, True
    try:
        with transaction.atomic():
            result = operation()
            store(
                organisation_id=organisation_id,
                key=key,
                scope=scope,
                request_hash=request_hash,
                status_code=200,
                response=result,
            )
    except IntegrityError:
        replay = lookup(organisation_id=organisation_id, key=key, request_hash=request_hash)
        if replay is None:
            raise
        return replay.response, True
    return result, False


# --- retention ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PurgeResult:
    cutoff: datetime  # records created before this moment are (or, in a dry run, would be) deleted
    matched: int
    deleted: int
    dry_run: bool


def idempotency_cutoff(*, today: date, retention_days: int | None = None) -> datetime:
    """The start (00:00 in ``TIME_ZONE``) of the oldest day still kept: ``today`` minus the retention days.

    With 30 days, the purge of 2026-12-31 keeps what was created from 2026-12-01 00:00 on."""
    days = getattr(settings, "MEIYE_IDEMPOTENCY_RETENTION_DAYS", 30) if retention_days is None else retention_days
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"MEIYE_IDEMPOTENCY_RETENTION_DAYS must be a whole number of days >= 1, got {days!r}")
    return timezone.make_aware(datetime.combine(today - timedelta(days=days), time.min))


def idempotency_purge(
    *,
    today: date,
    retention_days: int | None = None,
    dry_run: bool = False,
    batch_size: int = PURGE_BATCH,
    progress: Callable[[int], None] | None = None,
) -> PurgeResult:
    """Delete the idempotency records older than the retention period (see ``idempotency_cutoff``).

    Deletes in batches of ``batch_size`` records, one short transaction each, so a large backlog never holds
    a long lock and an interrupted purge simply continues on the next run. ``dry_run`` only counts.
    ``progress(n)`` is called after each batch. The table is not append-only, so no trigger stands in the way.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    cutoff = idempotency_cutoff(today=today, retention_days=retention_days)
    old = IdempotencyRecord.objects.filter(created_at__lt=cutoff)
    matched = old.count()
    deleted = 0
    if not dry_run:
        while True:
            with transaction.atomic():
                ids = list(old.order_by("pk").values_list("pk", flat=True)[:batch_size])
                if ids:
                    deleted += IdempotencyRecord.objects.filter(pk__in=ids, created_at__lt=cutoff).delete()[0]
            if progress is not None and ids:
                progress(len(ids))
            if len(ids) < batch_size:
                break
    log.info(
        "idempotency purge",
        extra={"cutoff": cutoff.isoformat(), "matched": matched, "deleted": deleted, "dry_run": dry_run},
    )
    return PurgeResult(cutoff=cutoff, matched=matched, deleted=deleted, dry_run=dry_run)
