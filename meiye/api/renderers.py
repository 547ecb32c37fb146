"""The API's JSON renderer: DRF's, except that an answer already encoded is not encoded again.

An answer sent with an Idempotency-Key is stored as the client receives it (``meiye.api.idempotency``), so it is
encoded once, by ``encoded_json``, exactly as DRF's renderer encodes it (its encoder, compact separators,
``UNICODE_JSON`` / ``STRICT_JSON``, U+2028 and U+2029 escaped); the text is written to the database as it is and
sent as the body. Before, one checkout's answer was encoded three times (for the record, by psycopg, by the
renderer) and decoded once. A client asking for indented JSON (``Accept: application/json; indent=4``) or the
browsable API gets DRF's own rendering of the same data.
"""

from __future__ import annotations

import json
from typing import Any

from rest_framework import renderers
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.utils import encoders

_ENCODED = "_meiye_encoded_json"


def encoded_json(response: Response) -> str:
    """``response.data`` as DRF's JSON renderer writes it without indentation; kept on the response with the
    object it encodes (data that replaces it later is rendered afresh; data changed in place after this call
    would not be: the answer is final once the idempotency layer has stored it)."""
    found: tuple[Any, str] | None = getattr(response, _ENCODED, None)
    if found is None or found[0] is not response.data:
        text = json.dumps(
            response.data,
            cls=encoders.JSONEncoder,
            ensure_ascii=not api_settings.UNICODE_JSON,
            allow_nan=not api_settings.STRICT_JSON,
            separators=(",", ":") if api_settings.COMPACT_JSON else (", ", ": "),
        )
        found = (response.data, text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
        setattr(response, _ENCODED, found)
    return found[1]


class JSONRenderer(renderers.JSONRenderer):
    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        response = (renderer_context or {}).get("response")
        encoded: tuple[Any, str] | None = getattr(response, _ENCODED, None)
        if (
            encoded is not None
            and data is encoded[0]
            and data is not None
            and self.get_indent(accepted_media_type or "", renderer_context or {}) is None
        ):
            return encoded[1].encode()
        return super().render(data, accepted_media_type, renderer_context)
