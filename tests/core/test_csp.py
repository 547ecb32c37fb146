"""The Content-Security-Policy allows no eval and no inline script: the pages use htmx and our own scripts only.

Alpine.js was installed but never used by a template; it is gone, and with it the 'unsafe-eval' its standard
build needs. A template that starts using Alpine attributes must bring the CSP build (@alpinejs/csp) with it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders

ROOT = Path(settings.BASE_DIR)
ALPINE_ATTRIBUTE = re.compile(r"\sx-(?:data|init|show|bind|on|model|text|html|if|for|ref|effect|cloak)\b")


def _script_src() -> str:
    return next(part for part in settings.MEIYE_CSP.split(";") if part.strip().startswith("script-src")).strip()


def test_script_src_is_our_origin_only():
    assert _script_src() == "script-src 'self'"


def test_pages_are_served_without_unsafe_eval(client, db):
    csp = client.get("/login/")["Content-Security-Policy"]
    assert "'unsafe-eval'" not in csp
    assert "script-src 'self';" in csp


def test_no_page_loads_alpine_and_no_template_uses_it():
    templates = sorted((ROOT / "meiye").glob("**/templates/**/*.html"))
    assert templates
    for template in templates:
        text = template.read_text(encoding="utf-8")
        assert "alpine" not in text.lower(), template
        assert not ALPINE_ATTRIBUTE.search(text), template


def test_alpine_is_neither_a_dependency_nor_a_static_file():
    package = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))
    assert "alpinejs" not in package.get("dependencies", {})
    lock = json.loads((ROOT / "package-lock.json").read_text(encoding="utf-8"))
    assert not any(name.endswith("node_modules/alpinejs") for name in lock.get("packages", {}))
    assert finders.find("vendor/alpinejs/cdn.min.js") is None
    assert finders.find("vendor/htmx/htmx.min.js") is not None
