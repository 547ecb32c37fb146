from __future__ import annotations

from django.db import models


class IdempotencyRecord(models.Model):
    """The first result of an operation sent with an idempotency key.

    Keyed by (organisation, key). ``request_hash`` is a SHA-256 of the canonical request body: a replay
    with the same body gets the stored result back; a different body under the same key is refused.
    The organisation is a plain id because ``core`` knows nothing of organisations.

    Not append-only: erasure redacts stored replies about a member (an UPDATE), and records older than
    ``MEIYE_IDEMPOTENCY_RETENTION_DAYS`` are deleted by ``idempotency_purge``.
    """

    organisation_id = models.BigIntegerField()
    key = models.CharField(max_length=128)
    scope = models.CharField(max_length=64, help_text="what kind of operation, e.g. 'http:POST /api/v1/members/'")
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(default=200)
    response = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation_id", "key"], name="core_idem_unique_org_key"),
        ]
        # The retention purge (``core.idempotency.idempotency_purge``) finds old records by creation time.
        indexes = [models.Index(fields=["created_at"], name="core_idem_created_idx")]

    def __str__(self) -> str:
        return f"{self.organisation_id}:{self.key}"
