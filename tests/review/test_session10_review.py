# ruff: noqa: F811 - the API fixtures are imported into this module
"""Review of 93fb6e1..HEAD (session 10): generic plans for the hot statements, psycopg's query conversion kept by
text (``HotQuery``), the API answer encoded once (``EncodedJSON`` and the renderer), aware datetimes and choices
members written as psycopg takes them, the bill's completion written by the statement that numbers it, and the
web process's garbage collector settings.

The review found three weaknesses, mended in the same session (the tests that reproduced them now pass): the
renderer checked the data against ``response.data`` rather than the object it had encoded, and ``insert_rows`` /
``update_row`` handed ``EncodedJSON`` to Django's own write when they fell back to it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connection, connections
from django.db.models import Value
from django.db.models.functions import Now
from django.test import override_settings
from django.utils import timezone
from rest_framework.renderers import JSONRenderer as DrfJSONRenderer
from rest_framework.response import Response

from meiye.api.idempotency import _json_ready, _replay
from meiye.api.renderers import JSONRenderer, encoded_json
from meiye.core import idempotency as core_idempotency
from meiye.core.db import cursors
from meiye.core.db.cursors import hot_cursor
from meiye.core.db.fastwrite import EncodedJSON, insert_rows, update_assignments, update_row
from meiye.core.models import IdempotencyRecord
from meiye.core.money import Money
from meiye.sales.models import Bill, BillSequence, BillStatus, Tender
from meiye.sales.services import (
    COMPLETION_FIELDS,
    LineInput,
    TenderInput,
    bill_add_line,
    bill_checkout,
    bill_complete,
    bill_open,
)
from tests.api.conftest import client_for, token_for  # noqa: F401 - fixtures
from tests.api.conftest_sales import (  # noqa: F401 - fixtures
    care,
    cashier_actor,
    hq_actor,
    ref_categories,
    ref_items,
    serum,
    setup_keys,
    shopper,
    top_up,
)

pytestmark = pytest.mark.usefixtures("fresh_rules_cache")

ON_POSTGRESQL = connection.vendor == "postgresql"
ONE_SHOT = "/api/v1/bills/checkout/"
MEMBERS = "/api/v1/members/"
SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC = ZoneInfo("UTC")
postgresql_only = pytest.mark.skipif(not ON_POSTGRESQL, reason="psycopg's cursor: PostgreSQL only")


def _stored_value(amount: str = "600.00") -> list[TenderInput]:
    return [TenderInput(kind="stored_value", amount=Money.parse(amount))]


def _one_shot(actor, member, item, tenders=None) -> Bill:  # type: ignore[no-untyped-def]
    return bill_checkout(
        actor=actor,
        member=member,
        lines=[LineInput(item_id=item.pk)],
        tenders=tenders or _stored_value(),
        idempotency_key=uuid.uuid4().hex,
    )


def _completion_in_memory(bill: Bill) -> dict[str, Any]:
    """The completion (and the number) as the service set them on the instance it returns; a journal by its
    object's key, which is what must reach the row whenever the key was known."""
    values: dict[str, Any] = {}
    for name in (*COMPLETION_FIELDS, "number"):
        field = Bill._meta.get_field(name)
        if field.is_relation:
            related = getattr(bill, name)
            values[field.attname] = related.pk if related is not None else None
        else:
            values[field.attname] = getattr(bill, field.attname)
    return values


def _completion_in_the_row(bill: Bill) -> dict[str, Any]:
    names = [Bill._meta.get_field(name).attname for name in (*COMPLETION_FIELDS, "number")]
    return Bill.objects.filter(pk=bill.pk).values(*names).get()


def _assert_completion_written(bill: Bill) -> dict[str, Any]:
    row = _completion_in_the_row(bill)
    assert row == _completion_in_memory(bill)
    assert row["status"] == BillStatus.COMPLETED
    assert type(row["status"]) is str
    assert row["completed_at"] is not None and row["completed_at"].utcoffset() is not None
    assert not row["number"].startswith("~")
    assert row["cny_journal_id"] is not None  # a stored-value tender posts a money journal
    assert Tender.objects.get(bill_id=bill.pk).journal_id == row["cny_journal_id"]
    assert row["points_earn_journal_id"] is not None and row["points_earned"] > 0
    return row


# --- the completion written with the number -------------------------------------------------------------------


