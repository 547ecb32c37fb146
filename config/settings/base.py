"""Base settings. Everything that differs between machines is read from the environment.

See the configuration table in README.md for every variable.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.settings.devkeys import dev_secret

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("MEIYE_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("MEIYE_DEBUG", False)
SECRET_KEY = os.environ.get("MEIYE_SECRET_KEY") or dev_secret(VAR_DIR, "secret_key")
ALLOWED_HOSTS = env_list("MEIYE_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("MEIYE_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "huey.contrib.djhuey",
    "meiye.core",
    "meiye.org",
    "meiye.audit",
    "meiye.ledger",
    "meiye.members",
    "meiye.catalog",
    "meiye.loyalty",
    "meiye.notify",
    "meiye.contracts",
    "meiye.promotions",
    "meiye.wallet",
    "meiye.packages",
    "meiye.giftcards",
    "meiye.cards",
    "meiye.sales",
    "meiye.mall",
    "meiye.campaigns",
    "meiye.frontdesk",
    "meiye.api",
    "meiye.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "meiye.core.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "meiye.org.middleware.SessionLimitsMiddleware",
    "meiye.org.middleware.TwoFactorMiddleware",
    "meiye.org.middleware.CurrentStoreMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "meiye.core.middleware.RequestLogMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "meiye.frontdesk.context_processors.frontdesk",
            ],
        },
    }
]

# --- Ledger -------------------------------------------------------------------------------------
# Counter-accounts (may go negative) of these owners are shared: postings append balance deltas instead of
# locking their balance rows, folded every minute (ADR 0009). Only accounts created later follow a change.
LEDGER_SHARED_OWNER_TYPES = ("store", "organisation")

# --- Database -----------------------------------------------------------------------------------
# SQLite (WAL, immediate transactions, busy timeout) under var/ for one shop; PostgreSQL for chains
# when DATABASE_URL is set.
DATABASE_URL = os.environ.get("DATABASE_URL", "")
# PostgreSQL prepared statements (ADR 0007): "hot" the hot paths' fixed-shape statements (checkout, ledger,
# member and token reads), "1" every statement, "0" none (behind a transaction-pooling pgbouncer).
MEIYE_PG_PREPARED = os.environ.get("MEIYE_PG_PREPARED", "hot").strip().lower()
if MEIYE_PG_PREPARED not in ("hot", "1", "0"):
    raise ImproperlyConfigured(
        f"MEIYE_PG_PREPARED：只能是 hot、1 或 0，收到 {MEIYE_PG_PREPARED!r}。 / "
        f"MEIYE_PG_PREPARED: must be hot, 1 or 0, got {MEIYE_PG_PREPARED!r}."
    )
# PostgreSQL pipeline mode for the writes nobody waits for (meiye.core.db.pipeline, ADR 0010): "1" (the default)
# or "0" (each statement waited for, as before; the benchmark's preparer counts the rows each write changes so).
MEIYE_PG_PIPELINE = os.environ.get("MEIYE_PG_PIPELINE", "1").strip()
if MEIYE_PG_PIPELINE not in ("1", "0"):
    raise ImproperlyConfigured(
        f"MEIYE_PG_PIPELINE：只能是 1 或 0，收到 {MEIYE_PG_PIPELINE!r}。 / "
        f"MEIYE_PG_PIPELINE: must be 1 or 0, got {MEIYE_PG_PIPELINE!r}."
    )
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
    if DATABASES["default"]["ENGINE"].endswith("postgresql") and MEIYE_PG_PREPARED == "1":
        # Every statement with server-side parameters, prepared on its 2nd use in a connection. Not the default:
        # one statement then takes at most 65,535 parameters (a large import or seed batch can exceed it).
        # The default, "hot", prepares only the hot paths' fixed-shape statements (meiye.core.db.cursors).
        DATABASES["default"].setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=2)
    elif DATABASES["default"]["ENGINE"].endswith("postgresql") and MEIYE_PG_PREPARED == "hot":
        # The hot statements are prepared to be planned once; left to itself, PostgreSQL re-plans a statement on
        # every execution whenever its generic plan looks dearer than the custom ones it has made, which it
        # did for the member's read and the upgrade check (1 ms of planning per checkout). Only prepared
        # statements have a plan cache, and in "hot" mode only the hot paths' are prepared (ADR 0007).
        _options = DATABASES["default"].setdefault("OPTIONS", {})
        _options["options"] = f"{_options.get('options', '')} -c plan_cache_mode=force_generic_plan".strip()
else:
    DATABASES = {
        "default": {
            # Django's SQLite backend with write transactions queued on a file lock (docs/adr/0005).
            "ENGINE": "meiye.core.db.sqlite3",
            "NAME": os.environ.get("MEIYE_SQLITE_PATH", str(VAR_DIR / "meiye.sqlite3")),
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": (
                    "PRAGMA journal_mode=WAL;"
                    "PRAGMA synchronous=NORMAL;"
                    "PRAGMA foreign_keys=ON;"
                    "PRAGMA busy_timeout=20000;"
                ),
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------------------------
AUTH_USER_MODEL = "org.Staff"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "frontdesk:login"
LOGIN_REDIRECT_URL = "frontdesk:home"
LOGOUT_REDIRECT_URL = "frontdesk:login"

# Login throttling: at most this many failures per account within the window.
MEIYE_LOGIN_MAX_FAILURES = int(os.environ.get("MEIYE_LOGIN_MAX_FAILURES", "10"))
MEIYE_LOGIN_FAILURE_WINDOW = timedelta(minutes=15)
# Sessions end after this much inactivity, and in any case this long after sign-in.
MEIYE_SESSION_IDLE_SECONDS = int(os.environ.get("MEIYE_SESSION_IDLE_SECONDS", str(30 * 60)))
MEIYE_SESSION_ABSOLUTE_SECONDS = int(os.environ.get("MEIYE_SESSION_ABSOLUTE_SECONDS", str(12 * 3600)))
SESSION_COOKIE_AGE = MEIYE_SESSION_ABSOLUTE_SECONDS
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# TOTP two-factor sign-in for roles that can read health data or adjust money.
MEIYE_REQUIRE_2FA = env_bool("MEIYE_REQUIRE_2FA", False)

# --- Personal data protection -----------------------------------------------------------------------
# MEIYE_FIELD_KEYS: "kid:base64key,kid2:base64key" (32-byte AES-256-GCM keys); the first is current.
# MEIYE_BLIND_INDEX_KEY: base64 HMAC-SHA256 key for exact lookups. In development both are generated
# into var/ on first run, with a warning.
MEIYE_FIELD_KEYS = os.environ.get("MEIYE_FIELD_KEYS", "")
MEIYE_BLIND_INDEX_KEY = os.environ.get("MEIYE_BLIND_INDEX_KEY", "")
MEIYE_DEV_KEY_DIR = VAR_DIR

# --- I18N -----------------------------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

# --- Static files -------------------------------------------------------------------------------------
# Front-end libraries come from the npm registry (package.json) into node_modules/ and are collected
# from there; nothing is vendored and nothing is loaded from a CDN.
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "static_root"
NODE_MODULES = BASE_DIR / "node_modules"
STATICFILES_DIRS = [
    ("vendor/htmx", NODE_MODULES / "htmx.org" / "dist"),
    ("vendor/echarts", NODE_MODULES / "echarts" / "dist"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = VAR_DIR / "media"

# --- API --------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "meiye.api.auth.StaffTokenAuthentication",
        "meiye.api.auth.TwoFactorSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # DRF's two defaults; the JSON one does not encode again an answer the idempotency layer has encoded
    "DEFAULT_RENDERER_CLASSES": ["meiye.api.renderers.JSONRenderer", "rest_framework.renderers.BrowsableAPIRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "meiye.api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Meiye API",
    "DESCRIPTION": "美业会员管理系统 API v1. Errors are application/problem+json with a stable `code`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
# Stored answers to requests sent with an Idempotency-Key (core.IdempotencyRecord) are kept this many days,
# then deleted by `manage.py idempotency_purge` / the daily task. Bills, refunds and journals keep their own
# keys for good, so an older retry still cannot charge twice.
MEIYE_IDEMPOTENCY_RETENTION_DAYS = int(os.environ.get("MEIYE_IDEMPOTENCY_RETENTION_DAYS", "30"))

# --- Background jobs ------------------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    HUEY = {"huey_class": "huey.RedisHuey", "name": "meiye", "url": REDIS_URL, "immediate": False, "utc": False}
else:
    HUEY = {
        "huey_class": "meiye.core.huey_sqlite.SqliteHuey",  # synchronous=NORMAL, see that module
        "name": "meiye",
        "filename": str(VAR_DIR / "huey.sqlite3"),
        "immediate": False,
        "utc": False,  # periodic tasks' crontabs are in TIME_ZONE (Asia/Shanghai), not UTC
    }

# --- Notifications (meiye.notify) ------------------------------------------------------------------------
# Which provider sends each channel: "outbox" (store only, read in the outbox page; the default), "smtp"
# (email only, through Django's email backend below) or "http" (a signed JSON POST to the channel's URL;
# see meiye/notify/providers.py for the request format and signature).
MEIYE_NOTIFY_PROVIDERS = {
    "sms": os.environ.get("MEIYE_NOTIFY_SMS_PROVIDER", "outbox"),
    "wechat": os.environ.get("MEIYE_NOTIFY_WECHAT_PROVIDER", "outbox"),
    "email": os.environ.get("MEIYE_NOTIFY_EMAIL_PROVIDER", "outbox"),
}
MEIYE_NOTIFY_HTTP_URLS = {
    "sms": os.environ.get("MEIYE_NOTIFY_SMS_URL", ""),
    "wechat": os.environ.get("MEIYE_NOTIFY_WECHAT_URL", ""),
    "email": os.environ.get("MEIYE_NOTIFY_EMAIL_URL", ""),
}
# Shared secret for the HMAC-SHA256 signature of gateway requests (required with the http provider).
MEIYE_NOTIFY_HTTP_SECRET = os.environ.get("MEIYE_NOTIFY_HTTP_SECRET", "")
MEIYE_NOTIFY_HTTP_TIMEOUT = int(os.environ.get("MEIYE_NOTIFY_HTTP_TIMEOUT", "10"))
# Minutes to wait after each failed attempt; after the last one the message is marked failed.
MEIYE_NOTIFY_RETRY_MINUTES = [int(m) for m in env_list("MEIYE_NOTIFY_RETRY_MINUTES", "1,5,30")]
# Email (the smtp provider).
EMAIL_HOST = os.environ.get("MEIYE_EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("MEIYE_EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("MEIYE_EMAIL_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("MEIYE_EMAIL_PASSWORD", "")
EMAIL_USE_TLS = env_bool("MEIYE_EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("MEIYE_EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = os.environ.get("MEIYE_EMAIL_FROM", "meiye@localhost")

# --- Cache -------------------------------------------------------------------------------------------------
# Counters that must survive a rolled-back transaction (e.g. wrong approval PINs) live here: shared by
# every worker through Redis when configured, else through files under var/.
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- Security headers ---------------------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Reverse proxies whose X-Forwarded-For is believed (IPs or CIDRs, comma-separated), e.g. "127.0.0.1,10.0.0.0/8".
# Only when the direct peer is one of them is the client's address taken from X-Forwarded-For: the right-most
# address that is not itself a trusted proxy (meiye.core.net.client_ip). Empty (the default): REMOTE_ADDR.
MEIYE_TRUSTED_PROXIES = env_list("MEIYE_TRUSTED_PROXIES")
# Content-Security-Policy: everything from our own origin, no inline scripts and no eval (the pages use htmx
# and plain scripts under static/; see docs/adr/0001-stack.md).
MEIYE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'self'; object-src 'none'"
)

# --- Logging: one JSON object per line ---------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "meiye.core.logging.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": os.environ.get("MEIYE_LOG_LEVEL", "INFO")},
    "loggers": {"django.server": {"level": "WARNING"}},
}

MEIYE_DEMO = env_bool("MEIYE_DEMO", False)
