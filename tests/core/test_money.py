"""Money: parsing, formatting and largest-remainder allocation (examples and properties)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meiye.core.errors import ValidationFailed
from meiye.core.money import MAX_FEN, Money, allocate_int, money_from_api


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("12.30", 1230),
        ("12.3", 1230),
        ("12", 1200),
        ("1,234.50", 123450),
        ("¥12.30", 1230),
        ("￥12.30", 1230),
        ("-5.00", -500),
        ("0.01", 1),
        (" 7.05 ", 705),
        ("1,234,567.89", 123456789),
    ],
)
def test_parse_accepts_yuan_amounts(text, fen):
    assert Money.parse(text) == Money(fen)


@pytest.mark.parametrize("text", ["12.345", "abc", "1e3", "", "12.", ".5", "1,23.00", "12,34", "--5", "5-", "NaN"])
def test_parse_rejects_malformed_amounts(text):
    with pytest.raises(ValidationFailed) as exc:
        Money.parse(text, field="price")
    assert exc.value.code == "money.invalid_amount"
    assert exc.value.field == "price"
    assert "price" in exc.value.message_en


def test_parse_of_an_int_is_whole_yuan():
    assert Money.parse(12) == Money(1200)


def test_parse_rejects_bool():
    with pytest.raises(ValidationFailed):
        Money.parse(True)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [12.3, 0.1, 1e3])
def test_parse_rejects_floats(value):
    with pytest.raises(ValidationFailed):
        Money.parse(value)  # type: ignore[arg-type]


def test_constructor_refuses_floats_and_bools():
    with pytest.raises(TypeError):
        Money(12.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money(True)


def test_money_from_api_accepts_only_strings():
    assert money_from_api("12.30", field="amount") == Money(1230)
    for value in (12.3, 1230, None):
        with pytest.raises(ValidationFailed) as exc:
            money_from_api(value, field="amount")
        assert exc.value.code == "money.invalid_amount"


@pytest.mark.parametrize(
    ("fen", "shown", "plain"),
    [
        (123450, "¥1,234.50", "1234.50"),
        (0, "¥0.00", "0.00"),
        (5, "¥0.05", "0.05"),
        (-500, "-¥5.00", "-5.00"),
        (100000000, "¥1,000,000.00", "1000000.00"),
    ],
)
def test_format_and_decimal_string(fen, shown, plain):
    assert Money(fen).format() == shown
    assert str(Money(fen)) == shown
    assert Money(fen).as_decimal_string() == plain


def test_arithmetic():
    assert Money(1230) + Money(70) == Money(1300)
    assert Money(1230) - Money(1300) == Money(-70)
    assert -Money(5) == Money(-5)
    assert abs(Money(-5)) == Money(5)
    assert Money(250).times(3) == Money(750)
    assert not Money.zero()
    assert Money.yuan(3) == Money(300)
    assert Money(-1).is_negative


@pytest.mark.parametrize(
    ("total", "weights", "parts"),
    [
        (100, [1, 1, 1], [34, 33, 33]),
        (54000, [100000, 20000], [45000, 9000]),  # 540.00 over principal 1000.00 / bonus 200.00
        (1000, [1, 2, 3], [167, 333, 500]),
        (1, [1, 1], [1, 0]),  # ties go to the earlier part
        (2, [1, 1, 1], [1, 1, 0]),
        (-100, [1, 1, 1], [-34, -33, -33]),
        (100, [0, 0], [100, 0]),  # all weights zero: the whole to the first part
        (0, [3, 7], [0, 0]),
        (10, [1, 0, 1], [5, 0, 5]),
    ],
)
def test_allocate_int_examples(total, weights, parts):
    assert allocate_int(total, weights) == parts


def test_allocate_money_payment_over_principal_and_bonus():
    principal, bonus = Money.parse("1000.00"), Money.parse("200.00")
    paid = Money.parse("540.00").allocate([principal.fen, bonus.fen])
    assert paid == [Money.parse("450.00"), Money.parse("90.00")]


def test_allocate_refuses_bad_weights():
    with pytest.raises(ValueError):
        allocate_int(100, [])
    with pytest.raises(ValueError):
        allocate_int(100, [1, -1])


# --- Properties -----------------------------------------------------------------------------------------------

amounts = st.integers(min_value=-(10**12), max_value=10**12)
weight_lists = st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=12)


@given(total=amounts, weights=weight_lists)
def test_allocation_parts_always_sum_to_the_whole(total, weights):
    assert sum(allocate_int(total, weights)) == total


@given(total=amounts, weights=weight_lists.filter(lambda w: sum(w) > 0))
def test_each_part_is_within_one_fen_of_its_exact_share(total, weights):
    parts = allocate_int(total, weights)
    for part, weight in zip(parts, weights, strict=True):
        exact = Fraction(total * weight, sum(weights))
        assert abs(part - exact) < 1


@given(total=amounts, weights=weight_lists)
def test_allocate_is_deterministic_and_keeps_the_sign(total, weights):
    parts = allocate_int(total, weights)
    assert parts == allocate_int(total, weights)
    assert all(p >= 0 for p in parts) if total >= 0 else all(p <= 0 for p in parts)


@given(fen=st.integers(min_value=-(MAX_FEN - 1), max_value=MAX_FEN - 1))
def test_parse_of_format_round_trips(fen):
    money = Money(fen)
    assert Money.parse(money.format()) == money
    assert Money.parse(money.as_decimal_string()) == money
