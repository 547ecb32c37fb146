"""run_idempotent: once per (organisation, key); replays return the first result."""

from __future__ import annotations

import pytest

from meiye.core.errors import Conflict, ValidationFailed
from meiye.core.idempotency import canonical_hash, run_idempotent
from meiye.core.models import IdempotencyRecord
from meiye.members.models import Tag


@pytest.fixture
def calls():
    return {"n": 0}


def _operation(org, calls, name="VIP"):
    def operation():
        calls["n"] += 1
        tag = Tag.objects.create(organisation=org, name=f"{name}{calls['n']}")
        return {"tag": tag.name, "call": calls["n"]}

    return operation


def test_replay_returns_the_first_result_and_runs_once(org, calls):
    first = run_idempotent(
        organisation_id=org.pk, key="k-1", scope="test", payload={"a": 1}, operation=_operation(org, calls)
    )
    again = run_idempotent(
        organisation_id=org.pk, key="k-1", scope="test", payload={"a": 1}, operation=_operation(org, calls)
    )
    assert first == ({"tag": "VIP1", "call": 1}, False)
    assert again == ({"tag": "VIP1", "call": 1}, True)
    assert calls["n"] == 1
    assert Tag.objects.count() == 1
    record = IdempotencyRecord.objects.get()
    assert (record.key, record.scope, record.request_hash) == ("k-1", "test", canonical_hash({"a": 1}))


def test_same_key_with_a_different_payload_is_a_conflict(org, calls):
    run_idempotent(organisation_id=org.pk, key="k-1", scope="test", payload={"a": 1}, operation=_operation(org, calls))
    with pytest.raises(Conflict) as exc:
        run_idempotent(
            organisation_id=org.pk, key="k-1", scope="test", payload={"a": 2}, operation=_operation(org, calls)
        )
    assert exc.value.code == "idempotency.key_reused"
    assert exc.value.status == 409
    assert calls["n"] == 1
    assert Tag.objects.count() == 1


def test_keys_are_per_organisation(org, calls):
    run_idempotent(organisation_id=org.pk, key="k-1", scope="t", payload={}, operation=_operation(org, calls))
    result, replayed = run_idempotent(
        organisation_id=org.pk + 1, key="k-1", scope="t", payload={}, operation=_operation(org, calls)
    )
    assert (result["call"], replayed) == (2, False)


def test_failed_operation_stores_nothing_and_may_be_retried(org, calls):
    def failing():
        calls["n"] += 1
        Tag.objects.create(organisation=org, name="half-done")
        raise ValidationFailed("x.refused", zh="拒绝", en="refused")

    with pytest.raises(ValidationFailed):
        run_idempotent(organisation_id=org.pk, key="k-1", scope="t", payload={"a": 1}, operation=failing)
    assert IdempotencyRecord.objects.count() == 0
    assert Tag.objects.count() == 0
    result, replayed = run_idempotent(
        organisation_id=org.pk, key="k-1", scope="t", payload={"a": 1}, operation=_operation(org, calls)
    )
    assert (result, replayed) == ({"tag": "VIP2", "call": 2}, False)


@pytest.mark.parametrize("key", ["", "   ", "x" * 129, "bad\nkey"])
def test_invalid_keys_are_refused(org, calls, key):
    with pytest.raises(ValidationFailed) as exc:
        run_idempotent(organisation_id=org.pk, key=key, scope="t", payload={}, operation=_operation(org, calls))
    assert exc.value.code == "idempotency.invalid_key"
    assert calls["n"] == 0


def test_canonical_hash_ignores_key_order_and_whitespace():
    assert canonical_hash({"a": 1, "b": [1, 2]}) == canonical_hash({"b": [1, 2], "a": 1})
    assert canonical_hash({"a": 1}) != canonical_hash({"a": "1"})
