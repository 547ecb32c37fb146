"""Property test: any sequence of posts, replays and reversals keeps every ledger invariant.

A plain Python model predicts each outcome (posted, replayed, conflict, insufficient, already reversed)
and the balances; after every step the database must agree with the model and ``verify_ledger()``
must find nothing (balances equal the sums of entries, journals net to zero, no forbidden negative,
reversals mirror their originals). Each example runs in a savepoint that is rolled back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meiye.core.errors import ApplicationError
from meiye.ledger.models import Account, Journal
from meiye.ledger.selectors import balance_of
from meiye.ledger.services import account_get_or_create, journal_post, journal_reverse
from meiye.ledger.verification import verify_ledger
from tests.ledger.support import ORG, fire_deferred_checks, ledger_state

pytestmark = pytest.mark.django_db

# name: (asset, may_go_negative)
ACCOUNTS = {
    "wallet_a": ("CNY", False),
    "wallet_b": ("CNY", False),
    "cash": ("CNY", True),
    "points_a": ("PTS", False),
    "points_pool": ("PTS", True),
}
PAIRS = [
    (src, dst)
    for src, (src_asset, _) in ACCOUNTS.items()
    for dst, (dst_asset, _) in ACCOUNTS.items()
    if src != dst and src_asset == dst_asset
]

transfers = st.tuples(
    st.just("transfer"),
    st.sampled_from(PAIRS),
    st.integers(min_value=1, max_value=2_000),
    st.one_of(st.none(), st.sampled_from(["k1", "k2", "k3"])),
)
reversals = st.tuples(st.just("reverse"), st.integers(min_value=0, max_value=50))
operations = st.lists(st.one_of(transfers, transfers, reversals), min_size=1, max_size=25)


@dataclass
class Model:
    balances: dict[str, int]
    journals: list[tuple[int, list[tuple[str, int]]]] = field(default_factory=list)  # (id, lines)
    reversed_ids: set[int] = field(default_factory=set)
    keys: dict[str, tuple[tuple[str, str, int], int]] = field(default_factory=dict)  # key -> (request, id)

    def can_apply(self, lines: list[tuple[str, int]]) -> bool:
        after = dict(self.balances)
        for name, amount in lines:
            after[name] += amount
        return all(after[name] >= 0 or ACCOUNTS[name][1] for name in after)

    def apply(self, journal_id: int, lines: list[tuple[str, int]]) -> None:
        for name, amount in lines:
            self.balances[name] += amount
        self.journals.append((journal_id, lines))


def _run(ops: list[tuple]) -> None:
    accounts: dict[str, Account] = {
        name: account_get_or_create(
            organisation_id=ORG, owner_type="test", owner_id=1, asset=asset, kind=name, may_go_negative=negative
        )
        for name, (asset, negative) in ACCOUNTS.items()
    }
    model = Model(balances=dict.fromkeys(ACCOUNTS, 0))

    for op in ops:
        before = ledger_state()
        if op[0] == "transfer":
            _, (src, dst), amount, key = op
            lines = [(src, -amount), (dst, amount)]
            request = (src, dst, amount)
            if key in model.keys:
                expected = "replayed" if model.keys[key][0] == request else "ledger.idempotency_conflict"
            else:
                expected = "posted" if model.can_apply(lines) else "ledger.insufficient_balance"
            try:
                journal = journal_post(
                    organisation_id=ORG,
                    code="test.transfer",
                    entries=[(accounts[name], amount) for name, amount in lines],
                    idempotency_key=key,
                )
                outcome = "replayed" if key in model.keys else "posted"
            except ApplicationError as error:
                outcome = error.code
            assert outcome == expected, op
            if outcome == "replayed":
                assert journal.pk == model.keys[key][1]
            if outcome == "posted":
                model.apply(journal.pk, lines)
                if key is not None:
                    model.keys[key] = (request, journal.pk)
        else:
            if not model.journals:
                continue
            original_id, original_lines = model.journals[op[1] % len(model.journals)]
            lines = [(name, -amount) for name, amount in original_lines]
            if original_id in model.reversed_ids:
                expected = "ledger.already_reversed"
            else:
                expected = "posted" if model.can_apply(lines) else "ledger.insufficient_balance"
            try:
                journal = journal_reverse(journal=Journal.objects.get(pk=original_id))
                outcome = "posted"
            except ApplicationError as error:
                outcome = error.code
            assert outcome == expected, op
            if outcome == "posted":
                model.apply(journal.pk, lines)
                model.reversed_ids.add(original_id)

        # then: the database agrees with the model, and every invariant holds
        if outcome != "posted":
            assert ledger_state() == before, op
        assert {name: balance_of(account) for name, account in accounts.items()} == model.balances
        assert verify_ledger() == []
        fire_deferred_checks()


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_any_sequence_of_posts_replays_and_reversals_keeps_the_ledger_consistent(ops):
    with transaction.atomic():
        _run(ops)
        transaction.set_rollback(True)
