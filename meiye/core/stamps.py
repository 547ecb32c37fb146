"""Version stamps for the copies a process keeps of rarely changed rows (promotions, tier ladders, earning rules,
the catalogue): each change sets a new stamp in its transaction, and a copy is used only while the stamp read with
the request's first row is the one copied."""

from __future__ import annotations

import secrets


def new_stamp() -> int:
    """A random stamp rather than a counter: a restored database (or a test's rolled-back one) can never show a
    stamp some process already copied for other rows. Never 0, which the readers keep for "no stamp yet"."""
    return secrets.randbits(62) + 1
