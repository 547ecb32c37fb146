"""The bare-Django floor: one POST that performs as many row writes as a checkout, in as many statements, in
one transaction, with no domain logic, no authentication and no serialisation beyond a tiny JSON answer.

The preparer measures one API checkout (benchmarks/prepare.py): ``BENCH_FLOOR_WRITES`` write statements that
change ``BENCH_FLOOR_ROWS`` rows (a checkout inserts its journals, entries, lines and tenders with one
multi-row statement each). The floor writes the same number of rows with the same number of statements, each
an ORM ``bulk_create`` (a one-row one is ``create``'s INSERT).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from meiye.core.models import IdempotencyRecord


@csrf_exempt
@require_POST
def floor(request: HttpRequest) -> JsonResponse:
    statements = max(int(getattr(settings, "BENCH_FLOOR_WRITES", 20)), 1)
    rows = max(int(getattr(settings, "BENCH_FLOOR_ROWS", statements)), statements)
    with transaction.atomic():
        for index in range(statements):
            count = rows // statements + (1 if index < rows % statements else 0)
            IdempotencyRecord.objects.bulk_create(
                [
                    IdempotencyRecord(
                        organisation_id=0, key=uuid.uuid4().hex, scope="bench.floor", request_hash="0" * 64, response={}
                    )
                    for _ in range(count)
                ]
            )
    return JsonResponse({"ok": True}, status=201)
