"""S-06 over the API: how much a member's points may pay of a bill."""

from __future__ import annotations


def test_S06_points_offset_quote_capped_at_10_percent_in_whole_yuan(reception_api, shopper, gift_points):
    # given: 10,000 points at the store's 100 points per 元, a bill payable 500.00 (cap 10% = 50.00)
    gift_points(shopper, 10_000)

    # when
    answer = reception_api.get(f"/api/v1/members/{shopper.pk}/points/offset-quote/", {"payable": "500.00"})

    # then: 50.00 for 5,000 points
    assert answer.status_code == 200, answer.content
    assert answer.json() == {
        "value": "50.00",
        "points": 5_000,
        "points_balance": 10_000,
        "points_per_yuan": 100,
        "cap": "50.00",
    }


def test_a_quote_needs_a_valid_payable(reception_api, shopper):
    answer = reception_api.get(f"/api/v1/members/{shopper.pk}/points/offset-quote/", {"payable": "abc"})
    assert answer.status_code == 400
    assert answer.json()["field"] == "payable"


def test_another_stores_member_is_not_found(reception_api, shopper2):
    answer = reception_api.get(f"/api/v1/members/{shopper2.pk}/points/offset-quote/", {"payable": "500.00"})
    assert answer.status_code == 404
