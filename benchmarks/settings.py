"""Settings for benchmark servers: production-like (no debug), plus the bare-Django floor view."""

import os

from config.settings.base import *  # noqa: F403

DEBUG = False
ROOT_URLCONF = "benchmarks.urls"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
BENCH_FLOOR_WRITES = int(os.environ.get("BENCH_FLOOR_WRITES", "20"))
