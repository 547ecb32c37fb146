from typing import Any

from django.http import HttpRequest


def frontdesk(request: HttpRequest) -> dict[str, Any]:
    return {}
