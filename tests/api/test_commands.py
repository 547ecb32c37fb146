"""manage.py create_api_token."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from rest_framework.test import APIClient

from meiye.api.management.commands.create_api_token import Command
from meiye.audit.models import AuditLog
from meiye.org.models import ApiToken


def test_creates_a_token_and_prints_it_once(receptionist):
    out, err = StringIO(), StringIO()

    call_command("create_api_token", "reception1", "--name", "booking-sync", stdout=out, stderr=err)

    secret = out.getvalue().strip()
    token = ApiToken.objects.get(staff=receptionist)
    assert secret.startswith(f"my_{token.prefix}_")
    assert token.name == "booking-sync"
    assert secret not in err.getvalue()
    assert "cannot be shown again" in err.getvalue()
    assert "之后无法再次查看" in err.getvalue()
    assert AuditLog.objects.get(action="api_token.create").detail == {"prefix": token.prefix, "name": "booking-sync"}
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/v1/me/").json()["username"] == "reception1"


def test_unknown_username_is_a_bilingual_error(db):
    with pytest.raises(CommandError) as raised:
        call_command("create_api_token", "nobody", "--name", "x")

    assert str(raised.value) == "找不到登录名为 'nobody' 的员工。 / No staff member with username 'nobody'."
    assert ApiToken.objects.count() == 0


def test_unknown_username_exits_non_zero(db, capsys, monkeypatch):
    # run_from_argv closes every connection afterwards, which would end the test's transaction
    monkeypatch.setattr(connections, "close_all", lambda: None)

    with pytest.raises(SystemExit) as exited:
        Command().run_from_argv(["manage.py", "create_api_token", "nobody", "--name", "x"])

    assert exited.value.code == 1
    assert "No staff member with username 'nobody'." in capsys.readouterr().err
    assert ApiToken.objects.count() == 0


def test_blank_name_is_refused(receptionist):
    with pytest.raises(CommandError) as raised:
        call_command("create_api_token", "reception1", "--name", "  ")

    assert str(raised.value) == "令牌名称：必填。 / Token name: this field is required."
    assert ApiToken.objects.count() == 0


def test_deactivated_staff_is_refused(receptionist):
    receptionist.is_active = False
    receptionist.save(update_fields=["is_active"])

    with pytest.raises(CommandError, match="is deactivated"):
        call_command("create_api_token", "reception1", "--name", "x")
    assert ApiToken.objects.count() == 0
