"""Daily earning-limit flags get a reviewed state: who, when, a note (``rules.earning_flag_review``)."""

from __future__ import annotations

from datetime import date

import pytest

from meiye.audit.models import AuditLog
from meiye.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from meiye.loyalty.models import EarningFlag
from meiye.loyalty.rules import earning_flag_review


@pytest.fixture
def flag(org, make_member, store1) -> EarningFlag:
    member = make_member(store1)
    return EarningFlag.objects.create(organisation=org, member=member, on=date(2026, 11, 20), points=6_000, limit=5_000)


def test_a_manager_reviews_a_flag_once_with_a_note(flag, manager, actor_for, store1):
    reviewer = actor_for(manager, store1)

    reviewed = earning_flag_review(actor=reviewer, flag_id=flag.pk, note="  团购核实无误 ")

    flag.refresh_from_db()
    assert (flag.reviewed_by_id, flag.review_note, flag.is_reviewed) == (manager.pk, "团购核实无误", True)
    assert reviewed.reviewed_at == flag.reviewed_at is not None
    assert AuditLog.objects.filter(action="loyalty.earning_flag_review").count() == 1
    with pytest.raises(Conflict) as again:
        earning_flag_review(actor=reviewer, flag_id=flag.pk, note="再看一次")
    assert again.value.code == "loyalty.flag_already_reviewed"
    flag.refresh_from_db()
    assert flag.review_note == "团购核实无误"


@pytest.mark.parametrize("note", ["", "   ", "x" * 256])
def test_a_review_needs_a_note_and_changes_nothing_without_one(flag, manager, actor_for, store1, note):
    with pytest.raises(ValidationFailed) as refused:
        earning_flag_review(actor=actor_for(manager, store1), flag_id=flag.pk, note=note)
    assert refused.value.field == "note" and "复核说明" in refused.value.message_zh
    assert "note" in refused.value.message_en
    flag.refresh_from_db()
    assert not flag.is_reviewed and not AuditLog.objects.filter(action="loyalty.earning_flag_review").exists()


def test_a_review_needs_the_permission_and_a_visible_member(flag, receptionist, manager, actor_for, store1, store2):
    with pytest.raises(PermissionDenied):
        earning_flag_review(actor=actor_for(receptionist, store1), flag_id=flag.pk, note="看过")
    with pytest.raises(NotFound):
        earning_flag_review(actor=actor_for(manager, store1), flag_id=flag.pk + 1000, note="看过")
    flag.refresh_from_db()
    assert not flag.is_reviewed