def test_a_stores_first_and_second_one_shot_bills_both_carry_their_whole_completion(
    cashier_actor, shopper, care, store1, top_up
):
    """The first bill takes the fallback (no sequence row yet: the CTE updates nothing), the second the CTE."""
    top_up(shopper, "2000.00")
    assert not BillSequence.objects.filter(store=store1).exists()

    first = _one_shot(cashier_actor, shopper, care)
    second = _one_shot(cashier_actor, shopper, care)

    prefix = store1.code.upper()
    assert _assert_completion_written(first)["number"] == f"{prefix}-000001"
    assert _assert_completion_written(second)["number"] == f"{prefix}-000002"
    assert BillSequence.objects.get(store=store1).next_value == 3


def test_a_bill_opened_first_then_completed_carries_its_whole_completion(cashier_actor, shopper, care, top_up):
    top_up(shopper, "2000.00")
    bill = bill_open(actor=cashier_actor, member=shopper)
    bill_add_line(actor=cashier_actor, bill=bill, item=care)

    completed = bill_complete(actor=cashier_actor, bill=bill, tenders=_stored_value(), idempotency_key=uuid.uuid4().hex)

    row = _assert_completion_written(completed)
    assert row["number"] == bill.number  # numbered when opened, not again
    assert row["payable_total_fen"] == 60_000


@pytest.mark.parametrize("mode", ["0", "1"])
def test_the_completion_is_written_whatever_the_prepared_statements_mode(cashier_actor, shopper, care, top_up, mode):
    """MEIYE_PG_PREPARED 0 / 1: ``hot_cursor`` is Django's cursor, so the numbering statement with the completion
    is bound on the client (0) or by Django's cursor (1): the SET list's values must suit either."""
    top_up(shopper, "2000.00")
    with override_settings(MEIYE_PG_PREPARED=mode):
        first = _one_shot(cashier_actor, shopper, care)
        second = _one_shot(cashier_actor, shopper, care)

    _assert_completion_written(first)
    _assert_completion_written(second)


def test_the_numbering_statement_sends_the_completion_as_update_row_would(cashier_actor, shopper, care, top_up):
    """The SET list ``update_assignments`` gives is the UPDATE's, with the same prepared values."""
    top_up(shopper, "2000.00")
    bill = _one_shot(cashier_actor, shopper, care)

    assignments, values = update_assignments(bill, COMPLETION_FIELDS)

    qn = connection.ops.quote_name
    assert assignments == ", ".join(f"{qn(Bill._meta.get_field(n).column)} = %s" for n in COMPLETION_FIELDS)
    assert values[COMPLETION_FIELDS.index("status")] == "completed"
    assert type(values[COMPLETION_FIELDS.index("status")]) is str  # not the TextChoices member
    field = Bill._meta.get_field("completed_at")
    assert values[COMPLETION_FIELDS.index("completed_at")] == field.get_db_prep_save(bill.completed_at, connection)


def test_update_assignments_refuses_an_expression_instead_of_writing_it(cashier_actor, shopper, care, top_up):
    top_up(shopper, "2000.00")
    bill = _one_shot(cashier_actor, shopper, care)
    bill.completed_at = Now()

    with pytest.raises(ValueError, match="expression"):
        update_assignments(bill, COMPLETION_FIELDS)


# --- values written as psycopg takes them ---------------------------------------------------------------------


def _record(org, **fields: Any) -> IdempotencyRecord:  # type: ignore[no-untyped-def]
    defaults: dict[str, Any] = {
        "organisation_id": org.pk,
        "key": uuid.uuid4().hex,
        "scope": "t.review10",
        "request_hash": "0" * 64,
        "response": {},
    }
    return IdempotencyRecord.objects.create(**{**defaults, **fields})


def _settle() -> None:
    """Queued writes (pipelined blocks) are waited for: read through the ORM, which settles nothing itself."""
    from meiye.core.db.pipeline import settle

    if ON_POSTGRESQL:
        settle()


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=SHANGHAI),
        datetime(2026, 3, 8, 2, 30, tzinfo=ZoneInfo("America/New_York")),  # a DST gap in New York
        datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=ZoneInfo("America/New_York")),  # the second 01:30
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=ZoneInfo("UTC")),
    ],
)
def test_an_aware_datetime_in_any_zone_is_written_as_the_same_instant(org, moment):
    record = _record(org)
    record.created_at = moment

    update_row(record, ["created_at"])
    _settle()

    stored = IdempotencyRecord.objects.get(pk=record.pk).created_at
    # the same instant (compared in UTC: PEP 495 makes inter-zone comparisons of gap and fold times unequal)
    assert stored.astimezone(UTC) == moment.astimezone(UTC)
    assert stored.utcoffset() is not None


