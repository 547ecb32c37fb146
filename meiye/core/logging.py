"""Structured logs: one JSON object per line, with the request id when there is one."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def _safe(value: Any) -> Any:
    """Plain values as they are; a request as method and path only (its query string may hold a phone
    number); any other object by its type alone, so personal data never reaches the logs by accident."""
    if isinstance(value, str | int | bool | None):
        return value
    if isinstance(value, HttpRequest):
        return f"{value.method} {value.path}"
    return f"<{type(value).__name__}>"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = _safe(value)
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)
