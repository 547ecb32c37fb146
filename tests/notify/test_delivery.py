"""Delivery: retries with backoff then failed, retry by hand, the HTTP gateway's signature, SMTP through
Django's locmem backend, delivery receipts, the sweep command, and no phone number in the logs."""

from __future__ import annotations

import json
import logging
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command

from meiye.audit.models import AuditLog
from meiye.core.errors import ValidationFailed
from meiye.notify.models import Message, MessageLog, MessageStatus
from meiye.notify.providers import SIGNATURE_HEADER, TIMESTAMP_HEADER, SendResult, sign, verify
from meiye.notify.services import (
    message_deliver,
    message_retry,
    notify_delivery_report,
    notify_event,
    notify_preferences_set,
    notify_send_due,
)
from tests.notify.conftest import at

T0 = at("2026-03-10 14:00")
SECRET = "gateway-shared-secret"


def _charge(actor, member, *, channels=None, now=T0, key="wallet.charge:7"):
    return notify_event(
        actor=actor,
        member=member,
        event="wallet.charge",
        context={"amount_fen": 54000, "balance_fen": 66000},
        idempotency_key=key,
        channels=channels,
        now=now,
    )


def _statuses(message):
    return list(MessageLog.objects.filter(message=message).values_list("status", "attempt"))


# --- Retries ----------------------------------------------------------------------------------------------------


def test_failed_attempts_back_off_1_5_30_minutes_then_fail(
    actor_for, manager, store1, make_member, fake_provider, django_capture_on_commit_callbacks
):
    fake_provider.results = [SendResult(status="failed", error="HTTP 503")] * 5
    with django_capture_on_commit_callbacks(execute=True):
        [message] = _charge(actor_for(manager, store1), make_member(store1))
    message.refresh_from_db()
    assert (message.status, message.attempts, message.next_attempt_at) == ("queued", 1, T0 + timedelta(minutes=1))

    assert notify_send_due(now=T0 + timedelta(seconds=59)) == {"due": 0}
    assert notify_send_due(now=T0 + timedelta(minutes=1)) == {"due": 1, "queued": 1}
    message.refresh_from_db()
    assert (message.attempts, message.next_attempt_at) == (2, T0 + timedelta(minutes=6))

    assert notify_send_due(now=T0 + timedelta(minutes=6)) == {"due": 1, "queued": 1}
    message.refresh_from_db()
    assert (message.attempts, message.next_attempt_at) == (3, T0 + timedelta(minutes=36))

    assert notify_send_due(now=T0 + timedelta(minutes=36)) == {"due": 1, "failed": 1}
    message.refresh_from_db()
    assert (message.status, message.attempts, message.next_attempt_at, message.last_error) == (
        "failed",
        4,
        None,
        "HTTP 503",
    )
    assert _statuses(message) == [("queued", 0), ("queued", 1), ("queued", 2), ("queued", 3), ("failed", 4)]
    assert len(fake_provider.sent) == 4
    assert notify_send_due(now=T0 + timedelta(days=1)) == {"due": 0}

    # A retry by hand is one more attempt, audited.
    with django_capture_on_commit_callbacks(execute=True):
        message_retry(actor=actor_for(manager, store1), message=message, now=T0 + timedelta(days=1))
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("failed", 5)
    assert AuditLog.objects.filter(action="notify.retry", object_id=str(message.pk)).count() == 1

    fake_provider.results = []
    with django_capture_on_commit_callbacks(execute=True):
        message_retry(actor=actor_for(manager, store1), message=message, now=T0 + timedelta(days=2))
    message.refresh_from_db()
    assert (message.status, message.attempts, message.last_error) == ("sent", 6, "")


def test_permanent_failure_is_not_retried(
    actor_for, manager, store1, make_member, fake_provider, django_capture_on_commit_callbacks
):
    fake_provider.results = [SendResult(status="failed", error="HTTP 400", permanent=True)]
    with django_capture_on_commit_callbacks(execute=True):
        [message] = _charge(actor_for(manager, store1), make_member(store1))
    message.refresh_from_db()
    assert (message.status, message.attempts, message.last_error) == ("failed", 1, "HTTP 400")


def test_only_a_failed_message_can_be_retried(actor_for, manager, store1, make_member):
    [message] = _charge(actor_for(manager, store1), make_member(store1))
    with pytest.raises(ValidationFailed) as refused:
        message_retry(actor=actor_for(manager, store1), message=message)
    assert refused.value.code == "notify.not_failed"
    message.refresh_from_db()
    assert message.status == "queued"
    assert not AuditLog.objects.filter(action="notify.retry").exists()


def test_a_message_is_claimed_once(actor_for, manager, store1, make_member, fake_provider):
    [message] = _charge(actor_for(manager, store1), make_member(store1))
    assert message_deliver(message_id=message.pk, now=T0).status == "sent"
    assert message_deliver(message_id=message.pk, now=T0) is None
    assert len(fake_provider.sent) == 1


