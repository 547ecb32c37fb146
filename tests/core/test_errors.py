"""The error hierarchy: stable codes, problem+json bodies, messages in the active language."""

from __future__ import annotations

from django.utils import translation

from meiye.core.errors import (
    ApplicationError,
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationFailed,
    forbidden,
    not_found,
    required,
)


def _error() -> ValidationFailed:
    return ValidationFailed(
        "member.invalid_phone",
        zh="手机号：需要 11 位中国大陆手机号。",
        en="phone: must be an 11-digit mainland China mobile number.",
        field="phone",
        extra={"given": "123"},
    )


def test_as_problem_has_every_rfc9457_field_and_the_code():
    with translation.override("zh-hans"):
        body = _error().as_problem("/api/v1/members/")
    assert body == {
        "type": "https://meiye.invalid/problems/member.invalid_phone",
        "title": "Invalid input",
        "status": 400,
        "code": "member.invalid_phone",
        "detail": "手机号：需要 11 位中国大陆手机号。",
        "detail_zh": "手机号：需要 11 位中国大陆手机号。",
        "detail_en": "phone: must be an 11-digit mainland China mobile number.",
        "field": "phone",
        "instance": "/api/v1/members/",
        "extra": {"given": "123"},
    }


def test_as_problem_leaves_out_empty_optional_members():
    body = Conflict("x.y", zh="冲突", en="conflict").as_problem()
    assert set(body) == {"type", "title", "status", "code", "detail", "detail_zh", "detail_en"}
    assert body["status"] == 409


def test_message_follows_the_active_language():
    error = _error()
    with translation.override("en"):
        assert error.message == "phone: must be an 11-digit mainland China mobile number."
        assert error.as_problem()["detail"] == error.message_en
    with translation.override("zh-hans"):
        assert error.message == "手机号：需要 11 位中国大陆手机号。"
    with translation.override(None):
        assert error.message == "手机号：需要 11 位中国大陆手机号。"


def test_statuses_and_titles():
    assert (ValidationFailed.status, NotFound.status, PermissionDenied.status, Conflict.status) == (400, 404, 403, 409)
    assert issubclass(Conflict, ApplicationError)
    assert str(_error()) == "member.invalid_phone: phone: must be an 11-digit mainland China mobile number."


def test_helpers():
    err = required("name", "姓名", "Name")
    assert (err.code, err.field, err.message_zh, err.message_en) == (
        "input.required",
        "name",
        "姓名：必填。",
        "Name: this field is required.",
    )
    nf = not_found("member.not_found", "会员", "Member")
    assert isinstance(nf, NotFound)
    assert nf.message_en == "Member not found, or not visible to you."
    denied = forbidden("member.reveal_id")
    assert isinstance(denied, PermissionDenied)
    assert denied.code == "auth.permission_denied"
    assert denied.extra == {"permission": "member.reveal_id"}
    with translation.override("en"):
        assert denied.message == "Your position does not have this permission (member.reveal_id)."
