"""Test settings: fixed keys, fast hashing, jobs run inline."""

import os

from config.settings.base import *  # noqa: F403
from config.settings.base import BASE_DIR, DATABASES, HUEY

SECRET_KEY = "test-secret-key-not-for-production-0123456789abcdef0123456789"  # noqa: S105
# Fixed test keys (32 bytes each, base64). Two field keys so rotation can be tested.
MEIYE_FIELD_KEYS = "t2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=,t1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
MEIYE_BLIND_INDEX_KEY = "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM="
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
HUEY = {**HUEY, "immediate": True}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Browser tests serve from a live server thread, so the test database must be a real file.
    DATABASES["default"]["NAME"] = os.environ.get("MEIYE_TEST_SQLITE", str(BASE_DIR / "var" / "test.sqlite3"))
    DATABASES["default"]["TEST"] = {"NAME": DATABASES["default"]["NAME"]}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
LOGGING = {"version": 1, "disable_existing_loggers": False}
MEIYE_ALLOW_PURGE = True  # lets the test flush empty append-only tables on SQLite
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
