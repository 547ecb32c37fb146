"""Reporting an event: rendering in the member's language, consent and opt-outs, quiet hours, idempotency,
and a rolled-back caller storing nothing."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import connection, transaction

from meiye.audit.models import AuditLog
from meiye.core.errors import Conflict, ValidationFailed
from meiye.core.money import Money
from meiye.members.services import MemberInput, member_create
from meiye.notify.models import Message, MessageLog, NotifySettings, SkipReason
from meiye.notify.rendering import format_value, placeholders, render, variables_for
from meiye.notify.services import notify_event, notify_preferences_set, notify_settings_set
from meiye.org.models import Store
from tests.notify.conftest import at

DAYTIME = at("2026-03-10 14:00")
NIGHT = at("2026-03-10 22:30")


def _charge(actor, member, *, key="wallet.charge:1001", now=DAYTIME, **kwargs):
    return notify_event(
        actor=actor,
        member=member,
        event="wallet.charge",
        context={"amount_fen": 54000, "balance_fen": 66000},
        idempotency_key=key,
        now=now,
        **kwargs,
    )


# --- Rendering ------------------------------------------------------------------------------------------------


def test_values_are_formatted_for_people():
    assert format_value(Money(123456), "zh-hans") == "¥1,234.56"
    assert format_value(1200, "en") == "1,200"
    assert format_value(date(2026, 12, 31), "zh-hans") == "2026年12月31日"
    assert format_value(date(2026, 12, 31), "en") == "2026-12-31"
    assert format_value({"zh-hans": "春季护理", "en": "Spring care"}, "en") == "Spring care"
    assert variables_for({"amount_fen": 123456}, "zh-hans") == {"amount": "¥1,234.56", "amount_fen": "123,456"}


def test_render_fills_placeholders_and_keeps_double_braces():
    assert render("{name}：{{余额}} {balance}", {"name": "王丽", "balance": "¥1.00"}) == "王丽：{余额} ¥1.00"
    assert placeholders("{name} {Bad one} {{x}}") == ["name", "{Bad one}"]


def test_S17_charge_sms_names_the_amount_and_the_new_balance(
    actor_for, receptionist, store1, make_member, fake_provider, django_capture_on_commit_callbacks
):
    # given a member of store 1
    member = make_member(store1, name="王丽")
    # when a stored-value charge of 540.00 leaves 660.00
    with django_capture_on_commit_callbacks(execute=True):
        [message] = _charge(actor_for(receptionist, store1), member)
    # then one SMS in Chinese with the amount and the new balance, sent through the provider
    message.refresh_from_db()
    assert (
        message.body == "王丽您好，您的储值账户在静安店消费 ¥540.00，当前余额 ¥660.00。如非本人操作，请立即联系门店。"
    )
    assert (message.channel, message.status, message.marketing, message.attempts) == ("sms", "sent", False, 1)
    assert message.recipient == "13900000001"
    assert fake_provider.sent == [(message.pk, "13900000001", message.body)]


def test_english_member_gets_the_english_template(actor_for, receptionist, store1, make_member, fake_provider):
    member = make_member(store1, name="Lily")
    notify_preferences_set(actor=actor_for(receptionist, store1), member=member, language="en", opt_outs={})
    [message] = _charge(actor_for(receptionist, store1), member)
    assert message.language == "en"
    assert message.body == (
        "Dear Lily, your stored value was charged ¥540.00 at 静安店. New balance: ¥660.00. "
        "If this was not you, contact the store at once."
    )


def test_points_expiring_in_both_languages(org, store1, make_member):
    member = make_member(store1, name="王丽")
    context = {"points": 1200, "date": date(2026, 12, 31)}
    [zh] = notify_event(
        organisation_id=org.pk,
        member=member,
        event="points.expiring",
        context=context,
        idempotency_key="points.expiring:1:2026-12-31",
        now=DAYTIME,
    )
    [en] = notify_event(
        organisation_id=org.pk,
        member=member,
        event="points.expiring",
        context=context,
        idempotency_key="points.expiring:1:2026-12-31:en",
        language="en",
        now=DAYTIME,
    )
    assert zh.body == "王丽您好，您有 1,200 积分将于 2026年12月31日 到期，请及时使用。"
    assert en.body == "Dear 王丽, 1,200 of your points expire on 2026-12-31. Use them before then."
    assert zh.store == store1  # no actor: the member's home store


def test_email_gets_a_subject(actor_for, hq_admin, store1, make_member):
    member = make_member(store1, name="王丽", email="wangli@example.com")
    [message] = _charge(actor_for(hq_admin, store1), member, channels=["email"])
    assert (message.subject, message.recipient, message.status) == ("储值消费提醒", "wangli@example.com", "queued")


def test_organisation_template_overrides_the_default(actor_for, hq_admin, store1, make_member):
    from meiye.notify.services import notify_template_save

    actor = actor_for(hq_admin, store1)
    notify_template_save(
        actor=actor,
        event="wallet.charge",
        channel="sms",
        language="zh-hans",
        subject="",
        body="{name}消费{amount}，余额{balance}",
    )
    [message] = _charge(actor, make_member(store1, name="王丽"))
    assert message.body == "王丽消费¥540.00，余额¥660.00"


def test_template_with_an_unknown_placeholder_is_refused(actor_for, hq_admin):
    from meiye.notify.services import notify_template_save

    with pytest.raises(ValidationFailed) as refused:
        notify_template_save(
            actor=actor_for(hq_admin),
            event="wallet.charge",
            channel="sms",
            language="zh-hans",
            subject="",
            body="{phone}",
        )
    assert refused.value.code == "notify.unknown_placeholder"
    assert refused.value.field == "body"
    assert not AuditLog.objects.filter(action__startswith="notify.template").exists()


def test_missing_event_variable_is_a_programming_error(actor_for, receptionist, store1, make_member):
    with pytest.raises(ValueError, match="needs context"):
        notify_event(
            actor=actor_for(receptionist, store1),
            member=make_member(store1),
            event="wallet.charge",
            context={"amount_fen": 100},
            idempotency_key="k",
        )
    assert Message.objects.count() == 0


# --- Consent, opt-outs, addresses ------------------------------------------------------------------------------------


def test_marketing_needs_marketing_consent_for_the_channel(org, store1, make_member, grant):
    member = make_member(store1)
    [skipped] = notify_event(
        organisation_id=org.pk, member=member, event="member.birthday", context={}, idempotency_key="bd:1", now=DAYTIME
    )
    assert (skipped.status, skipped.skip_reason, skipped.recipient) == ("skipped", SkipReason.NO_CONSENT, None)

    grant(member, "marketing_sms")
    [queued] = notify_event(
        organisation_id=org.pk, member=member, event="member.birthday", context={}, idempotency_key="bd:2", now=DAYTIME
    )
    assert (queued.status, queued.marketing) == ("queued", True)

    grant(member, "marketing_sms", granted=False)  # the latest record wins
    [withdrawn] = notify_event(
        organisation_id=org.pk, member=member, event="member.birthday", context={}, idempotency_key="bd:3", now=DAYTIME
    )
    assert withdrawn.skip_reason == SkipReason.NO_CONSENT


def test_transactional_needs_no_marketing_consent(actor_for, receptionist, store1, make_member):
    [message] = _charge(actor_for(receptionist, store1), make_member(store1))
    assert message.status == "queued"


def test_opt_out_per_channel_and_scope(actor_for, receptionist, store1, make_member, grant):
    actor = actor_for(receptionist, store1)
    member = make_member(store1, email="wangli@example.com")
    grant(member, "marketing_sms")
    grant(member, "marketing_email")
    notify_preferences_set(
        actor=actor, member=member, language="zh-hans", opt_outs={"sms": "marketing", "email": "all"}
    )

    birthday = notify_event(
        actor=actor,
        member=member,
        event="member.birthday",
        context={},
        idempotency_key="bd",
        channels=["sms", "email"],
        now=DAYTIME,
    )
    charge = _charge(actor, member, channels=["sms", "email"])

    assert [(m.channel, m.status, m.skip_reason) for m in birthday] == [
        ("sms", "skipped", "opted_out"),
        ("email", "skipped", "opted_out"),
    ]
    # Opted out of marketing SMS only: the charge SMS still goes; all email is refused.
    assert [(m.channel, m.status, m.skip_reason) for m in charge] == [
        ("sms", "queued", ""),
        ("email", "skipped", "opted_out"),
    ]


def test_no_address_is_skipped(actor_for, receptionist, store1, make_member):
    [message] = _charge(actor_for(receptionist, store1), make_member(store1), channels=["email"])
    assert (message.status, message.skip_reason) == ("skipped", SkipReason.NO_ADDRESS)


def test_skipped_messages_are_stored_with_their_reason_in_the_history(actor_for, receptionist, store1, make_member):
    [message] = _charge(actor_for(receptionist, store1), make_member(store1), channels=["email"])
    assert list(MessageLog.objects.filter(message=message).values_list("status", "note")) == [
        ("skipped", "无联系方式 No address")
    ]


# --- Quiet hours --------------------------------------------------------------------------------------------------------


def test_marketing_is_held_in_quiet_hours_and_released_after(
    org, store1, make_member, grant, fake_provider, django_capture_on_commit_callbacks
):
    from meiye.notify.services import notify_send_due

    member = make_member(store1)
    grant(member, "marketing_sms")
    # when a birthday greeting is reported at 22:30
    with django_capture_on_commit_callbacks(execute=True):
        [message] = notify_event(
            organisation_id=org.pk, member=member, event="member.birthday", context={}, idempotency_key="bd", now=NIGHT
        )
    # then it waits until 09:00 the next morning, nothing sent
    message.refresh_from_db()
    assert (message.status, message.next_attempt_at) == ("held", at("2026-03-11 09:00"))
    assert fake_provider.sent == []
    # a sweep at 08:59 leaves it; one at 09:00 sends it
    assert notify_send_due(now=at("2026-03-11 08:59")) == {"due": 0}
    assert notify_send_due(now=at("2026-03-11 09:00")) == {"due": 1, "sent": 1}
    message.refresh_from_db()
    assert (message.status, message.sent_at, message.attempts) == ("sent", at("2026-03-11 09:00"), 1)
    assert list(MessageLog.objects.filter(message=message).values_list("status", flat=True)) == ["held", "sent"]


def test_quiet_hours_follow_the_store_time_zone(org, make_member, grant):
    urumqi = Store.objects.create(organisation=org, code="urumqi", name="乌鲁木齐店", time_zone="Asia/Urumqi")
    member = make_member(urumqi)
    grant(member, "marketing_sms")
    # 22:30 in Shanghai is 20:30 in Urumqi (UTC+6): not quiet there
    [message] = notify_event(
        organisation_id=org.pk, member=member, event="member.birthday", context={}, idempotency_key="bd", now=NIGHT
    )
    assert message.status == "queued"


def test_transactional_bypasses_quiet_hours(
    actor_for, receptionist, store1, make_member, fake_provider, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        [message] = _charge(actor_for(receptionist, store1), make_member(store1), now=NIGHT)
    message.refresh_from_db()
    assert (message.status, message.sent_at) == ("sent", NIGHT)


def test_reclassified_event_follows_the_settings(actor_for, hq_admin, store1, make_member):
    from datetime import time

    actor = actor_for(hq_admin, store1)
    notify_settings_set(
        actor=actor,
        quiet_start=time(22, 0),
        quiet_end=time(8, 0),
        time_zone="Asia/Shanghai",
        marketing_events=["wallet.charge"],
        channels=["sms"],
    )
    member = make_member(store1)
    [charge] = _charge(actor, member, now=at("2026-03-10 21:30"))
    assert (charge.marketing, charge.status, charge.skip_reason) == (True, "skipped", "no_consent")
    assert NotifySettings.objects.get().marketing_events == ["wallet.charge"]
    assert AuditLog.objects.filter(action="notify.settings_set").count() == 1


# --- Idempotency and transactions ------------------------------------------------------------------------------------------


def test_an_event_reported_twice_sends_once(
    actor_for, receptionist, store1, make_member, fake_provider, django_capture_on_commit_callbacks
):
    actor = actor_for(receptionist, store1)
    member = make_member(store1)
    with django_capture_on_commit_callbacks(execute=True):
        [first] = _charge(actor, member)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        [again] = _charge(actor, member)
    assert again.pk == first.pk
    assert callbacks == []
    assert Message.objects.count() == 1
    assert len(fake_provider.sent) == 1


def test_same_key_for_another_event_is_a_conflict(actor_for, receptionist, store1, make_member):
    actor = actor_for(receptionist, store1)
    member = make_member(store1)
    _charge(actor, member, key="k-1")
    with pytest.raises(Conflict):
        notify_event(
            actor=actor,
            member=member,
            event="tier.changed",
            context={"tier": "金卡"},
            idempotency_key="k-1",
            now=DAYTIME,
        )
    assert Message.objects.count() == 1


def test_rolled_back_caller_stores_and_sends_nothing(
    actor_for, receptionist, store1, make_member, fake_provider, django_capture_on_commit_callbacks
):
    member = make_member(store1)
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        _charge(actor_for(receptionist, store1), member)
        raise RuntimeError("the charge failed after the notification was reported")
    assert Message.objects.count() == 0
    assert MessageLog.objects.count() == 0
    assert callbacks == []
    assert fake_provider.sent == []


def test_recipient_is_stored_encrypted(actor_for, receptionist, store1, make_member):
    [message] = _charge(actor_for(receptionist, store1), make_member(store1))
    with connection.cursor() as cursor:
        cursor.execute("SELECT recipient, body FROM notify_message WHERE id = %s", [message.pk])
        recipient, body = cursor.fetchone()
    assert recipient.startswith("v1.") and "13900000001" not in recipient
    # "540.00", not "540": three digits turn up in a random ciphertext's base64 now and then; a dot never does
    assert body.startswith("v1.") and "540.00" not in body
    assert "540.00" in Message.objects.get(pk=message.pk).body


def test_merged_member_is_told_through_the_survivor(actor_for, hq_admin, store1, make_member):
    from meiye.members.services import member_merge

    actor = actor_for(hq_admin, store1)
    survivor = make_member(store1, name="王丽")
    merged = member_create(actor=actor, data=MemberInput(name="王丽", phone="13911112222", home_store_id=store1.pk))
    member_merge(actor=actor, survivor=survivor, merged=merged)
    merged.refresh_from_db()
    [message] = _charge(actor, merged)
    assert message.member == survivor
    assert message.recipient == "13900000001"


def test_a_key_reused_for_another_member_is_a_conflict(actor_for, receptionist, store1, make_member):
    from meiye.core.errors import ApplicationError

    actor = actor_for(receptionist, store1)
    _charge(actor, make_member(store1))
    with pytest.raises(ApplicationError) as caught:
        _charge(actor, make_member(store1))
    assert caught.value.code == "idempotency.key_reused"
    assert Message.objects.count() == 1