def test_a_naive_datetime_still_takes_djangos_way_warned_and_made_aware(org):
    """A naive datetime must not reach the database as it is (PostgreSQL would read it in the session's zone):
    it goes through the field, which warns and makes it aware in the current time zone, as ``save`` does."""
    naive = datetime(2026, 3, 1, 9, 30)
    by_fastwrite, by_save = _record(org), _record(org)

    by_fastwrite.created_at = naive
    with pytest.warns(RuntimeWarning, match="naive datetime"):
        update_row(by_fastwrite, ["created_at"])
    _settle()
    by_save.created_at = naive
    with pytest.warns(RuntimeWarning, match="naive datetime"):
        by_save.save(update_fields=["created_at"])

    stored = IdempotencyRecord.objects.get(pk=by_fastwrite.pk).created_at
    assert stored == IdempotencyRecord.objects.get(pk=by_save.pk).created_at
    assert stored == timezone.make_aware(naive)


def test_a_datetime_subclass_is_written_by_the_field(org):
    """freezegun-like subclasses are not ``datetime`` itself: they take the field's way and still arrive."""

    class Frozen(datetime):
        pass

    moment = Frozen(2026, 3, 1, 9, 30, tzinfo=SHANGHAI)
    record = _record(org)
    record.created_at = moment

    update_row(record, ["created_at"])
    _settle()

    assert IdempotencyRecord.objects.get(pk=record.pk).created_at == moment


def test_str_subclasses_are_written_as_the_text_they_hold_not_their_str(org):
    class Shouty(str):
        def __str__(self) -> str:
            return self.upper()

    record = _record(org)
    record.scope = BillStatus.COMPLETED
    record.key = Shouty("quiet-key")

    update_row(record, ["scope", "key"])
    _settle()

    stored = IdempotencyRecord.objects.values_list("scope", "key").get(pk=record.pk)
    assert stored == ("completed", "quiet-key")  # what the ORM's save writes for both


def test_an_expression_in_a_text_field_is_still_compiled_by_django(org):
    record = _record(org)
    record.scope = Value("by-expression")

    update_row(record, ["scope"])

    assert IdempotencyRecord.objects.get(pk=record.pk).scope == "by-expression"


def test_a_choices_member_inserted_by_insert_rows_is_read_back_as_plain_text(org):
    record = IdempotencyRecord(
        organisation_id=org.pk, key=BillStatus.VOIDED, scope=BillStatus.OPEN, request_hash="h", response={}
    )

    insert_rows([record])

    assert IdempotencyRecord.objects.values_list("key", "scope").get(pk=record.pk) == ("voided", "open")


# --- the answer encoded once ----------------------------------------------------------------------------------


def _drf(data: Any, media_type: str = "application/json", context: dict[str, Any] | None = None) -> bytes:
    return DrfJSONRenderer().render(data, media_type, context or {})


def _care_by_wechat(member: Any, care: Any) -> dict[str, Any]:
    """The API checkout's body for one 基础护理 line (600.00) paid by WeChat."""
    return {
        "member_id": member.pk,
        "lines": [{"item_id": care.pk}],
        "tenders": [{"kind": "wechat", "amount": "600.00"}],
    }


def test_an_api_checkouts_answer_is_drfs_bytes_and_its_replay_the_same_answer(
    client_for, receptionist, store1, shopper, care, top_up
):
    top_up(shopper, "2000.00")
    api = client_for(receptionist, HTTP_X_STORE_ID=str(store1.pk))
    body = _care_by_wechat(shopper, care)

    first = api.post(ONE_SHOT, body, format="json", HTTP_IDEMPOTENCY_KEY="rv10-checkout")
    again = api.post(ONE_SHOT, body, format="json", HTTP_IDEMPOTENCY_KEY="rv10-checkout")

    assert first.status_code == again.status_code == 201, first.content
    assert first.content == _drf(first.data)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert again.content == _drf(again.data)
    assert IdempotencyRecord.objects.get(key="rv10-checkout").response == first.json()
    assert Bill.objects.count() == 1


