"""Model fields that encrypt transparently. The database only ever holds ciphertext."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import models

from meiye.core import crypto

if TYPE_CHECKING:
    _TextBase = models.TextField[str | None, str | None]
    _BytesBase = models.TextField[bytes | None, bytes | None]
else:
    _TextBase = _BytesBase = models.TextField


class EncryptedTextField(_TextBase):
    """A text value stored as AES-256-GCM ciphertext; empty stays empty (NULL)."""

    description = "Encrypted text"

    def __init__(self, *args: Any, purpose: str = "", **kwargs: Any) -> None:
        self.purpose = purpose
        kwargs.setdefault("blank", True)
        kwargs.setdefault("null", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs["purpose"] = self.purpose
        return name, path, args, kwargs

    def _purpose(self) -> str:
        return self.purpose or f"{self.model._meta.label}.{self.name}"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> str | None:
        if value is None or value == "":
            return None if value is None else ""
        return crypto.decrypt_text(value, purpose=self._purpose())

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return None
        return crypto.encrypt_text(str(value), purpose=self._purpose())


class EncryptedBinaryField(_BytesBase):
    """Bytes (a photo) stored as ciphertext text."""

    description = "Encrypted bytes"

    def __init__(self, *args: Any, purpose: str = "", **kwargs: Any) -> None:
        self.purpose = purpose
        kwargs.setdefault("blank", True)
        kwargs.setdefault("null", True)
        kwargs["editable"] = False
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs["purpose"] = self.purpose
        kwargs.pop("editable", None)
        return name, path, args, kwargs

    def _purpose(self) -> str:
        return self.purpose or f"{self.model._meta.label}.{self.name}"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> bytes | None:
        if not value:
            return None
        return crypto.decrypt_bytes(value, purpose=self._purpose())

    def to_python(self, value: Any) -> Any:
        return value

    def get_prep_value(self, value: Any) -> Any:
        if not value:
            return None
        if isinstance(value, str):
            value = value.encode("utf-8")
        return crypto.encrypt_bytes(bytes(value), purpose=self._purpose())


ENCRYPTED_FIELD_TYPES = (EncryptedTextField, EncryptedBinaryField)
