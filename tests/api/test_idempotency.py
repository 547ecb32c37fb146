"""The Idempotency-Key header: replay, conflict, rollback, required keys, concurrency."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection
from django.urls import URLPattern, URLResolver, get_resolver

from meiye.api.idempotency import idempotency_of
from meiye.audit.models import AuditLog
from meiye.core.models import IdempotencyRecord
from meiye.members.models import Member

MEMBERS = "/api/v1/members/"
BODY = {"name": "王丽", "phone": "13812345678", "tags": ["VIP"]}


def test_same_key_and_body_twice_creates_one_member_and_answers_identically(reception_api, org):
    # when
    first = reception_api.post(MEMBERS, BODY, format="json", HTTP_IDEMPOTENCY_KEY="reg-001")
    second = reception_api.post(MEMBERS, BODY, format="json", HTTP_IDEMPOTENCY_KEY="reg-001")

    # then
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert Member.objects.count() == 1
    assert AuditLog.objects.filter(action="member.create").count() == 1
    record = IdempotencyRecord.objects.get()
    assert (record.organisation_id, record.key, record.status_code) == (org.pk, "reg-001", 201)
    assert record.scope == "http:POST /api/v1/members/"
    assert record.response == first.json()


def test_same_key_with_a_different_body_is_a_409_and_creates_nothing(reception_api):
    reception_api.post(MEMBERS, BODY, format="json", HTTP_IDEMPOTENCY_KEY="reg-001")

    response = reception_api.post(
        MEMBERS, {**BODY, "phone": "13900001111"}, format="json", HTTP_IDEMPOTENCY_KEY="reg-001"
    )

    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "idempotency.key_reused"
    assert body["field"] == "idempotency_key"
    assert body["detail_en"] == (
        "Idempotency key 'reg-001' was already used for a request with a different body; use a new key."
    )
    assert Member.objects.count() == 1
    assert IdempotencyRecord.objects.count() == 1


def test_same_key_on_another_endpoint_is_a_409(reception_api, make_member, store1):
    member = make_member(store1)
    reception_api.post(MEMBERS, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k1")

    response = reception_api.patch(f"{MEMBERS}{member.pk}/", {"notes": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency.key_reused"
    member.refresh_from_db()
    assert member.notes == ""


def test_same_key_from_another_staff_member_is_a_409_not_a_replay(client_for, receptionist, manager):
    client_for(receptionist).post(MEMBERS, BODY, format="json", HTTP_IDEMPOTENCY_KEY="shared")

    response = client_for(manager).post(MEMBERS, BODY, format="json", HTTP_IDEMPOTENCY_KEY="shared")

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency.key_reused"
    assert Member.objects.count() == 1


def test_a_failed_write_stores_nothing_and_the_key_can_be_retried(reception_api):
    # given: the first attempt fails validation
    failed = reception_api.post(MEMBERS, {**BODY, "phone": "123"}, format="json", HTTP_IDEMPOTENCY_KEY="reg-002")
    assert failed.status_code == 400
    assert IdempotencyRecord.objects.count() == 0
    assert Member.objects.count() == 0

    # when: corrected and retried with the same key
    retried = reception_api.post(MEMBERS, BODY, format="json", HTTP_IDEMPOTENCY_KEY="reg-002")

    # then
    assert retried.status_code == 201
    assert Member.objects.count() == 1
    assert IdempotencyRecord.objects.get().key == "reg-002"


def test_a_business_conflict_stores_nothing(reception_api, make_member, store1):
    make_member(store1, phone="13812345678")

    response = reception_api.post(MEMBERS, BODY, format="json", HTTP_IDEMPOTENCY_KEY="dup")

    assert response.status_code == 409
    assert response.json()["code"] == "member.duplicate_phone"
    assert IdempotencyRecord.objects.count() == 0


def test_patch_is_replayed(reception_api, make_member, store1):
    member = make_member(store1)

    first = reception_api.patch(f"{MEMBERS}{member.pk}/", {"notes": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="p1")
    second = reception_api.patch(f"{MEMBERS}{member.pk}/", {"notes": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="p1")

    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert AuditLog.objects.filter(action="member.update").count() == 1


def test_reveal_is_never_stored_and_every_reveal_is_audited(reception_api, make_member, store1):
    member = make_member(store1, phone="13812345678")
    url = f"{MEMBERS}{member.pk}/reveal/"

    first = reception_api.post(url, {"field": "phone"}, format="json", HTTP_IDEMPOTENCY_KEY="r1")
    second = reception_api.post(url, {"field": "phone"}, format="json", HTTP_IDEMPOTENCY_KEY="r1")

    assert first.json() == second.json() == {"field": "phone", "value": "13812345678"}
    assert IdempotencyRecord.objects.count() == 0
    assert AuditLog.objects.filter(action="member.reveal").count() == 2


@pytest.mark.parametrize("key", ["", " ", "x" * 129, "bad\nkey"])
def test_an_invalid_key_is_refused(reception_api, key):
    response = reception_api.post(MEMBERS, BODY, format="json", HTTP_IDEMPOTENCY_KEY=key)

    assert response.status_code == 400
    assert response.json()["code"] == "idempotency.invalid_key"
    assert Member.objects.count() == 0


@pytest.mark.urls("tests.api.urls_strict")
def test_a_view_may_require_the_key(reception_api):
    missing = reception_api.post("/strict/members/", BODY, format="json")
    assert missing.status_code == 400
    assert missing["Content-Type"] == "application/problem+json"
    assert missing.json()["code"] == "idempotency.key_required"
    assert missing.json()["field"] == "idempotency_key"
    assert missing.json()["detail_zh"].startswith("此操作必须带 Idempotency-Key 请求头")
    assert Member.objects.count() == 0

    sent = reception_api.post("/strict/members/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="strict-1")
    assert sent.status_code == 201
    assert Member.objects.count() == 1


def _api_v1_views():
    """(path, view class, {method: handler}) for every route under /api/v1/."""

    def walk(patterns, prefix=""):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                yield prefix + str(entry.pattern), entry.callback

    for route, callback in walk(get_resolver().url_patterns):
        if not route.startswith("api/v1/") or not hasattr(callback, "cls"):
            continue
        actions = getattr(callback, "actions", None)
        if actions is not None:
            handlers = {method: getattr(callback.cls, name) for method, name in actions.items()}
        else:
            handlers = {
                m: getattr(callback.cls, m) for m in ("post", "put", "patch", "delete") if hasattr(callback.cls, m)
            }
        yield route, handlers


def test_every_api_write_handler_declares_its_idempotency():
    undeclared = [
        (route, method)
        for route, handlers in _api_v1_views()
        for method, handler in handlers.items()
        if method in {"post", "put", "patch", "delete"} and idempotency_of(handler) is None
    ]
    writes = [
        (route, method)
        for route, handlers in _api_v1_views()
        for method in handlers
        if method in {"post", "put", "patch", "delete"}
    ]
    # members: create, partial_update, reveal, erase, consents; catalogue: categories create/partial_update,
    # items create/partial_update, store price put/delete; bills: open, add line, change line, remove line,
    # checkout, one-shot checkout, refund, void; wallet: recharge; points: adjust; points mall: redeem, approve, reject;
    # promotions: coupon templates create/partial_update, promotions create/partial_update, stacking put, issue
    # a coupon, void a coupon; tiers: create, partial_update, destroy, grant; rules: put, member check-in
    # segments: create, partial_update, destroy, count (exempt: a read); campaigns: create, partial_update,
    # schedule, send; cards and prepaid (31): card products create/put, rules create/put, card settings put,
    # member cards issue, bind, freeze, unfreeze, lost, replace, close, transfer, import, payment code, payment
    # password; stored value: cooling-off refund, close, transfer; package products create/put, a member's
    # package use, refund, freeze, unfreeze, extend, transfer; gift cards sell, lookup, void; contract sign;
    # reviewing an earning flag
    assert len(writes) == 37 + 8 + 31 + 1
    assert undeclared == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_attempts_with_one_key_create_one_member(client_for, receptionist):
    # given
    threads_count = 6
    clients = [client_for(receptionist) for _ in range(threads_count)]
    start = threading.Barrier(threads_count)
    outcomes: list[tuple[int, str]] = []
    bodies: list[dict] = []

    def register(client) -> None:
        try:
            start.wait()
            response = client.post(MEMBERS, BODY, format="json", HTTP_IDEMPOTENCY_KEY="race-1")
            outcomes.append((response.status_code, response.headers.get("Idempotent-Replayed", "")))
            bodies.append(response.json())
        except Exception as error:  # any failure must show up in the assertion
            outcomes.append((0, repr(error)))
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=register, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then: one write, every caller gets the same 201
    assert Counter(outcomes) == {(201, ""): 1, (201, "true"): threads_count - 1}
    assert all(body == bodies[0] for body in bodies)
    assert Member.objects.count() == 1
    assert IdempotencyRecord.objects.count() == 1
    assert AuditLog.objects.filter(action="member.create").count() == 1


def test_a_typed_secret_enters_the_stored_fingerprint_only_as_a_keyed_hmac(db):
    from rest_framework.parsers import JSONParser
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from meiye.api.idempotency import request_fingerprint
    from meiye.core.idempotency import canonical_hash

    def fingerprint(body):
        raw = APIRequestFactory().post("/api/v1/cards/1/replace/", body, format="json")
        request = Request(raw, parsers=[JSONParser()])
        request.user = type("U", (), {"pk": 1})()
        return request_fingerprint(request)

    body = {"password": "482915", "tenders": [{"kind": "stored_value", "payment_code": "135790"}]}
    plain = canonical_hash(
        {"method": "POST", "path": "/api/v1/cards/1/replace/", "body": body, "staff": 1, "store": ""}
    )
    assert fingerprint(body) != plain  # a plain hash of 6 digits is reversed by trying a million values
    assert fingerprint(body) == fingerprint(dict(body))
    assert fingerprint(body) != fingerprint({**body, "password": "482916"})  # still tells requests apart


def test_a_stored_answer_is_encoded_once_and_sent_as_drf_renders_it(reception_api):
    from rest_framework.renderers import JSONRenderer as DrfJSONRenderer

    first = reception_api.post(MEMBERS, BODY, format="json", HTTP_IDEMPOTENCY_KEY="enc-001")
    again = reception_api.post(MEMBERS, BODY, format="json", HTTP_IDEMPOTENCY_KEY="enc-001")

    assert first.status_code == again.status_code == 201
    assert first.content == DrfJSONRenderer().render(first.data)  # the same bytes DRF would send
    assert "王丽".encode() in first.content
    assert IdempotencyRecord.objects.get().response == first.json() == again.json()


def test_the_encoded_answer_is_what_drfs_renderer_writes():
    from rest_framework.renderers import JSONRenderer as DrfJSONRenderer
    from rest_framework.response import Response

    from meiye.api.renderers import encoded_json

    data = {"name": "王丽\u2028\u2029", "amount": "12.50", "list": [1, None, True]}

    assert encoded_json(Response(data)).encode() == DrfJSONRenderer().render(data)


def test_a_client_asking_for_indented_json_gets_it(reception_api):
    answer = reception_api.post(
        MEMBERS, BODY, format="json", HTTP_IDEMPOTENCY_KEY="enc-002", HTTP_ACCEPT="application/json; indent=2"
    )

    assert answer.status_code == 201
    assert answer.content.startswith(b'{\n  "')
    assert IdempotencyRecord.objects.get().response == answer.json()


@pytest.mark.django_db
@pytest.mark.parametrize(("data", "stored"), [([1, "二"], {"__list__": [1, "二"]}), (None, {}), ({"a": 1}, {"a": 1})])
def test_an_answer_that_is_not_an_object_is_stored_under_a_key(org, data, stored):
    from rest_framework.response import Response

    from meiye.api.idempotency import _json_ready
    from meiye.core.idempotency import store

    store(
        organisation_id=org.pk,
        key="k-1",
        scope="test",
        request_hash="h",
        status_code=200,
        response=_json_ready(Response(data)),
    )

    assert IdempotencyRecord.objects.get().response == stored
