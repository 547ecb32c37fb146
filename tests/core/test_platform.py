"""Health check, security headers, deployment checks, password hashing and JSON logs."""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db.migrations.executor import MigrationExecutor

from config.settings import base as base_settings
from meiye.core.logging import JsonFormatter

ROOT = Path(settings.BASE_DIR)


# --- /healthz ---------------------------------------------------------------------------------------------------


def test_healthz_is_ok_when_the_database_answers_and_migrations_are_applied(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "migrations": "ok"}}
    assert "no-cache" in response["Cache-Control"]


def test_healthz_is_503_while_a_migration_is_pending(client, db, monkeypatch):
    monkeypatch.setattr(MigrationExecutor, "migration_plan", lambda self, targets: [("members.9999_pending", False)])
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "error", "checks": {"database": "ok", "migrations": "1 pending"}}


def test_healthz_only_answers_get(client, db):
    assert client.post("/healthz").status_code == 405


# --- Security headers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/login/"])
def test_security_headers_on_every_response(client, db, path):
    response = client.get(path)
    csp = response["Content-Security-Policy"]
    assert "http:" not in csp and "https:" not in csp  # nothing from another origin, no CDN
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "object-src 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "geolocation=()" in response["Permissions-Policy"]
    assert response["X-Request-ID"]


def test_configured_csp_names_no_remote_origin():
    assert "http" not in settings.MEIYE_CSP


# --- Deployment checks with the production settings ------------------------------------------------------------


def _key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def _production_env(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MEIYE_", "DJANGO_")) and key not in {"DATABASE_URL", "REDIS_URL"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        MEIYE_SECRET_KEY=secrets.token_urlsafe(60),
        MEIYE_FIELD_KEYS=f"p1:{_key()}",
        MEIYE_BLIND_INDEX_KEY=_key(),
        MEIYE_ALLOWED_HOSTS="example.com",
        MEIYE_VAR_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
    )
    return env


def test_check_deploy_with_production_settings_reports_no_warnings(tmp_path):
    env = _production_env(tmp_path)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_settings_refuse_to_start_without_allowed_hosts(tmp_path):
    env = _production_env(tmp_path)
    del env["MEIYE_ALLOWED_HOSTS"]
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "MEIYE_ALLOWED_HOSTS" in result.stderr


# --- Passwords and logs ---------------------------------------------------------------------------------------------


def test_argon2_is_the_first_password_hasher():
    assert base_settings.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    from django.contrib.auth.hashers import Argon2PasswordHasher

    encoded = Argon2PasswordHasher().encode("meiye-demo-2026", "somesaltvalue123")
    assert encoded.startswith("argon2$argon2id$")
    assert Argon2PasswordHasher().verify("meiye-demo-2026", encoded)


def test_base_logging_uses_the_json_formatter():
    assert base_settings.LOGGING["formatters"]["json"]["()"] == "meiye.core.logging.JsonFormatter"


def test_json_formatter_writes_one_json_object_per_record():
    record = logging.LogRecord("meiye.request", logging.INFO, __file__, 1, "request %s", ("done",), None)
    record.request_id = "abc123"
    record.status = 200
    record.path = "/会员"
    record.obj = object()
    line = JsonFormatter().format(record)
    assert "\n" not in line
    payload = json.loads(line)
    assert payload["level"] == "INFO"
    assert payload["logger"] == "meiye.request"
    assert payload["msg"] == "request done"
    assert payload["request_id"] == "abc123"
    assert payload["status"] == 200
    assert payload["path"] == "/会员"
    assert payload["obj"] == "<object>"  # other objects by type only: no personal data by accident
    assert payload["ts"].endswith("+00:00")


def test_json_formatter_includes_the_exception_on_one_line():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    payload = json.loads(line)
    assert "ValueError: boom" in payload["exc"]


def test_json_logs_never_carry_a_request_query_string():
    import logging

    from django.test import RequestFactory

    from meiye.core.logging import JsonFormatter

    request = RequestFactory().get("/api/v1/members/lookup/", {"phone": "13987654321"})
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Not Found", (), None)
    record.request = request
    record.status_code = 404
    line = JsonFormatter().format(record)
    assert "13987654321" not in line
    assert '"request": "GET /api/v1/members/lookup/"' in line
