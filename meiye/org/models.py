from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _

from meiye.core.fields import EncryptedTextField
from meiye.org.roles import TWO_FACTOR_PERMS, Perm, Position, perms_for


class Organisation(models.Model):
    """The brand. One per installation; every row of business data belongs to it."""

    name = models.CharField(_("名称 Name"), max_length=100)
    code = models.SlugField(max_length=32, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Store(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="stores")
    code = models.SlugField(_("门店编码 Code"), max_length=32)
    name = models.CharField(_("门店名称 Name"), max_length=100)
    address = models.CharField(_("地址 Address"), max_length=200, blank=True)
    phone = models.CharField(_("电话 Phone"), max_length=32, blank=True)
    time_zone = models.CharField(_("时区 Time zone"), max_length=64, default="Asia/Shanghai")
    # {"mon": ["10:00", "21:00"], ...}; a missing day is closed.
    opening_hours = models.JSONField(_("营业时间 Opening hours"), default=dict, blank=True)
    is_active = models.BooleanField(_("启用 Active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["organisation", "code"], name="org_store_unique_code")]

    def __str__(self) -> str:
        return self.name


class Staff(AbstractUser):
    """A staff account. ``position`` decides permissions; ``stores`` decides what is visible."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="staff", null=True, blank=True
    )
    display_name = models.CharField(_("姓名 Name"), max_length=50, blank=True)
    position = models.CharField(
        _("岗位 Position"), max_length=32, choices=Position.choices, default=Position.RECEPTIONIST
    )
    stores = models.ManyToManyField(Store, related_name="staff", blank=True, verbose_name=_("门店 Stores"))
    totp_secret = EncryptedTextField(purpose="org.Staff.totp_secret")
    totp_enabled = models.BooleanField(default=False)
    totp_last_counter = models.BigIntegerField(default=0)
    # A store manager's approval PIN for discounts and other approvals (hashed like a password).
    approval_pin = models.CharField(max_length=128, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.display_name or self.username

    @property
    def perms(self) -> frozenset[str]:
        if self.is_superuser:
            return perms_for(Position.HQ_ADMIN)
        return perms_for(self.position)

    def can(self, perm: str) -> bool:
        return self.is_active and perm in self.perms

    @property
    def sees_all_stores(self) -> bool:
        return self.can(Perm.ALL_STORES)

    @property
    def needs_two_factor(self) -> bool:
        return bool(self.perms & TWO_FACTOR_PERMS)


class ApiToken(models.Model):
    """A per-staff API token. Only a SHA-256 of the secret is stored; the secret is shown once."""

    staff = models.ForeignKey(Staff, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"


class LoginFailure(models.Model):
    """A failed sign-in, kept to throttle guessing (at most N per account per window)."""

    username = models.CharField(max_length=150, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.username} @ {self.at}"
