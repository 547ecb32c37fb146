"""The notification pages: the outbox (scoped, masked, filtered), a message and its retry, templates,
settings, a member's preferences; permissions and English."""

from __future__ import annotations

import re

from meiye.audit.models import AuditLog
from meiye.notify.models import MemberPreference, Message, MessageStatus, NotifySettings, NotifyTemplate, OptOut
from meiye.notify.services import notify_event
from tests.notify.conftest import at

T0 = at("2026-03-10 14:00")


def _charge(actor, member, key):
    [message] = notify_event(
        actor=actor,
        member=member,
        event="wallet.charge",
        context={"amount_fen": 54000, "balance_fen": 66000},
        idempotency_key=key,
        now=T0,
    )
    return message


def _two_stores(actor_for, hq_admin, store1, store2, make_member):
    ours = make_member(store1, name="王丽")
    theirs = make_member(store2, name="李娜")
    return _charge(actor_for(hq_admin, store1), ours, "k1"), _charge(actor_for(hq_admin, store2), theirs, "k2")


def test_outbox_is_scoped_to_the_managers_store_and_masks_recipients(
    actor_for, manager, hq_admin, store1, store2, make_member, client_for
):
    ours, theirs = _two_stores(actor_for, hq_admin, store1, store2, make_member)
    page = client_for(manager).get("/notify/")
    assert page.status_code == 200
    content = page.content.decode()
    assert "王丽" in content and "139****0001" in content
    assert "李娜" not in content and "139****0002" not in content
    assert "13900000001" not in content
    assert "no-store" in page["Cache-Control"]

    assert client_for(manager).get(f"/notify/messages/{ours.pk}/").status_code == 200
    assert client_for(manager).get(f"/notify/messages/{theirs.pk}/").status_code == 404

    everything = client_for(hq_admin).get("/notify/").content.decode()
    assert "王丽" in everything and "李娜" in everything


def test_outbox_filters(actor_for, hq_admin, store1, store2, make_member, client_for):
    _ours, theirs = _two_stores(actor_for, hq_admin, store1, store2, make_member)
    Message.objects.filter(pk=theirs.pk).update(status=MessageStatus.FAILED)
    failed = client_for(hq_admin).get("/notify/", {"status": "failed", "channel": "sms", "event": "wallet.charge"})
    assert failed.status_code == 200
    rows = re.findall(r'href="/notify/messages/(\d+)/"', failed.content.decode())
    assert rows == [str(theirs.pk)]
    assert client_for(hq_admin).get("/notify/", {"status": "nonsense"}).status_code == 400


def test_outbox_needs_the_permission(receptionist, beautician, client_for):
    assert client_for(receptionist).get("/notify/").status_code == 403
    assert client_for(beautician).get("/notify/").status_code == 403


def test_message_detail_shows_history_and_retries_a_failed_one(
    actor_for, manager, store1, make_member, client_for, django_capture_on_commit_callbacks
):
    message = _charge(actor_for(manager, store1), make_member(store1, name="王丽"), "k1")
    Message.objects.filter(pk=message.pk).update(status=MessageStatus.FAILED, attempts=4, last_error="HTTP 503")
    client = client_for(manager)
    detail = client.get(f"/notify/messages/{message.pk}/").content.decode()
    assert "HTTP 503" in detail and "重新发送" in detail and "139****0001" in detail
    assert "13900000001" not in detail
    assert "¥540.00" in detail
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/notify/messages/{message.pk}/retry/")
    assert response.status_code == 302
    message.refresh_from_db()
    assert (message.status, message.attempts, message.provider) == ("sent", 5, "outbox")
    after = client.get(f"/notify/messages/{message.pk}/").content.decode()
    assert "手工重发" in after and f"/notify/messages/{message.pk}/retry/" not in after

    again = client.post(f"/notify/messages/{message.pk}/retry/", follow=True)
    assert "只有发送失败的消息可以重发。" in again.content.decode()


def test_english_outbox(actor_for, hq_admin, store1, make_member, client_for):
    _charge(actor_for(hq_admin, store1), make_member(store1), "k1")
    content = client_for(hq_admin, language="en").get("/notify/").content.decode()
    assert "Outbox" in content and "Stored-value charge" in content and "Queued" in content