def test_erasure_finds_and_redacts_a_checkout_answer_stored_as_encoded_text(
    client_for, receptionist, store1, shopper, care, hq_actor
):
    """The record's text is raw UTF-8 now (it was ASCII-escaped): the JSON key lookups of the erasure must still
    find the member in it, on SQLite's JSON1 and in PostgreSQL's jsonb."""
    from meiye.members.services import member_erase

    api = client_for(receptionist, HTTP_X_STORE_ID=str(store1.pk))
    body = _care_by_wechat(shopper, care)
    first = api.post(ONE_SHOT, body, format="json", HTTP_IDEMPOTENCY_KEY="rv10-erase")
    assert first.status_code == 201, first.content
    assert first.json()["member"]["id"] == shopper.pk

    member_erase(actor=hq_actor, member=shopper, reason="会员申请注销")

    assert IdempotencyRecord.objects.get(key="rv10-erase").response == {"redacted": "member erased / 会员已注销"}
    again = api.post(ONE_SHOT, body, format="json", HTTP_IDEMPOTENCY_KEY="rv10-erase")
    assert again.json() == {"redacted": "member erased / 会员已注销"}


@pytest.mark.parametrize("mode", ["hot", "0"])
def test_an_answer_with_separators_quotes_and_astral_characters_is_stored_and_replayed_as_sent(
    client_for, receptionist, mode
):
    """U+2028/U+2029 are escaped by DRF and by ``encoded_json``; quotes, backslashes and characters outside the
    BMP are written raw (UNICODE_JSON). ``mode`` 0: the record goes through Django's client-side cursor."""
    api = client_for(receptionist)
    notes = 'line\u2028sep\u2029para "quoted" back\\slash tab\t 表情😀 \u00e9'
    body = {"name": "王丽", "phone": "13812340000", "notes": notes}

    with override_settings(MEIYE_PG_PREPARED=mode):
        first = api.post(MEMBERS, body, format="json", HTTP_IDEMPOTENCY_KEY="rv10-notes")
        again = api.post(MEMBERS, body, format="json", HTTP_IDEMPOTENCY_KEY="rv10-notes")

    assert first.status_code == again.status_code == 201, first.content
    assert first.content == _drf(first.data)
    assert b"\\u2028" in first.content and "😀".encode() in first.content
    assert first.json()["notes"] == notes
    stored = IdempotencyRecord.objects.get(key="rv10-notes").response
    assert stored == first.json() == again.json()
    assert isinstance(stored, dict)


@pytest.mark.parametrize("accept", ["application/json; indent=4", "application/json; indent=0", "*/*"])
def test_a_negotiated_answer_is_what_drf_sends_for_that_accept_header(client_for, receptionist, accept):
    api = client_for(receptionist)
    body = {"name": "李娜", "phone": "13812340001"}

    first = api.post(MEMBERS, body, format="json", HTTP_IDEMPOTENCY_KEY="rv10-accept", HTTP_ACCEPT=accept)
    again = api.post(MEMBERS, body, format="json", HTTP_IDEMPOTENCY_KEY="rv10-accept", HTTP_ACCEPT=accept)

    assert first.status_code == again.status_code == 201, first.content
    media_type = accept if accept.startswith("application/json") else "application/json"
    assert first.content == _drf(first.data, media_type)
    assert again.json() == first.json() == IdempotencyRecord.objects.get(key="rv10-accept").response


def test_the_renderer_sends_data_that_replaced_the_encoded_answer():
    response = Response({"a": 1})
    encoded_json(response)
    response.data = {"b": "二"}

    assert JSONRenderer().render(response.data, "application/json", {"response": response}) == _drf({"b": "二"})


def test_the_renderer_without_a_response_in_its_context_is_drfs():
    data = {"a": [1, 2.5, None, "\u2028"]}

    assert JSONRenderer().render(data, "application/json", None) == _drf(data)
    assert JSONRenderer().render(None, "application/json", {}) == b""


