"""Choice labels in the active language.

Model choices carry both languages in one label, Chinese first: ``"店长 Store manager"``. The front desk
shows only the half for the active language (Chinese unless English is active).
"""

from __future__ import annotations

from typing import Any

from django.utils.functional import lazy
from django.utils.translation import get_language


def english_active() -> bool:
    return (get_language() or "zh-hans").startswith("en")


def bilingual(label: Any) -> str:
    """``"店长 Store manager"`` -> ``"店长"`` in Chinese, ``"Store manager"`` in English."""
    text = str(label)
    zh, sep, en = text.partition(" ")
    if not sep:
        return text
    return en if english_active() else zh


bilingual_lazy = lazy(bilingual, str)


def choices_of(text_choices: Any) -> list[tuple[str, Any]]:
    """Choices of a ``TextChoices`` class with labels that follow the active language at render time."""
    return [(value, bilingual_lazy(label)) for value, label in text_choices.choices]


def label_of(text_choices: Any, value: str) -> str:
    for choice_value, label in text_choices.choices:
        if choice_value == value:
            return bilingual(label)
    return value


def custom_field_label(field: Any) -> str:
    """A custom field's label: the English one when English is active and one is set."""
    if english_active() and field.label_en:
        return str(field.label_en)
    return str(field.label_zh)