def test_lapsed_sending_lease_is_picked_up_again(actor_for, manager, store1, make_member, fake_provider):
    [message] = _charge(actor_for(manager, store1), make_member(store1))
    # a worker claimed it and died
    Message.objects.filter(pk=message.pk).update(
        status=MessageStatus.SENDING, next_attempt_at=T0 + timedelta(minutes=5)
    )
    assert notify_send_due(now=T0 + timedelta(minutes=4)) == {"due": 0}
    assert notify_send_due(now=T0 + timedelta(minutes=5)) == {"due": 1, "sent": 1}


def test_opt_out_while_waiting_is_respected_at_delivery(actor_for, receptionist, store1, make_member, fake_provider):
    actor = actor_for(receptionist, store1)
    member = make_member(store1)
    [message] = _charge(actor, member)
    notify_preferences_set(actor=actor, member=member, language="zh-hans", opt_outs={"sms": "all"})
    assert notify_send_due(now=T0) == {"due": 1, "skipped": 1}
    message.refresh_from_db()
    assert (message.status, message.skip_reason) == ("skipped", "opted_out")
    assert fake_provider.sent == []


def test_send_due_command_simulates_a_moment(actor_for, manager, store1, make_member, fake_provider):
    [message] = _charge(actor_for(manager, store1), make_member(store1))
    out = StringIO()
    call_command("notify_send_due", "--now", "2026-03-10T13:59", stdout=out, stderr=StringIO())
    assert out.getvalue().strip() == "notify_send_due: 0 due"
    call_command("notify_send_due", "--date", "2026-03-11", stdout=out, stderr=StringIO())
    assert out.getvalue().strip().endswith("notify_send_due: 1 due (sent 1)")
    message.refresh_from_db()
    assert (message.status, message.sent_at) == ("sent", at("2026-03-11 12:00"))


# --- Providers ---------------------------------------------------------------------------------------------------


def test_outbox_is_the_default_provider(actor_for, manager, store1, make_member):
    [message] = _charge(actor_for(manager, store1), make_member(store1))
    message = message_deliver(message_id=message.pk, now=T0)
    assert (message.status, message.provider, message.provider_ref) == ("sent", "outbox", f"outbox-{message.pk}")


class _Gateway(BaseHTTPRequestHandler):
    requests: list[tuple[dict[str, str], bytes]] = []
    answers: list[tuple[int, bytes]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).requests.append((dict(self.headers), body))
        code, answer = type(self).answers.pop(0) if type(self).answers else (200, b"{}")
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def gateway(settings):
    _Gateway.requests = []
    _Gateway.answers = []
    server = HTTPServer(("127.0.0.1", 0), _Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/send"
    settings.MEIYE_NOTIFY_PROVIDERS = {"sms": "http", "wechat": "http", "email": "outbox"}
    settings.MEIYE_NOTIFY_HTTP_URLS = {"sms": url, "wechat": url}
    settings.MEIYE_NOTIFY_HTTP_SECRET = SECRET
    settings.MEIYE_NOTIFY_HTTP_TIMEOUT = 5
    yield _Gateway
    server.shutdown()
    server.server_close()


def test_http_gateway_posts_signed_json(actor_for, manager, store1, make_member, gateway):
    gateway.answers = [(200, json.dumps({"ref": "gw-981", "status": "delivered"}).encode())]
    [message] = _charge(actor_for(manager, store1), make_member(store1, name="王丽"))
    message = message_deliver(message_id=message.pk, now=T0)
    assert (message.status, message.provider, message.provider_ref, message.delivered_at) == (
        "delivered",
        "http",
        "gw-981",
        T0,
    )
    [(headers, body)] = gateway.requests
    assert verify(SECRET, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER])
    assert headers[SIGNATURE_HEADER] == sign(SECRET, headers[TIMESTAMP_HEADER], body)
    assert not verify("another-secret", headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER])
    assert not verify(SECRET, headers[TIMESTAMP_HEADER], body + b" ", headers[SIGNATURE_HEADER])
    assert json.loads(body) == {
        "message_id": message.pk,
        "idempotency_key": "wallet.charge:7",
        "organisation": "liyan",
        "channel": "sms",
        "event": "wallet.charge",
        "language": "zh-hans",
        "to": "13900000001",
        "subject": "",
        "body": "王丽您好，您的储值账户在静安店消费 ¥540.00，当前余额 ¥660.00。如非本人操作，请立即联系门店。",
    }


def test_http_gateway_errors_retry_or_fail(actor_for, manager, store1, make_member, gateway):
    gateway.answers = [(503, b"busy"), (400, b"invalid number 13900000001")]
    [message] = _charge(actor_for(manager, store1), make_member(store1))
    message = message_deliver(message_id=message.pk, now=T0)
    assert (message.status, message.last_error, message.attempts) == ("queued", "HTTP 503", 1)
    message = message_deliver(message_id=message.pk, now=T0 + timedelta(minutes=1))
    assert (message.status, message.last_error, message.attempts) == ("failed", "HTTP 400", 2)