@pytest.mark.django_db
@pytest.mark.parametrize(
    "data",
    [
        {"id": 7, "amount": "12.50", "when": datetime(2026, 3, 1, 9, 30, tzinfo=SHANGHAI), "ok": True},
        [{"a": 1}, {"b": [1, "二"]}],
        {"nested": {"deep": [{"x": "\u2029"}]}, "big": 2**62, "neg": -1.5},
        "just text",
        {"__list__": "looks like a wrapper"},
    ],
)
def test_a_stored_answer_replays_as_the_first_answer_decodes(org, data):
    first = Response(data, status=201)
    core_idempotency.store(
        organisation_id=org.pk,
        key="rv10-direct",
        scope="test",
        request_hash="h",
        status_code=201,
        response=_json_ready(first),
    )
    _settle()

    replay = core_idempotency.lookup(organisation_id=org.pk, key="rv10-direct", request_hash="h")
    assert replay is not None
    answer = _replay(replay)

    expected = json.loads(encoded_json(first))
    if data == {"__list__": "looks like a wrapper"}:
        # the wrapper is ambiguous: an object whose only key is "__list__" replays as its value (as before)
        assert answer.data == "looks like a wrapper"
    else:
        assert answer.data == expected
    assert encoded_json(first).encode() == _drf(data)


# --- psycopg's conversion kept by text ------------------------------------------------------------------------


def _fresh_connection() -> Any:
    return connections.create_connection("default")


def _hot_fetch(conn: Any, sql: Any, params: Any) -> Any:
    with hot_cursor(conn, len(params)) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


@postgresql_only
@pytest.mark.django_db
def test_the_kept_conversion_follows_the_connections_encoding():
    """'é' is two bytes in UTF8 and one in LATIN1: a conversion kept for one encoding must not serve the other."""
    sql = "SELECT %s::text || 'é' || %s::text"
    other = _fresh_connection()
    try:
        assert _hot_fetch(other, sql, ["a", "b"]) == [("aéb",)]
        with other.cursor() as cursor:
            cursor.execute("SET client_encoding TO 'LATIN1'")
        assert _hot_fetch(other, sql, ["c", "d"]) == [("céd",)]
        with other.cursor() as cursor:
            cursor.execute("SET client_encoding TO 'UTF8'")
        assert _hot_fetch(other, sql, ["e", "f"]) == [("eéf",)]
        assert {encoding for (text, encoding) in cursors._hot_converted if text == sql} >= {"utf-8", "iso8859-1"}
    finally:
        other.close()


@postgresql_only
@pytest.mark.django_db
def test_composed_bytes_and_str_subclass_statements_are_converted_by_psycopg_and_not_kept():
    from psycopg import sql as pgsql

    class Text(str):
        pass

    composed = pgsql.SQL("SELECT {} + %s::int").format(pgsql.Literal(40))
    before = dict(cursors._hot_converted)

    assert _hot_fetch(connection, composed, [2]) == [(42,)]
    assert _hot_fetch(connection, b"SELECT %s::int * 2", [21]) == [(42,)]
    assert _hot_fetch(connection, Text("SELECT %s::int - 1 AS review10_subclass"), [43]) == [(42,)]

    added = set(cursors._hot_converted) - set(before)
    assert not any("review10_subclass" in text for text, _ in added)
    assert all(type(text) is str for text, _ in cursors._hot_converted)


@postgresql_only
@pytest.mark.django_db
def test_a_kept_conversion_still_checks_the_parameters_and_keeps_percent_signs():
    from django.db import ProgrammingError

    sql = "SELECT %s::text || '%%' AS review10_percent"
    assert _hot_fetch(connection, sql, ["50"]) == [("50%",)]
    assert _hot_fetch(connection, sql, ["75"]) == [("75%",)]  # from the kept conversion
    with pytest.raises(ProgrammingError, match="placeholder"):
        _hot_fetch(connection, sql, ["1", "2"])

    named = "SELECT %(a)s::int - %(b)s::int AS review10_named"
    assert _hot_fetch(connection, named, {"a": 50, "b": 8}) == [(42,)]
    assert _hot_fetch(connection, named, {"b": 1, "a": 2}) == [(1,)]
    with pytest.raises(ProgrammingError, match="missing"):
        _hot_fetch(connection, named, {"a": 1, "c": 2})


