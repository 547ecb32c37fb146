"""HTTP idempotency for API writes: the ``Idempotency-Key`` header.

Decorate every write handler (POST/PATCH/PUT/DELETE) of an API view with ``@idempotent`` — or, where
storing the answer would be wrong, with ``@idempotency_exempt(reason)``; a test checks that none is
left undecorated. With a key present:

- the first request runs inside ``transaction.atomic()``; a 2xx answer is stored (status and JSON body)
  in ``core.IdempotencyRecord`` in that same transaction, so a failed write stores nothing and the
  client may retry with the same key;
- a repeat with the same key and the same request (canonical hash of method, path, body, staff member
  and ``X-Store-Id``) gets the stored status and body back (header ``Idempotent-Replayed: true``) and
  writes nothing;
- the same key with a different request answers 409 ``idempotency.key_reused`` and writes nothing.

Keys are unique per organisation (the staff member's). Two concurrent first attempts with one key: one
commits; the other, whether it fails on the record's unique constraint or on a business rule tripped by
its twin (duplicate phone), finds the stored answer afterwards and replays it.

The record is looked up before the work, so a repeat runs nothing. One handler opts out, the one-shot checkout
(``@idempotent(look_up_first=False)``, one statement fewer on the busiest money-moving call; its key is almost
always new): a repeat runs the checkout again, in its transaction, and fails — at the latest on the record's
unique key, else on what its first run did (the stored value it spent, the bill that holds the key) — and any
failure, raised or answered, is followed by the look-up, so a repeat still gets the first answer and writes
nothing. A handler may opt out only if its work, run again and rolled back, leaves nothing behind outside the
database (no cache written from uncommitted rows, no count kept after a rollback). Even then a request carrying a
typed secret (``SECRET_FIELDS``, or an approval PIN detached from the body before this layer sees it, see
``TYPED_PIN_DETACHED``) is looked up first: a one-time code used again, or a PIN checked again, is counted after
the rollback.

A view declares ``idempotency_required = True`` (or a handler uses ``@idempotent(required=True)``) to
refuse a write without a key with 400 ``idempotency.key_required`` — for money-moving calls.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.db import IntegrityError, transaction
from django.http import QueryDict
from rest_framework.request import Request
from rest_framework.response import Response

from meiye.api.renderers import encoded_json
from meiye.core import idempotency as core_idempotency
from meiye.core.crypto import blind_index
from meiye.core.db.fastwrite import EncodedJSON
from meiye.core.db.pipeline import pipelined
from meiye.core.errors import ApplicationError, ValidationFailed

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
STORE_HEADER = "X-Store-Id"
MARKER = "_meiye_idempotency"  # "idempotent" | "exempt" on a decorated handler
ENABLED = "idempotent"
EXEMPT = "exempt"

Handler = TypeVar("Handler", bound=Callable[..., Response])


def key_required_error() -> ValidationFailed:
    return ValidationFailed(
        "idempotency.key_required",
        zh=f"此操作必须带 {IDEMPOTENCY_HEADER} 请求头（每次新操作用一个新的唯一值，重试时用同一个值）。",
        en=f"This operation requires an {IDEMPOTENCY_HEADER} header (a new unique value per operation, "
        "the same value when retrying).",
        field="idempotency_key",
    )


# Body fields whose value is a secret a member or manager typed (a 6-digit payment password or one-time code,
# an approval PIN, a gift card's code). A plain hash of a short secret is reversed in a second by trying every
# value, and the fingerprint is stored (``IdempotencyRecord.request_hash``): so these values enter it only as a
# keyed HMAC (the blind-index key), which still tells two different values apart.
SECRET_FIELDS = frozenset({"password", "payment_password", "code", "payment_code", "approval_pin", "gift_card_code"})
# Set (True) on the request by a decorator that takes a typed secret out of the body before this layer sees it
# (``api.views.sales.detach_approval_pins``): the request is then looked up first, as one carrying the field.
TYPED_PIN_DETACHED = "_meiye_typed_pin_detached"


def _without_secrets(data: Any, *, secret: bool = False) -> Any:
    if isinstance(data, dict):
        return {key: _without_secrets(value, secret=key in SECRET_FIELDS) for key, value in data.items()}
    if isinstance(data, list):
        return [_without_secrets(item, secret=secret) for item in data]
    if secret and isinstance(data, str | int) and not isinstance(data, bool):
        return {"hmac": blind_index(str(data), kind="idempotency.secret")}
    return data


def request_fingerprint(request: Request) -> str:
    """Canonical hash of what makes two requests "the same" for a key (secrets only as a keyed HMAC)."""
    data: Any = request.data
    if isinstance(data, QueryDict):
        data = {key: data.getlist(key) for key in sorted(data.keys())}
    return core_idempotency.canonical_hash(
        {
            "method": request.method,
            "path": request.path,
            "body": _without_secrets(data),
            "staff": request.user.pk,
            "store": (request.headers.get(STORE_HEADER) or "").strip(),
        }
    )


def _json_ready(response: Response) -> EncodedJSON:
    """The body exactly as the client receives it, as the text of a JSON object for the record: encoded once,
    and the renderer sends the same text (``meiye.api.renderers``). Not an object: kept under ``__list__``."""
    if response.data is None:
        return EncodedJSON("{}")
    text = encoded_json(response)
    return EncodedJSON(text if isinstance(response.data, dict) else f'{{"__list__":{text}}}')


def _replay(replay: core_idempotency.Replay) -> Response:
    body: Any = replay.response
    if isinstance(body, dict) and set(body) == {"__list__"}:
        body = body["__list__"]
    response = Response(body if replay.status_code != 204 else None, status=replay.status_code)
    response[REPLAYED_HEADER] = "true"
    return response


def _is_success(response: Response) -> bool:
    return 200 <= response.status_code < 300


def run_idempotent(
    *, request: Request, call: Callable[[], Response], required: bool, look_up_first: bool = True
) -> Response:
    """Run the view's work once per key; see the module docstring."""
    raw_key = request.headers.get(IDEMPOTENCY_HEADER)
    if raw_key is None:
        if required:
            raise key_required_error()
        return run_atomic(call=call)

    key = core_idempotency.validate_key(raw_key)
    organisation_id = getattr(request.user, "organisation_id", None)
    if organisation_id is None:
        return call()  # no organisation: the view refuses the request (auth.no_organisation)
    request_hash = request_fingerprint(request)
    lookup = functools.partial(
        core_idempotency.lookup, organisation_id=organisation_id, key=key, request_hash=request_hash
    )
    # See the module doc: looked up after a failure only where the handler opted out and no secret was typed.
    look_first = look_up_first or _carries_secret(request.data) or bool(getattr(request, TYPED_PIN_DETACHED, False))
    try:
        # On PostgreSQL the block is pipelined from its first statement to its COMMIT (meiye.core.db.pipeline): the
        # BEGIN travels with the first statement, and the work's last queued writes and the record with the COMMIT.
        with transaction.atomic(), pipelined(commit=True):
            if look_first:
                # Looked up inside the transaction: on SQLite (immediate transactions) a concurrent twin has
                # committed by now; on PostgreSQL the unique constraint or the business rule catches it below.
                replay = lookup()
                if replay is not None:
                    return _replay(replay)
            response = call()
            if _is_success(response):
                core_idempotency.store(
                    organisation_id=organisation_id,
                    key=key,
                    scope=f"http:{request.method} {request.path}"[:64],
                    request_hash=request_hash,
                    status_code=response.status_code,
                    response=_json_ready(response),
                )
            else:
                transaction.set_rollback(True)  # before the block's end, which would commit otherwise
    except Exception as exc:
        reused = isinstance(exc, ApplicationError) and exc.code == "idempotency.key_reused"
        if look_first and (reused or not isinstance(exc, IntegrityError | ApplicationError)):
            raise
        # A repeat, or a concurrent request with the same key that committed first? Then answer as it did. (Not
        # looked up first, even a key_reused may come from the work, a service's own check of the key.)
        replay = lookup()
        if replay is None:
            raise
        return _replay(replay)
    if not look_first and not _is_success(response):
        # Refused now, but perhaps because the first request with this key did the work (the money it moved is
        # gone): a repeat gets the first answer, whatever this run said.
        replay = lookup()
        if replay is not None:
            return _replay(replay)
    return response


