"""Production: PostgreSQL, HTTPS, secrets from the environment, two-factor sign-in required."""

import os

from django.core.exceptions import ImproperlyConfigured

from config.settings.base import *  # noqa: F403
from config.settings.base import env_bool, env_list

DEBUG = False
SECRET_KEY = os.environ["MEIYE_SECRET_KEY"]
MEIYE_FIELD_KEYS = os.environ["MEIYE_FIELD_KEYS"]
MEIYE_BLIND_INDEX_KEY = os.environ["MEIYE_BLIND_INDEX_KEY"]
MEIYE_REQUIRE_2FA = env_bool("MEIYE_REQUIRE_2FA", True)
ALLOWED_HOSTS = env_list("MEIYE_ALLOWED_HOSTS")
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("MEIYE_ALLOWED_HOSTS must name the host(s) Meiye is served on, e.g. meiye.example.com")

SECURE_SSL_REDIRECT = env_bool("MEIYE_SECURE_SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = 31536000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
CSRF_COOKIE_HTTPONLY = True  # pages send the token from the template (hx-headers), never from the cookie
