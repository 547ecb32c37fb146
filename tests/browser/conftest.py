"""End-to-end tests in Debian's Chromium, driven by Playwright's sync API against pytest-django's live server.

Run with ``pytest tests/browser -m browser``. Playwright's own browser downloads are not used (they cannot be
fetched here): the tests launch /usr/bin/chromium (``apt-get install chromium``). Without it the tests are
skipped, except under CI (``CI`` set), where a missing browser is a failure.
"""

from __future__ import annotations

import os

# Playwright's sync API runs an event loop in this thread; Django's ORM calls made by the test itself
# (fixtures, assertions) are still synchronous and safe.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.frontdesk.support import compile_translations

# Debian's Chromium; MEIYE_CHROMIUM may point elsewhere.
CHROMIUM = os.environ.get("MEIYE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "demo-pass-123"


@pytest.fixture(scope="session", autouse=True)
def _translations() -> None:
    compile_translations()


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is not installed (apt-get install chromium); the browser tests need it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any, live_server: Any, transactional_db: None) -> Iterator[Any]:
    """A fresh browser context (no cookies) on a 10-inch-tablet-sized screen, in Chinese."""
    context = browser.new_context(
        base_url=live_server.url, locale="zh-CN", viewport={"width": 1024, "height": 768}, accept_downloads=True
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    # Anything the browser complains about (a script refused by the CSP, a failed request) ends up here.
    page.console_errors = []
    page.on("console", lambda message: message.type == "error" and page.console_errors.append(message.text))
    page.on("pageerror", lambda error: page.console_errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def sign_in() -> Any:
    def do(page: Any, username: str, password: str = PASSWORD) -> None:
        page.goto("/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("button[type=submit].btn.primary")
        page.wait_for_url("**/members/")

    return do