def _carries_secret(data: Any) -> bool:
    """Whether the body has a typed secret (``SECRET_FIELDS``) anywhere, with a value."""
    if isinstance(data, dict):
        return any(
            (key in SECRET_FIELDS and value not in (None, "")) or _carries_secret(value) for key, value in data.items()
        )
    if isinstance(data, list):
        return any(_carries_secret(item) for item in data)
    return False


def idempotent(func: Handler | None = None, *, required: bool | None = None, look_up_first: bool = True) -> Any:
    """Decorate an API view's write handler. ``required`` overrides the view's ``idempotency_required``;
    ``look_up_first=False``: the record is looked up only after a failure (see the module doc for when a handler
    may)."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
            must = required if required is not None else bool(getattr(view, "idempotency_required", False))
            return run_idempotent(
                request=request,
                call=lambda: handler(view, request, *args, **kwargs),
                required=must,
                look_up_first=look_up_first,
            )

        setattr(wrapper, MARKER, ENABLED)
        wrapper._meiye_idempotency_required = required  # type: ignore[attr-defined]
        wrapper._meiye_idempotency_look_up_first = look_up_first  # type: ignore[attr-defined]
        return cast(Handler, wrapper)

    if func is not None:
        return decorate(func)
    return decorate


def idempotency_exempt(reason: str) -> Callable[[Handler], Handler]:
    """Mark a write handler whose answer must not be stored (e.g. a reveal: plaintext personal data, and
    every reveal is audited on its own). The header is accepted and ignored; the work still runs in one
    transaction."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
            return run_atomic(call=lambda: handler(view, request, *args, **kwargs))

        setattr(wrapper, MARKER, EXEMPT)
        wrapper._meiye_idempotency_reason = reason  # type: ignore[attr-defined]
        return cast(Handler, wrapper)

    return decorate


def run_atomic(*, call: Callable[[], Response]) -> Response:
    """The view's work in one transaction; a non-2xx answer rolls back whatever it wrote."""
    with transaction.atomic():
        response = call()
        if not _is_success(response):
            transaction.set_rollback(True)
        return response


def idempotency_of(handler: Any) -> str | None:
    """``"idempotent"``, ``"exempt"`` or None for an undecorated handler."""
    return getattr(handler, MARKER, None)


def idempotency_required_for(view: Any, handler: Any) -> bool:
    explicit = getattr(handler, "_meiye_idempotency_required", None)
    if explicit is not None:
        return bool(explicit)
    return bool(getattr(view, "idempotency_required", False))
