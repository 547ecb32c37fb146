"""The fast path of the one-shot checkout's validation (``fast_one_shot_checkout``) against DRF's serializer.

Whenever the fast path answers, ``OneShotCheckoutSerializer`` is valid and its ``validated_data`` is the same,
value for value and type for type; whenever the serializer refuses, the fast path declines (and the view then
lets the serializer answer, so every 400 stays the same).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from benchmarks.prepare_body import checkout_body
from meiye.api import serializers_sales as s
from meiye.sales.models import TenderKind
from tests.sales.support import sales_state

ONE_SHOT = "/api/v1/bills/checkout/"
PROBLEM = "application/problem+json"

LINE_FIELDS = ("item_id", "quantity", "performed_by_id", "sold_by_id", "unit_price", "approver_id", "approval_pin")
TENDER_FIELDS = (
    "kind",
    "amount",
    "points",
    "external_ref",
    "received",
    "payment_password",
    "payment_code",
    "card_number",
    "package_item_id",
    "sessions",
    "gift_card_code",
)
TOP_FIELDS = ("member_id", "lines", "tenders", "coupon_ids")


def _plain(value: Any) -> Any:
    """``value`` with every OrderedDict a dict (the callers do not care which)."""
    if isinstance(value, OrderedDict | dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _same(left: Any, right: Any) -> bool:
    """Equal and of the same types all the way down (``1 == 1.0 == True``, so ``==`` alone is not enough)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(_same(item, right[key]) for key, item in left.items())
    if isinstance(left, list):
        return len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right, strict=True))
    return bool(left == right)


def _drf(body: Any) -> tuple[bool, Any]:
    form = s.OneShotCheckoutSerializer(data=copy.deepcopy(body))
    valid = form.is_valid()
    return valid, (_plain(form.validated_data) if valid else form.errors)


def _assert_agrees(body: Any) -> s.OneShotCheckoutData | None:
    original = copy.deepcopy(body)
    fast = s.fast_one_shot_checkout(body)
    assert _same(body, original), "the fast path must not change the body"
    valid, validated = _drf(body)
    if fast is not None:
        assert valid, validated
        assert _same(_plain(fast.validated_data), validated), (fast.validated_data, validated)
    if not valid:
        assert fast is None
    return fast


# --- strategies ---------------------------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8)
)
anything = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
)

ids = st.integers(min_value=1, max_value=10**9)
nasty_ints = st.one_of(
    st.sampled_from([0, -1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**30]),
    st.integers(),
    st.booleans(),
    st.sampled_from([1.0, 2.5, -0.0, 1e20]),
    st.sampled_from(["1", "12", "1.0", " 3", "two", "", "-4"]),
    st.none(),
    st.just([]),
    st.just({}),
)
clean_texts = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12).filter(
    lambda text: text == text.strip()
)
nasty_texts = st.one_of(
    st.text(max_size=45),
    st.sampled_from(["", " ", " a", "a ", "\t", "\x00", "a\x00b", "\ud800", "x\udfff", "密码", "x" * 32, "x" * 33]),
    st.sampled_from(["x" * 40, "x" * 41, " " + "x" * 32]),
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.just([]),
)
clean_amounts = st.one_of(
    st.sampled_from(["600.00", "12.3", "0", "0.01", "-1", "12.345", "abc", "", " 1.00"]), st.integers(0, 10**6)
)
texts = st.one_of(clean_texts, st.text(max_size=45), st.sampled_from([" a", "a ", " ", "\x00", "a\ud800", "x" * 41]))
nasty_amounts = st.one_of(
    clean_amounts,
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.just([]),
    st.just({"yuan": 1}),
)
kinds = st.sampled_from(TenderKind.values)
nasty_kinds = st.one_of(
    kinds, st.sampled_from(["bitcoin", "", "CASH", " cash", "cash "]), st.integers(0, 3), st.none(), st.booleans()
)
nasty_any = st.one_of(nasty_ints, nasty_texts, nasty_amounts, nasty_kinds, anything)

