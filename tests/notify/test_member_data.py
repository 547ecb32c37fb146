"""A member's messages in her data export; erasure redacts recipients and bodies and drops what waits;
a merge moves messages and opt-outs to the survivor."""

from __future__ import annotations

from django.db import connection

from meiye.members.services import MemberInput, member_create, member_erase, member_export, member_merge
from meiye.notify.models import Message, OptOut
from meiye.notify.services import notify_event, notify_preferences_set
from tests.notify.conftest import at

T0 = at("2026-03-10 14:00")


def _charge(actor, member, key, **kwargs):
    return notify_event(
        actor=actor,
        member=member,
        event="wallet.charge",
        context={"amount_fen": 54000, "balance_fen": 66000},
        idempotency_key=key,
        now=T0,
        **kwargs,
    )


def test_export_includes_her_messages_and_preferences(actor_for, hq_admin, store1, make_member):
    actor = actor_for(hq_admin, store1)
    member = make_member(store1, name="王丽")
    notify_preferences_set(actor=actor, member=member, language="zh-hans", opt_outs={"email": "marketing"})
    [message] = _charge(actor, member, "k1")
    section = member_export(actor=actor, member=member)["notifications"]
    assert section["language"] == "zh-hans"
    assert section["opt_outs"] == [{"channel": "email", "scope": "marketing"}]
    assert section["messages"] == [
        {
            "at": message.created_at.isoformat(),
            "channel": "sms",
            "event": "wallet.charge",
            "status": "queued",
            "skip_reason": "",
            "recipient": "13900000001",
            "subject": "",
            "body": "王丽您好，您的储值账户在静安店消费 ¥540.00，当前余额 ¥660.00。如非本人操作，请立即联系门店。",
            "sent_at": None,
            "redacted": False,
        }
    ]


def test_erasure_redacts_recipients_and_bodies(actor_for, hq_admin, store1, make_member, fake_provider):
    actor = actor_for(hq_admin, store1)
    member = make_member(store1, name="王丽")
    [sent] = _charge(actor, member, "k1")
    Message.objects.filter(pk=sent.pk).update(status="sent")
    [waiting] = _charge(actor, member, "k2")
    member_erase(actor=actor, member=member, reason="会员申请注销")

    sent.refresh_from_db()
    waiting.refresh_from_db()
    assert (sent.status, sent.recipient, sent.body, sent.subject, sent.redacted) == ("sent", None, None, None, True)
    assert member_export(actor=actor, member=member)["notifications"]["messages"][0]["body"] == ""
    assert (waiting.status, waiting.skip_reason, waiting.recipient, waiting.body) == (
        "skipped",
        "member_erased",
        None,
        None,
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT recipient, body FROM notify_message WHERE member_id = %s", [member.pk])
        assert cursor.fetchall() == [(None, None), (None, None)]
    # nothing goes out afterwards
    from meiye.notify.services import notify_send_due

    assert notify_send_due(now=T0) == {"due": 0}
    assert fake_provider.sent == []


def test_erased_member_is_not_messaged_even_when_her_phone_is_kept(actor_for, hq_admin, store1, make_member):
    from meiye.members.models import Member

    actor = actor_for(hq_admin, store1)
    member = make_member(store1)
    member_erase(actor=actor, member=member, reason="会员申请注销")
    # (the wallet keeps a prepaid buyer's phone; simulate that)
    Member.objects.filter(pk=member.pk).update(phone="13900000001")
    member.refresh_from_db()
    [message] = _charge(actor, member, "after")
    assert (message.status, message.skip_reason, message.recipient) == ("skipped", "member_erased", None)


def test_erasure_also_redacts_messages_of_records_merged_into_her(actor_for, hq_admin, store1, make_member):
    actor = actor_for(hq_admin, store1)
    survivor = make_member(store1)
    merged = member_create(actor=actor, data=MemberInput(name="王丽", phone="13911112222", home_store_id=store1.pk))
    [old] = _charge(actor, merged, "before-merge")
    member_merge(actor=actor, survivor=survivor, merged=merged)
    old.refresh_from_db()
    assert old.member_id == survivor.pk  # the merge moved it
    member_erase(actor=actor, member=survivor, reason="会员申请注销")
    old.refresh_from_db()
    assert (old.recipient, old.body, old.redacted) == (None, None, True)


def test_merge_moves_opt_outs_where_the_survivor_has_none(actor_for, hq_admin, store1, make_member):
    actor = actor_for(hq_admin, store1)
    survivor = make_member(store1)
    merged = make_member(store1)
    notify_preferences_set(actor=actor, member=survivor, language="zh-hans", opt_outs={"sms": "marketing"})
    notify_preferences_set(actor=actor, member=merged, language="zh-hans", opt_outs={"sms": "all", "email": "all"})
    member_merge(actor=actor, survivor=survivor, merged=merged)
    assert sorted(OptOut.objects.values_list("member_id", "channel", "scope")) == [
        (survivor.pk, "email", "all"),
        (survivor.pk, "sms", "marketing"),
    ]
