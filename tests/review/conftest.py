"""Fixtures of the review tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache


@pytest.fixture
def fresh_rules_cache() -> Iterator[None]:
    """The loyalty rules are cached per organisation id; a transactional test's ids may repeat another's."""
    cache.clear()
    yield
    cache.clear()