@postgresql_only
@pytest.mark.django_db
def test_the_kept_conversions_are_bounded_and_still_right_after_being_cleared(monkeypatch):
    monkeypatch.setattr(cursors, "HOT_CONVERTED_MAX", 4)
    monkeypatch.setattr(cursors, "_hot_converted", {})

    for round_ in range(3):
        for n in range(10):
            assert _hot_fetch(connection, f"SELECT %s::int + {n} AS review10_bound", [round_]) == [(round_ + n,)]
            assert len(cursors._hot_converted) <= 4


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_threads_sharing_the_kept_conversions_while_it_is_cleared_get_their_own_answers(monkeypatch):
    monkeypatch.setattr(cursors, "HOT_CONVERTED_MAX", 8)
    monkeypatch.setattr(cursors, "_hot_converted", {})
    wrong: list[str] = []

    def work(offset: int) -> None:
        conn = _fresh_connection()
        try:
            for i in range(150):
                shape = i % 13
                params = [offset + i] * (shape % 3 + 1)
                placeholders = " + ".join(["%s::int"] * len(params))
                got = _hot_fetch(conn, f"SELECT {placeholders} + {shape} AS review10_threads", params)
                if got != [(sum(params) + shape,)]:
                    wrong.append(f"{offset}:{i}: {got}")
        except Exception as error:  # pragma: no cover - reported below
            wrong.append(repr(error))
        finally:
            conn.close()

    threads = [threading.Thread(target=work, args=(k * 10_000,)) for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert wrong == []
    assert len(cursors._hot_converted) <= 8


@postgresql_only
@pytest.mark.django_db
def test_the_hot_mode_plans_prepared_statements_once():
    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        (mode,) = cursor.fetchone()
    expected = "force_generic_plan" if settings.MEIYE_PG_PREPARED == "hot" else "auto"
    assert mode == expected


# --- garbage collection ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("switch", "tuned"), [(None, True), ("0", False)])
def test_the_web_entry_point_tunes_the_collector_only_when_not_switched_off(switch, tuned):
    """Importing ``config.wsgi`` tunes the process that imports it; run apart, so this test process keeps
    the interpreter's defaults (nothing in the test run imports the WSGI module)."""
    env = {k: v for k, v in os.environ.items() if k != "MEIYE_GC_TUNING"}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    if switch is not None:
        env["MEIYE_GC_TUNING"] = switch
    script = "import gc, config.wsgi; print(gc.get_threshold()[0], gc.get_freeze_count() > 0)"
    result = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )

    assert result.returncode == 0, result.stderr
    young, frozen = result.stdout.split()
    assert (int(young) == 50_000, frozen == "True") == (tuned, tuned)
    import gc

    assert gc.get_threshold()[0] != 50_000  # not this process


# --- EncodedJSON outside fastwrite's own statements -----------------------------------------------------------


def test_an_encoded_answer_written_through_insert_rows_fallback_stays_an_object(org):
    record = IdempotencyRecord(
        organisation_id=org.pk, key="rv10-fallback", scope="t", request_hash="h", response=EncodedJSON('{"a":1}')
    )
    record.request_hash = Value("h")  # an expression: insert_rows hands the rows to bulk_create

    insert_rows([record])

    assert IdempotencyRecord.objects.get(key="rv10-fallback").response == {"a": 1}


def test_an_encoded_answer_written_through_update_row_fallback_stays_an_object(org):
    record = _record(org, key="rv10-update-fallback")
    record.response = EncodedJSON('{"a":1}')
    record.scope = Value("t2")

    update_row(record, ["response", "scope"])

    assert IdempotencyRecord.objects.get(key="rv10-update-fallback").response == {"a": 1}


def test_an_encoded_answer_written_by_update_row_is_the_object_it_holds(org):
    record = _record(org, key="rv10-update")
    record.response = EncodedJSON('{"a":[1,"二"],"b":null}')

    update_row(record, ["response"])
    _settle()

    assert IdempotencyRecord.objects.get(key="rv10-update").response == {"a": [1, "二"], "b": None}


def test_an_encoded_answer_is_logged_with_its_text_when_queries_are_captured(org):
    """With queries logged (DEBUG, ``django_assert_num_queries``) the hot cursor composes the statement with its
    values: the ``Jsonb`` wrapper of the encoded text must compose, and the row must still be written."""
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        core_idempotency.store(
            organisation_id=org.pk,
            key="rv10-logged",
            scope="test",
            request_hash="h",
            status_code=201,
            response=EncodedJSON('{"logged":"记录"}'),
        )
        _settle()

    assert IdempotencyRecord.objects.get(key="rv10-logged").response == {"logged": "记录"}
    assert any("rv10-logged" in query["sql"] and "logged" in query["sql"] for query in captured.captured_queries)
