"""The audit log viewer and its selector."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from meiye.audit.models import AuditLog
from meiye.audit.selectors import audit_list
from meiye.core.errors import PermissionDenied
from meiye.members.services import member_reveal


@pytest.fixture
def reveals(store1, store2, make_member, hq_admin, manager, actor_for):
    """One reveal in each store, by different staff."""
    m1 = make_member(store1, name="静安会员")
    m2 = make_member(store2, name="徐汇会员")
    member_reveal(actor=actor_for(manager, store1), member=m1, field="phone")
    member_reveal(actor=actor_for(hq_admin, store2), member=m2, field="phone")
    return m1, m2


def test_audit_list_requires_permission(receptionist, actor_for):
    with pytest.raises(PermissionDenied):
        audit_list(actor_for(receptionist))


def test_audit_list_is_scoped_to_visible_stores(reveals, manager, hq_admin, store1, actor_for):
    m1, m2 = reveals
    mine = audit_list(actor_for(manager), action="member.reveal")
    assert [(row.object_id, row.store_id) for row in mine] == [(str(m1.pk), store1.pk)]
    everything = audit_list(actor_for(hq_admin), action="member.reveal")
    assert [row.object_id for row in everything] == [str(m2.pk), str(m1.pk)]


def test_audit_list_filters(reveals, manager, hq_admin, actor_for):
    _m1, m2 = reveals
    actor = actor_for(hq_admin)
    assert audit_list(actor, action="member.").count() == 4  # two creates, two reveals
    assert audit_list(actor, action="member").count() == 0
    assert [r.action for r in audit_list(actor, staff_id=manager.pk)] == ["member.reveal"]
    assert [r.action for r in audit_list(actor, object_type="members.Member", object_id=str(m2.pk))] == [
        "member.reveal",
        "member.create",
    ]
    today = timezone.localdate()
    assert audit_list(actor, date_from=today, date_to=today).count() == 4
    assert audit_list(actor, date_from=today + timedelta(days=1)).count() == 0
    assert audit_list(actor, date_to=today - timedelta(days=1)).count() == 0


def test_audit_page_lists_and_filters(reveals, manager, client_for):
    m1, _m2 = reveals
    client = client_for(manager)
    response = client.get("/audit/")
    assert response.status_code == 200
    content = response.content.decode()
    assert "member.reveal" in content
    assert "{&quot;field&quot;: &quot;phone&quot;}" in content
    assert f"members.Member#{m1.pk}" in content
    assert "徐汇店" not in content.split("<main")[1]

    response = client.get("/audit/", {"action": "member.reveal", "staff": manager.pk, "date_from": str(date.today())})
    assert response.status_code == 200
    assert "共 1 条" in response.content.decode()


def test_audit_page_paginates(hq_admin, store1, make_member, client_for):
    for _ in range(55):
        make_member(store1)
    client = client_for(hq_admin)
    first = client.get("/audit/", {"action": "member.create"}).content.decode()
    assert "第 1 / 2 页，共 55 条" in first
    assert 'href="?action=member.create&amp;page=2"' in first
    second = client.get("/audit/", {"action": "member.create", "page": "2"}).content.decode()
    assert "第 2 / 2 页，共 55 条" in second
    assert second.count('<td class="mono">member.create</td>') == 5


def test_audit_page_needs_permission(receptionist, client_for):
    assert client_for(receptionist).get("/audit/").status_code == 403


def test_audit_log_is_read_only_through_the_ui(hq_admin, client_for):
    assert client_for(hq_admin).post("/audit/").status_code == 405
    assert AuditLog.objects.count() == 0
