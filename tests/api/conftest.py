"""API fixtures: clients that authenticate with a real per-staff token (the production path)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from meiye.org.context import Actor
from meiye.org.models import Staff
from meiye.org.services import api_token_create


@pytest.fixture
def token_for() -> Callable[[Staff], str]:
    def make(staff: Staff) -> str:
        _token, secret = api_token_create(actor=Actor.system(staff.organisation), staff=staff, name="tests")
        return secret

    return make


@pytest.fixture
def client_for(token_for: Callable[[Staff], str]) -> Callable[..., APIClient]:
    """``client_for(staff)``: an APIClient sending ``Authorization: Bearer <token>``."""

    def make(staff: Staff, **headers: Any) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(staff)}", **headers)
        return client

    return make


@pytest.fixture
def reception_api(client_for: Callable[..., APIClient], receptionist: Staff) -> APIClient:
    return client_for(receptionist)


@pytest.fixture
def hq_api(client_for: Callable[..., APIClient], hq_admin: Staff) -> APIClient:
    return client_for(hq_admin)


# Catalogue, bills and wallet fixtures (reference configuration of the scenarios).
from tests.api.conftest_sales import *  # noqa: E402, F403
