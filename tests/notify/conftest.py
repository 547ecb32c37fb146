"""Fixtures for notifications: fixed moments in Asia/Shanghai, a provider that fails on demand, a signed-in
client, and marketing consent through the members service."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from meiye.members.models import Member
from meiye.members.services import consent_record
from meiye.notify.models import Message
from meiye.notify.providers import SendResult
from meiye.org.models import Staff
from tests.frontdesk.support import compile_translations

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    """'2026-03-10 22:30' in Shanghai."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


@pytest.fixture(scope="session", autouse=True)
def _translations() -> None:
    compile_translations()


@pytest.fixture
def client_for() -> Callable[..., Client]:
    def make(staff: Staff, *, language: str | None = None) -> Client:
        client = Client()
        client.force_login(staff)
        if language:
            client.cookies["django_language"] = language
        return client

    return make


@pytest.fixture
def grant(actor_for, hq_admin) -> Callable[..., None]:
    """Record a consent (or its withdrawal) for a member."""

    def record(member: Member, purpose: str, granted: bool = True) -> None:
        consent_record(
            actor=actor_for(hq_admin),
            member=member,
            purpose=purpose,
            granted=granted,
            text_version="v1",
            channel="tablet",
        )

    return record


class FakeProvider:
    """Answers with the queued results in turn (then success), and remembers what it was asked to send."""

    name = "fake"

    def __init__(self) -> None:
        self.results: list[SendResult] = []
        self.sent: list[tuple[int, str, str]] = []

    def send(self, message: Message) -> SendResult:
        self.sent.append((message.pk, message.recipient or "", message.body or ""))
        if self.results:
            return self.results.pop(0)
        return SendResult(status="sent", provider_ref=f"fake-{message.pk}")


@pytest.fixture
def fake_provider(monkeypatch) -> FakeProvider:
    provider = FakeProvider()
    monkeypatch.setattr("meiye.notify.services.provider_for", lambda channel: provider)
    return provider