def test_templates_list_and_edit(hq_admin, manager, client_for):
    client = client_for(hq_admin)
    listing = client.get("/notify/templates/")
    assert listing.status_code == 200
    assert "/notify/templates/wallet.charge/" in listing.content.decode()
    edit = client.get("/notify/templates/wallet.charge/")
    assert edit.status_code == 200
    assert "{amount}" in edit.content.decode()

    saved = client.post(
        "/notify/templates/wallet.charge/",
        {
            "form": "sms-en",
            "sms-en-channel": "sms",
            "sms-en-language": "en",
            "sms-en-subject": "",
            "sms-en-body": "{name}: -{amount}, balance {balance}",
        },
    )
    assert saved.status_code == 302
    row = NotifyTemplate.objects.get()
    assert (row.event, row.channel, row.language, row.body) == (
        "wallet.charge",
        "sms",
        "en",
        "{name}: -{amount}, balance {balance}",
    )

    refused = client.post(
        "/notify/templates/wallet.charge/",
        {"form": "sms-en", "sms-en-channel": "sms", "sms-en-language": "en", "sms-en-body": "{phone}"},
    )
    assert refused.status_code == 400
    assert "{phone}" in refused.content.decode()
    assert NotifyTemplate.objects.get().body == "{name}: -{amount}, balance {balance}"

    reset = client.post(
        "/notify/templates/wallet.charge/",
        {"form": "sms-en", "sms-en-channel": "sms", "sms-en-language": "en", "sms-en-body": "x", "reset": "1"},
    )
    assert reset.status_code == 302
    assert not NotifyTemplate.objects.exists()
    assert list(
        AuditLog.objects.filter(action__startswith="notify.template").order_by("id").values_list("action", flat=True)
    ) == [
        "notify.template_save",
        "notify.template_reset",
    ]

    assert client.get("/notify/templates/no.such.event/").status_code == 404
    assert client_for(manager).get("/notify/templates/").status_code == 403


def test_settings_page(hq_admin, manager, client_for):
    client = client_for(hq_admin)
    assert client.get("/notify/settings/").status_code == 200
    response = client.post(
        "/notify/settings/",
        {
            "quiet_start": "22:00",
            "quiet_end": "08:30",
            "time_zone": "Asia/Shanghai",
            "channels": ["sms", "wechat"],
            "marketing_events": ["campaign", "member.birthday"],
        },
    )
    assert response.status_code == 302
    row = NotifySettings.objects.get()
    assert (str(row.quiet_start), str(row.quiet_end), row.channels, row.marketing_events) == (
        "22:00:00",
        "08:30:00",
        ["sms", "wechat"],
        ["campaign", "member.birthday"],
    )
    bad = client.post(
        "/notify/settings/",
        {"quiet_start": "22:00", "quiet_end": "08:30", "time_zone": "Mars/Olympus", "channels": ["sms"]},
    )
    assert bad.status_code == 400
    assert "Mars/Olympus" in bad.content.decode()
    assert client_for(manager).get("/notify/settings/").status_code == 403


def test_member_preferences_page(actor_for, receptionist, receptionist2, hq_admin, store1, make_member, client_for):
    member = make_member(store1)
    client = client_for(receptionist)
    page = client.get(f"/notify/members/{member.pk}/")
    assert page.status_code == 200
    assert "消息记录" not in page.content.decode()  # a receptionist records opt-outs but does not read the outbox
    response = client.post(
        f"/notify/members/{member.pk}/", {"language": "en", "sms": "marketing", "wechat": "", "email": "all"}
    )
    assert response.status_code == 302
    assert MemberPreference.objects.get(member=member).language == "en"
    assert dict(OptOut.objects.filter(member=member).values_list("channel", "scope")) == {
        "sms": "marketing",
        "email": "all",
    }
    assert client_for(receptionist2).get(f"/notify/members/{member.pk}/").status_code == 404
    assert "消息记录" in client_for(hq_admin).get(f"/notify/members/{member.pk}/").content.decode()


def test_settings_tabs_link_to_notifications(manager, receptionist, client_for):
    assert 'href="/notify/"' in client_for(manager).get("/settings/staff/").content.decode()
