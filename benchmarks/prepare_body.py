"""The benchmark's realistic bill, shared by the preparer and the load generator (no Django import)."""

from __future__ import annotations

STORED_VALUE_FEN = 50_000  # 500.00 from the card, the rest by WeChat


def checkout_body(member_id: int, item_ids: list[int], payable_fen: int) -> dict[str, object]:
    """The realistic bill: 3 lines at the member's (Silver) price, ``payable_fen`` in all (the preparer prices
    it), split between stored value and WeChat."""
    wechat_fen = payable_fen - STORED_VALUE_FEN
    return {
        "member_id": member_id,
        "lines": [{"item_id": item_id, "quantity": 1} for item_id in item_ids],
        "tenders": [
            {"kind": "stored_value", "amount": _yuan(STORED_VALUE_FEN)},
            {"kind": "wechat", "amount": _yuan(wechat_fen), "external_ref": "wx-bench"},
        ],
    }


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"