optional_ids = st.none() | ids
valid_line = st.fixed_dictionaries(
    {"item_id": ids},
    optional={
        "quantity": st.integers(-5, 100),
        "performed_by_id": optional_ids,
        "sold_by_id": optional_ids,
        "unit_price": st.none() | clean_amounts,
        "approver_id": optional_ids,
        "approval_pin": texts,
        "note": anything,  # unknown: ignored
    },
)
valid_tender = st.fixed_dictionaries(
    {"kind": kinds},
    optional={
        "amount": st.none() | clean_amounts,
        "points": st.none() | st.integers(-5, 10**6),
        "external_ref": texts,
        "received": st.none() | clean_amounts,
        "payment_password": st.sampled_from(["", "123456", "x" * 32]) | texts,
        "payment_code": st.sampled_from(["", "9876", "x" * 32]),
        "card_number": st.sampled_from(["", "VIP-0001", "x" * 40]),
        "package_item_id": optional_ids,
        "sessions": st.none() | st.integers(-2, 10),
        "gift_card_code": st.sampled_from(["", "GC-ABC", "x" * 40]),
        "memo": anything,
    },
)
valid_body = st.fixed_dictionaries(
    {"lines": st.lists(valid_line, min_size=1, max_size=3), "tenders": st.lists(valid_tender, min_size=1, max_size=3)},
    optional={
        "member_id": optional_ids,
        "coupon_ids": st.lists(ids, max_size=3) | st.lists(ids, min_size=19, max_size=22),
        "idempotency_note": anything,
    },
)
noisy_line = st.fixed_dictionaries(
    {},
    optional={
        "item_id": ids | nasty_ints,
        "quantity": st.integers(-5, 100) | nasty_ints,
        "performed_by_id": optional_ids | nasty_ints,
        "sold_by_id": optional_ids | nasty_ints,
        "unit_price": nasty_amounts,
        "approver_id": optional_ids | nasty_ints,
        "approval_pin": clean_texts | nasty_texts,
    },
)
noisy_tender = st.fixed_dictionaries(
    {},
    optional={
        "kind": nasty_kinds,
        "amount": nasty_amounts,
        "points": nasty_ints,
        "external_ref": clean_texts | nasty_texts,
        "received": nasty_amounts,
        "payment_password": nasty_texts,
        "payment_code": nasty_texts,
        "card_number": nasty_texts,
        "package_item_id": nasty_ints,
        "sessions": nasty_ints,
        "gift_card_code": nasty_texts,
    },
)
noisy_body = st.fixed_dictionaries(
    {},
    optional={
        "member_id": optional_ids | nasty_ints,
        "lines": st.lists(noisy_line | valid_line | nasty_any, max_size=3) | nasty_any,
        "tenders": st.lists(noisy_tender | valid_tender | nasty_any, max_size=3) | nasty_any,
        "coupon_ids": st.lists(ids | nasty_ints, max_size=22) | st.lists(ids, min_size=21, max_size=22) | nasty_any,
    },
)


TRICKY = [
    True,
    False,
    0,
    -1,
    2**63 - 1,
    2**63,
    -(2**63) - 1,
    10**30,
    1.0,
    0.0,
    2.5,
    "1",
    "1.0",
    " 1",
    "1 ",
    "",
    " ",
    "\x00",
    "a\ud800",
    "x" * 32,
    "x" * 33,
    "x" * 40,
    "x" * 41,
    "12.345",
    "abc",
    "cash ",
    "CASH",
    None,
    [],
    [1],
    {},
    {"kind": "cash"},
    list(range(1, 21)),
    list(range(1, 22)),
]


def _spoil(draw: st.DrawFn, body: dict[str, Any]) -> None:
    """Take a field out of the body, a line or a tender, or give it a tricky or arbitrary value."""
    targets: list[tuple[dict[str, Any], tuple[str, ...]]] = [(body, TOP_FIELDS)]
    for name, fields in (("lines", LINE_FIELDS), ("tenders", TENDER_FIELDS)):
        items = body.get(name)
        if isinstance(items, list):
            targets += [(item, fields) for item in items if isinstance(item, dict)]
    target, fields = draw(st.sampled_from(targets))
    key = draw(st.sampled_from(fields))
    how = draw(st.integers(0, 9))
    if how < 2:
        target.pop(key, None)
    else:
        target[key] = draw(st.sampled_from(TRICKY) if how < 7 else nasty_any)


@st.composite
def bodies(draw: st.DrawFn) -> Any:
    """Valid bodies (a quarter), valid ones with one to three things spoilt (half), noisy ones, anything."""
    branch = draw(st.integers(0, 19))
    if branch >= 18:
        return draw(anything)
    body = draw(noisy_body if branch >= 15 else valid_body)
    for _ in range(draw(st.integers(1, 3)) if 5 <= branch < 15 else 0):
        _spoil(draw, body)
    return body


# --- properties -----------------------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies())
def test_the_fast_path_answers_only_what_drf_answers_and_declines_what_drf_refuses(body):
    fast = _assert_agrees(body)
    event("fast path" if fast is not None else "declined")


