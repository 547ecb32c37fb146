"""Production: PostgreSQL, HTTPS, secrets from the environment, two-factor sign-in required."""

import os

from config.settings.base import *  # noqa: F403
from config.settings.base import env_bool

DEBUG = False
SECRET_KEY = os.environ["MEIYE_SECRET_KEY"]
MEIYE_FIELD_KEYS = os.environ["MEIYE_FIELD_KEYS"]
MEIYE_BLIND_INDEX_KEY = os.environ["MEIYE_BLIND_INDEX_KEY"]
MEIYE_REQUIRE_2FA = env_bool("MEIYE_REQUIRE_2FA", True)

SECURE_SSL_REDIRECT = env_bool("MEIYE_SECURE_SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = 31536000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
