"""The benchmark's realistic bill, shared by the preparer and the load generator (no Django import)."""

from __future__ import annotations


def checkout_body(member_id: int, item_ids: list[int]) -> dict[str, object]:
    """The realistic bill: 3 lines at the member's price, split between stored value and WeChat."""
    return {
        "member_id": member_id,
        "lines": [{"item_id": item_id, "quantity": 1} for item_id in item_ids],
        "tenders": [
            {"kind": "stored_value", "amount": "500.00"},
            {"kind": "wechat", "amount": "738.00", "external_ref": "wx-bench"},
        ],
    }
