"""Helpers shared by the front-desk and browser tests."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import polib
from django.conf import settings
from django.utils.translation import trans_real


def compile_translations() -> None:
    """Compile locale/*/LC_MESSAGES/django.po and each app's meiye/<app>/locale/*/LC_MESSAGES/django.po to
    .mo when missing or stale (the .mo files are not in git; deployments run ``compilemessages_py``).
    Written atomically so parallel test workers do not collide."""
    changed = False
    base = Path(settings.BASE_DIR)
    catalogues = [*base.glob("locale/*/LC_MESSAGES/django.po"), *base.glob("meiye/*/locale/*/LC_MESSAGES/django.po")]
    for po_path in catalogues:
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        fd, tmp = tempfile.mkstemp(dir=po_path.parent, suffix=".mo.tmp")
        os.close(fd)
        polib.pofile(str(po_path)).save_as_mofile(tmp)
        os.replace(tmp, mo_path)
        changed = True
    if changed:
        trans_real._translations = {}  # type: ignore[attr-defined]
        trans_real._default = None  # type: ignore[attr-defined]
        trans_real._active = trans_real.Local()  # type: ignore[attr-defined]


# A 1×1 transparent PNG.
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6300010000000500010d0a2db40000000049454e44ae426082"
)
