"""Idempotency: a replay of the same request returns the first result; a different body is refused.

Service level: ``run_idempotent(...)`` wraps a write so that it happens once per (organisation, key).
HTTP level: ``meiye.api.idempotency`` stores whole responses with the same model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from meiye.core.errors import Conflict, ValidationFailed
from meiye.core.models import IdempotencyRecord

MAX_KEY_LENGTH = 128


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


def lookup(*, organisation_id: int, key: str, request_hash: str) -> Replay | None:
    """The stored result for this key, or None. Raises ``idempotency.key_reused`` on a different body."""
    record = IdempotencyRecord.objects.filter(organisation_id=organisation_id, key=key).first()
    if record is None:
        return None
    if record.request_hash != request_hash:
        raise conflict_error(key)
    return Replay(status_code=record.status_code, response=record.response)


def store(
    *, organisation_id: int, key: str, scope: str, request_hash: str, status_code: int, response: dict[str, Any]
) -> None:
    """Store the first result; must run inside the transaction of the operation it records."""
    IdempotencyRecord.objects.create(
        organisation_id=organisation_id,
        key=key,
        scope=scope,
        request_hash=request_hash,
        status_code=status_code,
        response=response,
    )


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
