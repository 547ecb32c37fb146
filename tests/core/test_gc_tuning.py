"""The web process's garbage collector settings (meiye.core.gc_tuning)."""

from __future__ import annotations

import gc

import pytest

from meiye.core.gc_tuning import YOUNG_THRESHOLD, tune_for_web


@pytest.fixture
def gc_restored():
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)
    gc.unfreeze()


def test_the_web_process_freezes_what_is_loaded_and_collects_the_young_less_often(gc_restored, monkeypatch):
    monkeypatch.delenv("MEIYE_GC_TUNING", raising=False)
    _young, middle, old = gc.get_threshold()

    assert tune_for_web() is True
    assert gc.get_threshold() == (YOUNG_THRESHOLD, middle, old)
    assert gc.get_freeze_count() > 0


def test_the_tuning_can_be_switched_off(gc_restored, monkeypatch):
    monkeypatch.setenv("MEIYE_GC_TUNING", "0")
    before = gc.get_threshold()

    assert tune_for_web() is False
    assert gc.get_threshold() == before
