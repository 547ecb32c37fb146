"""Checks on member input. Each failure names the field and the rule, in Chinese and English."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email

from meiye.core.crypto import normalise_id_number, normalise_phone
from meiye.core.errors import ValidationFailed
from meiye.members.models import CustomField, FieldType

_MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def clean_phone(raw: str, *, field: str = "phone") -> str:
    phone = normalise_phone(raw)
    if not _MOBILE_RE.match(phone):
        raise ValidationFailed(
            "member.invalid_phone",
            zh="手机号：需要 11 位中国大陆手机号，如 13812345678。",
            en="phone: must be an 11-digit mainland China mobile number, e.g. 13812345678.",
            field=field,
        )
    return phone


def id_number_checksum(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def clean_id_number(raw: str, *, field: str = "id_number") -> str:
    value = normalise_id_number(raw)
    if not (
        len(value) == 18
        and value[:17].isdigit()
        and value[17] == id_number_checksum(value[:17])
        and _valid_birth(value[6:14])
    ):
        raise ValidationFailed(
            "member.invalid_id_number",
            zh="身份证号：需要 18 位居民身份证号码，且校验位正确。",
            en="id_number: must be an 18-character resident ID number with a valid check digit.",
            field=field,
        )
    return value


def _valid_birth(text: str) -> bool:
    try:
        born = date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return False
    return date(1900, 1, 1) <= born <= date.today()


def clean_email(raw: str, *, field: str = "email") -> str:
    value = (raw or "").strip()
    if not value:
        return ""
    try:
        validate_email(value)
    except DjangoValidationError:
        raise ValidationFailed(
            "member.invalid_email",
            zh="邮箱：格式不正确，如 name@example.com。",
            en="email: not a valid address, e.g. name@example.com.",
            field=field,
        ) from None
    return value


def clean_name(raw: str, *, field: str = "name") -> str:
    value = " ".join((raw or "").split())
    if not value or len(value) > 50:
        raise ValidationFailed(
            "member.invalid_name",
            zh="姓名：必填，最多 50 个字符。",
            en="name: required, at most 50 characters.",
            field=field,
        )
    return value


def clean_birthday(value: date | str | None, *, field: str = "birthday") -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value)
        except ValueError:
            raise _bad_date(field) from None
    if not isinstance(value, date) or value > date.today() or value.year < 1900:
        raise _bad_date(field)
    return value


def _bad_date(field: str) -> ValidationFailed:
    return ValidationFailed(
        "member.invalid_date",
        zh=f"{field}：日期格式为 YYYY-MM-DD，且不能晚于今天。",
        en=f"{field}: a date as YYYY-MM-DD, not in the future.",
        field=field,
    )


def clean_custom_value(field: CustomField, raw: Any) -> Any:
    """Validate one custom-field value by its type. Empty values come back as None."""
    name = f"custom.{field.key}"
    label = f"{field.label_zh}（{field.label_en or field.key}）"
    if raw in (None, "", []):
        if field.required:
            raise ValidationFailed(
                "member.custom_required",
                zh=f"{field.label_zh}：必填。",
                en=f"{field.label_en or field.key}: this field is required.",
                field=name,
            )
        return None
    if field.field_type == FieldType.TEXT:
        text = str(raw).strip()
        if len(text) > 500:
            raise _custom_error(name, label, "最多 500 个字符", "at most 500 characters")
        return text
    if field.field_type == FieldType.NUMBER:
        try:
            number = Decimal(str(raw).strip())
        except InvalidOperation:
            raise _custom_error(name, label, "需要数字", "must be a number") from None
        if not number.is_finite():
            raise _custom_error(name, label, "需要数字", "must be a number")
        return str(number)
    if field.field_type == FieldType.DATE:
        try:
            return date.fromisoformat(str(raw)).isoformat()
        except ValueError:
            raise _custom_error(name, label, "日期格式为 YYYY-MM-DD", "must be a date as YYYY-MM-DD") from None
    options = [str(option) for option in field.choices]
    if field.field_type == FieldType.CHOICE:
        if str(raw) not in options:
            raise _custom_error(name, label, f"只能选 {options} 之一", f"must be one of {options}")
        return str(raw)
    values = raw if isinstance(raw, list) else [part.strip() for part in str(raw).split(",") if part.strip()]
    bad = [str(v) for v in values if str(v) not in options]
    if bad:
        raise _custom_error(name, label, f"{bad} 不在选项 {options} 中", f"{bad} not among {options}")
    return [str(v) for v in values]


def _custom_error(field: str, label: str, zh: str, en: str) -> ValidationFailed:
    return ValidationFailed("member.invalid_custom_value", zh=f"{label}：{zh}。", en=f"{label}: {en}.", field=field)
