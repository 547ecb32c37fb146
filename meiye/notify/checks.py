"""``manage.py check``: the notification providers are configured consistently."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks

from meiye.notify.models import Channel
from meiye.notify.providers import PROVIDER_NAMES


@checks.register(checks.Tags.compatibility)
def notify_providers_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    problems: list[checks.CheckMessage] = []
    providers: dict[str, str] = getattr(settings, "MEIYE_NOTIFY_PROVIDERS", {})
    urls: dict[str, str] = getattr(settings, "MEIYE_NOTIFY_HTTP_URLS", {})
    for channel in Channel.values:
        name = providers.get(channel, "outbox") or "outbox"
        if name not in PROVIDER_NAMES:
            problems.append(
                checks.Error(
                    f"MEIYE_NOTIFY_{channel.upper()}_PROVIDER is {name!r}; use one of {', '.join(PROVIDER_NAMES)}.",
                    id="notify.E001",
                )
            )
        if name == "smtp" and channel != Channel.EMAIL:
            problems.append(checks.Error(f"The smtp provider cannot send {channel} messages.", id="notify.E002"))
        if name == "http":
            url = urlsplit(urls.get(channel, ""))
            if url.scheme not in ("http", "https"):
                problems.append(
                    checks.Error(f"MEIYE_NOTIFY_{channel.upper()}_URL must be an http(s) URL.", id="notify.E003")
                )
            elif url.scheme == "http" and url.hostname not in ("localhost", "127.0.0.1", "::1"):
                problems.append(
                    checks.Error(
                        f"MEIYE_NOTIFY_{channel.upper()}_URL must use https: messages carry phone numbers and "
                        "text; plain http is allowed only to localhost.",
                        id="notify.E005",
                    )
                )
            if not getattr(settings, "MEIYE_NOTIFY_HTTP_SECRET", ""):
                problems.append(
                    checks.Error("MEIYE_NOTIFY_HTTP_SECRET is needed to sign gateway requests.", id="notify.E004")
                )
    return problems
