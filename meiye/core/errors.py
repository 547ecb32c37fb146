"""One error hierarchy with stable codes and messages in Chinese and English.

The API answers these as application/problem+json (RFC 9457); forms show the message beside the field.
A service raising one of these must have written nothing (it runs inside one transaction).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.utils import translation


class ApplicationError(Exception):
    """A business rule refused the operation. `code` is stable; clients may rely on it."""

    status = 400
    title = "Request refused"

    def __init__(
        self,
        code: str,
        *,
        zh: str,
        en: str,
        field: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {en}")
        self.code = code
        self.message_zh = zh
        self.message_en = en
        self.field = field
        self.extra = extra or {}
        # What the refusal recorded that must stand although the caller's transaction rolls back (a wrong
        # payment password is counted): the interface runs it after the rollback, in a new transaction.
        # It must do nothing when the record survived (no outer transaction rolled it back).
        self.after_rollback: Callable[[], None] | None = None

    @property
    def message(self) -> str:
        """The message in the active language (Chinese unless English is active)."""
        lang = translation.get_language() or "zh-hans"
        return self.message_en if lang.startswith("en") else self.message_zh

    def as_problem(self, instance: str = "") -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://meiye.invalid/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "code": self.code,
            "detail": self.message,
            "detail_zh": self.message_zh,
            "detail_en": self.message_en,
        }
        if self.field:
            body["field"] = self.field
        if instance:
            body["instance"] = instance
        if self.extra:
            body["extra"] = self.extra
        return body


class ValidationFailed(ApplicationError):
    status = 400
    title = "Invalid input"


class NotFound(ApplicationError):
    status = 404
    title = "Not found"


class PermissionDenied(ApplicationError):
    status = 403
    title = "Not allowed"


class Conflict(ApplicationError):
    status = 409
    title = "Conflict"


def required(field: str, label_zh: str, label_en: str) -> ValidationFailed:
    return ValidationFailed(
        "input.required",
        zh=f"{label_zh}：必填。",
        en=f"{label_en}: this field is required.",
        field=field,
    )


def not_found(code: str, what_zh: str, what_en: str) -> NotFound:
    return NotFound(code, zh=f"找不到{what_zh}，或您无权查看。", en=f"{what_en} not found, or not visible to you.")


def forbidden(permission: str) -> PermissionDenied:
    return PermissionDenied(
        "auth.permission_denied",
        zh=f"您的岗位没有此权限（{permission}）。",
        en=f"Your position does not have this permission ({permission}).",
        extra={"permission": permission},
    )
