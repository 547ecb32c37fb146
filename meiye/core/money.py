"""Money as an integer number of fen (分). No float is ever involved.

Parsing accepts "12", "12.3", "12.30", "-5.00", "1,234.50" and "¥12.30"; formatting gives "¥1,234.50".
Splitting an amount uses the largest-remainder method so the parts always add up to the whole.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from meiye.core.errors import ValidationFailed

_AMOUNT_RE = re.compile(r"^(?P<sign>-)?(?P<yuan>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<fen>\d{1,2}))?$")
MAX_FEN = 10**15  # a quadrillion fen; far beyond any real bill, well inside a BigIntegerField


@dataclass(frozen=True, order=True, slots=True)
class Money:
    """An amount of CNY in integer fen."""

    fen: int

    def __post_init__(self) -> None:
        if isinstance(self.fen, bool) or not isinstance(self.fen, int):
            raise TypeError(f"Money needs an int number of fen, got {type(self.fen).__name__}")

    # --- construction ---------------------------------------------------------------------------
    @classmethod
    def zero(cls) -> Money:
        return cls(0)

    @classmethod
    def yuan(cls, yuan: int) -> Money:
        return cls(yuan * 100)

    @classmethod
    def parse(cls, text: str | int, *, field: str = "amount") -> Money:
        """Parse a yuan amount written by a person or an API client ("12.30", "12.3", "¥1,234.50")."""
        if isinstance(text, bool):
            raise _bad_amount(field, str(text))
        if isinstance(text, int):
            return cls.yuan(text)
        if not isinstance(text, str):
            raise _bad_amount(field, repr(text))  # floats and everything else: never near money
        raw = str(text).strip().replace("¥", "").replace("￥", "").replace(" ", "")
        match = _AMOUNT_RE.match(raw)
        if not match:
            raise _bad_amount(field, str(text))
        yuan = int(match.group("yuan").replace(",", ""))
        fen_text = (match.group("fen") or "").ljust(2, "0")
        fen = yuan * 100 + int(fen_text or "0")
        if fen >= MAX_FEN:
            raise _bad_amount(field, str(text))
        return cls(-fen if match.group("sign") else fen)

    # --- arithmetic -----------------------------------------------------------------------------------
    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        return Money(self.fen + other.fen)

    def __sub__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        return Money(self.fen - other.fen)

    def __neg__(self) -> Money:
        return Money(-self.fen)

    def __abs__(self) -> Money:
        return Money(abs(self.fen))

    def __bool__(self) -> bool:
        return self.fen != 0

    def times(self, count: int) -> Money:
        """Multiply by a whole count (quantity). Rates go through a named rounding function instead."""
        return Money(self.fen * count)

    @property
    def is_negative(self) -> bool:
        return self.fen < 0

    def allocate(self, weights: Sequence[int]) -> list[Money]:
        """Split into parts proportional to integer weights; parts always sum to the whole."""
        return [Money(part) for part in allocate_int(self.fen, weights)]

    # --- presentation ----------------------------------------------------------------------------------
    def as_decimal_string(self) -> str:
        """ "1234.50" — the plain form used in APIs and forms."""
        sign = "-" if self.fen < 0 else ""
        yuan, fen = divmod(abs(self.fen), 100)
        return f"{sign}{yuan}.{fen:02d}"

    def format(self) -> str:
        """ "¥1,234.50" — the form shown to people."""
        sign = "-" if self.fen < 0 else ""
        yuan, fen = divmod(abs(self.fen), 100)
        return f"{sign}¥{yuan:,}.{fen:02d}"

    def __str__(self) -> str:
        return self.format()

    def __repr__(self) -> str:
        return f"Money({self.as_decimal_string()})"


def _bad_amount(field: str, value: str) -> ValidationFailed:
    return ValidationFailed(
        "money.invalid_amount",
        zh=f"{field}：金额格式不正确（{value!r}），应为最多两位小数的元，如 12.30。",
        en=f"{field}: {value!r} is not an amount in yuan with at most two decimals, e.g. 12.30.",
        field=field,
    )


def allocate_int(total: int, weights: Sequence[int]) -> list[int]:
    """Largest-remainder split of an integer total over non-negative integer weights.

    Each part is floor(total * w / sum(w)); the units left over go, one each, to the parts with the
    largest remainders (ties to the earlier part). Negative totals are split as the mirror image.
    When every weight is zero the whole goes to the first part.
    """
    if not weights:
        raise ValueError("allocate needs at least one weight")
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    if total < 0:
        return [-part for part in allocate_int(-total, weights)]
    weight_sum = sum(weights)
    if weight_sum == 0:
        return [total] + [0] * (len(weights) - 1)
    parts: list[int] = []
    remainders: list[tuple[int, int]] = []
    for index, weight in enumerate(weights):
        quotient, remainder = divmod(total * weight, weight_sum)
        parts.append(quotient)
        remainders.append((-remainder, index))
    leftover = total - sum(parts)
    for _neg_remainder, index in sorted(remainders)[:leftover]:
        parts[index] += 1
    return parts


def money_from_api(value: Any, *, field: str) -> Money:
    """Accept an amount from JSON: a string in yuan ("12.30") or an integer number of fen is NOT accepted,
    to avoid the classic yuan/fen mix-up; integers must be sent as strings."""
    if not isinstance(value, str):
        raise ValidationFailed(
            "money.invalid_amount",
            zh=f'{field}：金额必须以字符串形式提供，如 "12.30"。',
            en=f'{field}: amounts must be sent as strings in yuan, e.g. "12.30".',
            field=field,
        )
    return Money.parse(value, field=field)
