from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from meiye.org.models import Staff
from tests.frontdesk.support import compile_translations


@pytest.fixture(scope="session", autouse=True)
def _translations() -> None:
    compile_translations()


@pytest.fixture
def client_for() -> Callable[..., Client]:
    """A test client signed in as ``staff`` (optionally with English as the interface language)."""

    def make(staff: Staff, *, language: str | None = None) -> Client:
        client = Client()
        client.force_login(staff)
        if language:
            client.cookies["django_language"] = language
        return client

    return make
