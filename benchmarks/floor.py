"""The bare-Django floor: one POST that performs as many row writes as a checkout, in one transaction,
with no domain logic, no authentication and no serialisation beyond a tiny JSON answer."""

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
    with transaction.atomic():
        for _ in range(int(getattr(settings, "BENCH_FLOOR_WRITES", 20))):
            IdempotencyRecord.objects.create(
                organisation_id=0, key=uuid.uuid4().hex, scope="bench.floor", request_hash="0" * 64, response={}
            )
    return JsonResponse({"ok": True}, status=201)