def _full_body() -> dict[str, Any]:
    """Every field of the body, a line and a tender given a valid value."""
    return {
        "member_id": 7,
        "lines": [
            {
                "item_id": 3,
                "quantity": 2,
                "performed_by_id": 4,
                "sold_by_id": 5,
                "unit_price": "480.00",
                "approver_id": 6,
                "approval_pin": "2468",
            }
        ],
        "tenders": [
            {
                "kind": "stored_value",
                "amount": "960.00",
                "points": 10,
                "external_ref": "ref",
                "received": "1000.00",
                "payment_password": "123456",
                "payment_code": "9876",
                "card_number": "VIP-1",
                "package_item_id": 8,
                "sessions": 1,
                "gift_card_code": "GC-1",
            }
        ],
        "coupon_ids": [9],
    }


@pytest.mark.parametrize("value", TRICKY, ids=repr)
def test_every_field_with_every_tricky_value(value):
    checked = 0
    for base in (_full_body(), {"lines": [{"item_id": 3}], "tenders": [{"kind": "cash"}]}):
        assert _assert_agrees(base) is not None
        for where, fields in (((), TOP_FIELDS), (("lines", 0), LINE_FIELDS), (("tenders", 0), TENDER_FIELDS)):
            for name in fields:
                body = copy.deepcopy(base)
                target = body[where[0]][where[1]] if where else body
                target[name] = copy.deepcopy(value)
                _assert_agrees(body)
                checked += 1
    assert checked == 2 * (len(TOP_FIELDS) + len(LINE_FIELDS) + len(TENDER_FIELDS))


# --- examples -------------------------------------------------------------------------------------------------


def test_the_benchmark_body_takes_the_fast_path():
    body = checkout_body(7, [11, 12, 13], 114_020)

    fast = _assert_agrees(body)

    assert fast is not None
    assert fast.validated_data == {
        "member_id": 7,
        "lines": [{"item_id": 11, "quantity": 1}, {"item_id": 12, "quantity": 1}, {"item_id": 13, "quantity": 1}],
        "tenders": [
            {"kind": "stored_value", "amount": "500.00", "external_ref": ""},
            {"kind": "wechat", "amount": "640.20", "external_ref": "wx-bench"},
        ],
        "coupon_ids": [],
    }
    # new dicts and lists, as DRF builds them: nothing shared with the request body
    assert fast.validated_data["lines"][0] is not body["lines"][0]
    assert fast.validated_data["tenders"] is not body["tenders"]


def test_a_walk_in_paying_cash_with_received():
    body = {
        "lines": [{"item_id": 3, "quantity": 2}],
        "tenders": [{"kind": "cash", "amount": "1200.00", "received": "1300.00"}],
    }

    fast = _assert_agrees(body)

    assert fast is not None
    assert "member_id" not in fast.validated_data
    assert fast.validated_data["tenders"] == [
        {"kind": "cash", "amount": "1200.00", "external_ref": "", "received": "1300.00"}
    ]
    [tender] = fast.to_tenders()
    assert (tender.kind, tender.amount.fen, tender.received.fen) == ("cash", 120_000, 130_000)


def test_a_points_tender_and_coupons():
    body = {
        "member_id": None,
        "lines": [{"item_id": 3, "performed_by_id": None, "sold_by_id": 4}],
        "tenders": [{"kind": "points", "points": 1000, "amount": None}, {"kind": "alipay", "amount": "590.00"}],
        "coupon_ids": [5, 6],
    }

    fast = _assert_agrees(body)

    assert fast is not None
    assert fast.validated_data["member_id"] is None
    assert fast.validated_data["tenders"][0] == {"kind": "points", "amount": None, "points": 1000, "external_ref": ""}
    assert fast.validated_data["coupon_ids"] == [5, 6]


def test_a_manual_price_with_an_approver_gives_the_same_service_inputs():
    body = {
        "member_id": 2,
        "lines": [{"item_id": 3, "unit_price": "480.00", "approver_id": 9}, {"item_id": 4, "quantity": 3}],
        "tenders": [{"kind": "stored_value", "amount": "1230.00", "payment_password": "123456"}],
    }
    pins = {0: "2468"}

    fast = _assert_agrees(body)
    form = s.OneShotCheckoutSerializer(data=body)
    assert form.is_valid()

    assert fast is not None
    assert fast.to_lines(pins) == form.to_lines(pins)
    assert fast.to_tenders() == form.to_tenders()
    assert fast.to_lines(pins)[0].unit_price.fen == 48_000
    assert fast.to_lines(pins)[0].approval_pin == "2468"