def test_http_gateway_unreachable_is_retried_with_a_scrubbed_error(actor_for, manager, store1, make_member, settings):
    settings.MEIYE_NOTIFY_PROVIDERS = {"sms": "http"}
    settings.MEIYE_NOTIFY_HTTP_URLS = {"sms": "http://127.0.0.1:9/send"}
    settings.MEIYE_NOTIFY_HTTP_SECRET = SECRET
    [message] = _charge(actor_for(manager, store1), make_member(store1))
    message = message_deliver(message_id=message.pk, now=T0)
    assert message.status == "queued"
    assert message.last_error.startswith("URLError")


def test_http_gateway_without_a_secret_does_not_send(actor_for, manager, store1, make_member, settings):
    settings.MEIYE_NOTIFY_PROVIDERS = {"sms": "http"}
    settings.MEIYE_NOTIFY_HTTP_URLS = {"sms": "http://127.0.0.1:9/send"}
    settings.MEIYE_NOTIFY_HTTP_SECRET = ""
    [message] = _charge(actor_for(manager, store1), make_member(store1))
    message = message_deliver(message_id=message.pk, now=T0)
    assert "not configured" in message.last_error


def test_configuration_check_names_what_is_missing(settings):
    from meiye.notify.checks import notify_providers_check

    settings.MEIYE_NOTIFY_PROVIDERS = {"sms": "http", "wechat": "smtp", "email": "carrier-pigeon"}
    settings.MEIYE_NOTIFY_HTTP_URLS = {}
    settings.MEIYE_NOTIFY_HTTP_SECRET = ""
    assert sorted(problem.id for problem in notify_providers_check()) == [
        "notify.E001",
        "notify.E002",
        "notify.E003",
        "notify.E004",
    ]


def test_smtp_sends_email_through_django(actor_for, manager, store1, make_member, settings):
    settings.MEIYE_NOTIFY_PROVIDERS = {"email": "smtp"}
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.DEFAULT_FROM_EMAIL = "liyan@example.com"
    [message] = _charge(actor_for(manager, store1), make_member(store1, email="wangli@example.com"), channels=["email"])
    message = message_deliver(message_id=message.pk, now=T0)
    assert (message.status, message.provider) == ("sent", "smtp")
    [email] = mail.outbox
    assert (email.subject, email.to, email.from_email) == ("储值消费提醒", ["wangli@example.com"], "liyan@example.com")
    assert "¥540.00" in email.body and "¥660.00" in email.body


def test_smtp_refuses_other_channels(actor_for, manager, store1, make_member, settings):
    settings.MEIYE_NOTIFY_PROVIDERS = {"sms": "smtp"}
    [message] = _charge(actor_for(manager, store1), make_member(store1))
    message = message_deliver(message_id=message.pk, now=T0)
    assert (message.status, message.attempts, message.last_error) == ("failed", 1, "smtp provider serves email only")
    assert mail.outbox == []


def test_delivery_report_marks_delivered_or_failed(actor_for, manager, store1, make_member, gateway):
    gateway.answers = [(200, b'{"ref": "gw-1"}'), (200, b'{"ref": "gw-2"}')]
    actor = actor_for(manager, store1)
    member = make_member(store1)
    [one] = _charge(actor, member, key="a")
    [two] = _charge(actor, member, key="b")
    message_deliver(message_id=one.pk, now=T0)
    message_deliver(message_id=two.pk, now=T0)
    assert notify_delivery_report(provider="http", provider_ref="gw-1", delivered=True, now=T0).status == "delivered"
    failed = notify_delivery_report(
        provider="http", provider_ref="gw-2", delivered=False, error="handset 13900000001 off"
    )
    assert (failed.status, failed.last_error) == ("failed", "handset 139****0001 off")
    assert notify_delivery_report(provider="http", provider_ref="unknown", delivered=True) is None


# --- Privacy ----------------------------------------------------------------------------------------------------


def test_phone_numbers_never_reach_the_logs(
    actor_for, manager, store1, make_member, gateway, caplog, django_capture_on_commit_callbacks
):
    gateway.answers = [(500, b"error for 13900000001")]
    caplog.set_level(logging.DEBUG)
    with django_capture_on_commit_callbacks(execute=True):
        [message] = _charge(actor_for(manager, store1), make_member(store1))
    message_deliver(message_id=message.pk, now=T0 + timedelta(minutes=1))
    assert caplog.records, "delivery should log its attempts"
    for record in caplog.records:
        text = record.getMessage() + json.dumps({k: str(v) for k, v in vars(record).items()})
        assert "13900000001" not in text
    assert "13900000001" not in MessageLog.objects.filter(message=message).values_list("note", flat=True)[0]


def test_http_gateway_refuses_plain_http_to_another_host(actor_for, manager, store1, make_member, settings):
    from meiye.notify.checks import notify_providers_check

    settings.MEIYE_NOTIFY_PROVIDERS = {"sms": "http"}
    settings.MEIYE_NOTIFY_HTTP_URLS = {"sms": "http://sms.example.com/send"}
    settings.MEIYE_NOTIFY_HTTP_SECRET = "s3cret"
    assert "notify.E005" in [problem.id for problem in notify_providers_check(None)]
    [message] = _charge(actor_for(manager, store1), make_member(store1))
    message = message_deliver(message_id=message.pk, now=T0)
    assert "not configured" in message.last_error
