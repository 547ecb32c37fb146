"""Delivery providers: ``send(message) -> SendResult(status, provider_ref, error)``.

Which provider serves a channel is configuration (``settings.MEIYE_NOTIFY_PROVIDERS``, from the environment):

``outbox`` (default)
    Stores only: the message is marked sent and can be read in the outbox page. Nothing leaves Meiye.
``smtp``
    Email through Django's email backend (``EMAIL_HOST``/``EMAIL_PORT``/… from ``MEIYE_EMAIL_*``,
    sender ``MEIYE_EMAIL_FROM``). Email channel only.
``http``
    A generic gateway: a JSON ``POST`` to the channel's URL (``MEIYE_NOTIFY_SMS_URL``,
    ``MEIYE_NOTIFY_WECHAT_URL``, ``MEIYE_NOTIFY_EMAIL_URL``), so a real SMS or WeChat gateway (or a small
    adapter in front of one) plugs in without code. The body::

        {"message_id": 42, "idempotency_key": "wallet.charge:1234", "organisation": "liyan",
         "channel": "sms", "event": "wallet.charge", "language": "zh-hans",
         "to": "13800135678", "subject": "…", "body": "…"}

    Headers: ``X-Meiye-Timestamp: <unix seconds>`` and
    ``X-Meiye-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>`` with the shared
    secret ``MEIYE_NOTIFY_HTTP_SECRET``. The gateway should check the signature, refuse timestamps more
    than 5 minutes old, and use ``idempotency_key`` + ``channel`` to drop a repeated delivery (Meiye delivers
    at least once). Timeout ``MEIYE_NOTIFY_HTTP_TIMEOUT`` seconds (default 10); redirects are not followed.
    A 2xx answer is success; its JSON may carry ``{"ref": "<gateway id>", "status": "sent"|"delivered"}``.
    408, 429 and 5xx answers and network errors are retried with backoff; other answers fail at once.
    For WeChat the recipient sent is the member's phone: the gateway maps it to her openid.

Errors are stored without personal data: digits runs and e-mail addresses are masked before they are kept.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMessage

from meiye.core.crypto import mask_email, mask_phone

if TYPE_CHECKING:
    from meiye.notify.models import Message

SIGNATURE_HEADER = "X-Meiye-Signature"
TIMESTAMP_HEADER = "X-Meiye-Timestamp"
MAX_RESPONSE_BYTES = 64 * 1024


@dataclass(frozen=True)
class SendResult:
    status: str  # "sent", "delivered" or "failed"
    provider_ref: str = ""
    error: str = ""
    permanent: bool = False  # a failure that a retry cannot fix (bad address, provider refuses)

    @property
    def ok(self) -> bool:
        return self.status in ("sent", "delivered")


class Provider(Protocol):
    name: str

    def send(self, message: Message) -> SendResult: ...


def scrub(text: str, limit: int = 300) -> str:
    """An error text safe to store and show: phone-like digit runs and e-mail addresses masked."""
    text = re.sub(r"\d{7,}", lambda m: mask_phone(m.group(0)), text or "")
    text = re.sub(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", lambda m: mask_email(m.group(0)), text)
    return " ".join(text.split())[:limit]


class OutboxProvider:
    """Stores only; the outbox page is where the message is read."""

    name = "outbox"

    def send(self, message: Message) -> SendResult:
        return SendResult(status="sent", provider_ref=f"outbox-{message.pk}")


class SmtpProvider:
    """Email through Django's configured email backend."""

    name = "smtp"

    def send(self, message: Message) -> SendResult:
        if message.channel != "email":
            return SendResult(status="failed", error="smtp provider serves email only", permanent=True)
        try:
            sent = EmailMessage(
                subject=message.subject or "",
                body=message.body or "",
                from_email=settings.DEFAULT_FROM_EMAIL,
                to=[message.recipient or ""],
            ).send()
        except Exception as exc:  # any backend error is a failed attempt, retried
            return SendResult(status="failed", error=scrub(f"{type(exc).__name__}: {exc}"))
        if not sent:
            return SendResult(status="failed", error="email backend sent nothing")
        return SendResult(status="sent", provider_ref=f"smtp-{message.pk}")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for a body sent at ``timestamp``."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, max_age: int = 300) -> bool:
    """For gateways (and tests): the signature is right and the timestamp recent."""
    try:
        age = abs(time.time() - int(timestamp))
    except ValueError:
        return False
    return age <= max_age and hmac.compare_digest(sign(secret, timestamp, body), signature)


class HttpGatewayProvider:
    """A signed JSON POST to the channel's gateway URL."""

    name = "http"

    def __init__(self, *, url: str, secret: str, timeout: float) -> None:
        self.url = url
        self.secret = secret
        self.timeout = timeout

    def payload(self, message: Message) -> bytes:
        data = {
            "message_id": message.pk,
            "idempotency_key": message.idempotency_key,
            "organisation": message.organisation.code,
            "channel": message.channel,
            "event": message.event,
            "language": message.language,
            "to": message.recipient or "",
            "subject": message.subject or "",
            "body": message.body or "",
        }
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def send(self, message: Message) -> SendResult:
        url = urlsplit(self.url)
        plain_remote = url.scheme == "http" and url.hostname not in ("localhost", "127.0.0.1", "::1")
        if url.scheme not in ("http", "https") or plain_remote or not self.secret:
            return SendResult(
                status="failed",
                error=f"http gateway for {message.channel} is not configured (an https URL, or http to localhost, "
                "and MEIYE_NOTIFY_HTTP_SECRET)",
            )
        body = self.payload(message)
        timestamp = str(int(time.time()))
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked above (http/https only)
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "meiye-notify/1",
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(self.secret, timestamp, body),
            },
        )
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(request, timeout=self.timeout) as response:
                raw = response.read(MAX_RESPONSE_BYTES)
        except urllib.error.HTTPError as exc:
            retryable = exc.code in (408, 429) or exc.code >= 500
            return SendResult(status="failed", error=f"HTTP {exc.code}", permanent=not retryable)
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return SendResult(status="failed", error=scrub(f"{type(exc).__name__}: {reason}"))
        return self._result(raw, message)

    @staticmethod
    def _result(raw: bytes, message: Message) -> SendResult:
        try:
            answer = json.loads(raw.decode("utf-8")) if raw.strip() else {}
        except (UnicodeDecodeError, ValueError):
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        status = "delivered" if answer.get("status") == "delivered" else "sent"
        ref = str(answer.get("ref") or answer.get("id") or f"http-{message.pk}")[:128]
        return SendResult(status=status, provider_ref=ref)


def provider_for(channel: str) -> Provider:
    """The provider configured for a channel (``outbox`` when nothing is configured)."""
    name = getattr(settings, "MEIYE_NOTIFY_PROVIDERS", {}).get(channel, "outbox") or "outbox"
    if name == "smtp":
        return SmtpProvider()
    if name == "http":
        urls: dict[str, str] = getattr(settings, "MEIYE_NOTIFY_HTTP_URLS", {})
        return HttpGatewayProvider(
            url=urls.get(channel, ""),
            secret=getattr(settings, "MEIYE_NOTIFY_HTTP_SECRET", ""),
            timeout=float(getattr(settings, "MEIYE_NOTIFY_HTTP_TIMEOUT", 10)),
        )
    if name != "outbox":
        raise ValueError(f"unknown notification provider {name!r} for {channel}; use outbox, smtp or http")
    return OutboxProvider()


PROVIDER_NAMES = ("outbox", "smtp", "http")