@pytest.mark.parametrize(
    "body",
    [
        {"lines": [{"item_id": 3, "quantity": "2"}], "tenders": [{"kind": "cash", "amount": "600.00"}]},
        {"member_id": True, "lines": [{"item_id": 3}], "tenders": [{"kind": "cash", "amount": "600.00"}]},
        {"member_id": "7", "lines": [{"item_id": 3}], "tenders": [{"kind": "cash", "amount": "600.00"}]},
        {"lines": [{"item_id": 3.0}], "tenders": [{"kind": "cash", "amount": "600.00"}]},
        {"lines": [{"item_id": 0}], "tenders": [{"kind": "cash", "amount": "600.00"}]},
        {"lines": [{"item_id": 3, "quantity": None}], "tenders": [{"kind": "cash", "amount": "600.00"}]},
        {"lines": [{"item_id": 3}], "tenders": [{"kind": "cash", "amount": 600.0}]},
        {"lines": [{"item_id": 3}], "tenders": [{"kind": "cash", "amount": True}]},
        {"lines": [{"item_id": 3}], "tenders": [{"kind": "bitcoin", "amount": "600.00"}]},
        {"lines": [{"item_id": 3}], "tenders": [{"kind": "cash", "amount": "600.00", "external_ref": " wx "}]},
        {"lines": [{"item_id": 3}], "tenders": [{"kind": "cash", "amount": "600.00", "external_ref": None}]},
        {"lines": [{"item_id": 3}], "tenders": [{"kind": "stored_value", "payment_password": "1" * 33}]},
        {"lines": [{"item_id": 3}], "tenders": [{"kind": "cash", "amount": "600.00"}], "coupon_ids": [1] * 21},
        {"lines": [{"item_id": 3}], "tenders": [{"kind": "cash", "amount": "600.00"}], "coupon_ids": None},
        {"lines": [{"item_id": 3}], "tenders": [{"kind": "cash", "amount": "600.00"}], "coupon_ids": [0]},
        {"lines": [{"item_id": 2**63}], "tenders": [{"kind": "cash", "amount": "600.00"}]},
        {"lines": [], "tenders": [{"kind": "cash", "amount": "600.00"}]},
        {"lines": [{"item_id": 3}]},
        {"lines": [{"item_id": 3}], "tenders": {"kind": "cash"}},
        [{"item_id": 3}],
        None,
    ],
)
def test_anything_not_plainly_valid_is_left_to_drf(body):
    assert s.fast_one_shot_checkout(body) is None
    _assert_agrees(body)


# --- through the API ------------------------------------------------------------------------------------------


@pytest.fixture
def drf_only(monkeypatch):
    """Turns the fast path off: the view validates every body with the serializer, as it did before."""

    def turn_off() -> None:
        monkeypatch.setattr(s, "fast_one_shot_checkout", lambda data: None)

    return turn_off


@pytest.mark.parametrize(
    ("change", "field", "errors"),
    [
        ({"quantity": "two"}, "lines.0.quantity", {"lines": {"0": {"quantity": ["请填写合法的整数值。"]}}}),
        ({"member_id": True}, "member_id", {"member_id": ["请填写合法的整数值。"]}),
    ],
)
def test_a_bad_request_answers_the_same_problem_as_before(
    reception_api, shopper, care, drf_only, change, field, errors
):
    line = {"item_id": care.pk, **({k: v for k, v in change.items() if k != "member_id"})}
    body = {
        "member_id": change.get("member_id", shopper.pk),
        "lines": [line],
        "tenders": [{"kind": "cash", "amount": "600.00"}],
    }
    before = sales_state()

    fast = reception_api.post(ONE_SHOT, body, format="json", HTTP_IDEMPOTENCY_KEY="bad-1")
    drf_only()
    slow = reception_api.post(ONE_SHOT, body, format="json", HTTP_IDEMPOTENCY_KEY="bad-1")

    assert fast.status_code == slow.status_code == 400
    assert fast["Content-Type"] == slow["Content-Type"] == PROBLEM
    assert fast.content == slow.content
    assert fast.json() == {
        "type": "https://meiye.invalid/problems/input.invalid",
        "title": "Invalid input",
        "status": 400,
        "code": "input.invalid",
        "detail": "输入有误，请按 errors 中各字段的说明修改。",
        "detail_zh": "输入有误，请按 errors 中各字段的说明修改。",
        "detail_en": "Invalid input; see the messages per field in errors.",
        "field": field,
        "instance": ONE_SHOT,
        "errors": errors,
    }
    assert sales_state() == before


def test_a_body_the_fast_path_declines_but_drf_accepts_is_still_checked_out(reception_api, care):
    # quantity "1" is a string: DRF turns it into 1, the fast path leaves it to DRF
    response = reception_api.post(
        ONE_SHOT,
        {"lines": [{"item_id": care.pk, "quantity": "1"}], "tenders": [{"kind": "cash", "amount": "600.00"}]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="slow-1",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["lines"][0]["quantity"] == 1
    assert response.json()["payable_total"] == "600.00"
