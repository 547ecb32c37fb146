from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from meiye.core.fields import EncryptedBinaryField, EncryptedTextField


class Gender(models.TextChoices):
    FEMALE = "F", _("女 Female")
    MALE = "M", _("男 Male")
    UNKNOWN = "U", _("未知 Unknown")


class Channel(models.TextChoices):
    WALK_IN = "walk_in", _("到店 Walk-in")
    REFERRAL = "referral", _("转介绍 Referral")
    MEITUAN = "meituan", _("美团/大众点评 Meituan")
    DOUYIN = "douyin", _("抖音 Douyin")
    XIAOHONGSHU = "xiaohongshu", _("小红书 Xiaohongshu")
    WECHAT = "wechat", _("微信 WeChat")
    EVENT = "event", _("活动 Event")
    OTHER = "other", _("其他 Other")


class MemberStatus(models.TextChoices):
    ACTIVE = "active", _("正常 Active")
    INACTIVE = "inactive", _("停用 Inactive")
    MERGED = "merged", _("已合并 Merged")
    ERASED = "erased", _("已注销 Erased")


class Tag(models.Model):
    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(_("标签 Tag"), max_length=30)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organisation", "name"], name="members_tag_unique_name")]

    def __str__(self) -> str:
        return self.name


class Member(models.Model):
    """A member (会员). Personal data is encrypted; phone and ID number are found through blind indexes.

    ``__str__`` is the member number, never the name, so audit rows hold no personal data.
    """

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    member_no = models.CharField(_("会员号 Member no."), max_length=20)
    name = models.CharField(_("姓名 Name"), max_length=50)
    gender = models.CharField(_("性别 Gender"), max_length=1, choices=Gender.choices, default=Gender.FEMALE)
    phone = EncryptedTextField(_("手机号 Phone"), purpose="members.Member.phone")
    phone_index = models.CharField(max_length=64, null=True, blank=True, editable=False)
    birthday = models.DateField(_("生日 Birthday"), null=True, blank=True)
    email = EncryptedTextField(_("邮箱 Email"), purpose="members.Member.email")
    address = EncryptedTextField(_("地址 Address"), purpose="members.Member.address")
    id_number = EncryptedTextField(_("身份证号 ID number"), purpose="members.Member.id_number")
    id_number_index = models.CharField(max_length=64, null=True, blank=True, editable=False)
    channel = models.CharField(_("来源渠道 Channel"), max_length=20, choices=Channel.choices, default=Channel.WALK_IN)
    referrer = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="referred",
        verbose_name=_("推荐人 Referrer"),
    )
    home_store = models.ForeignKey(
        "org.Store", on_delete=models.PROTECT, related_name="members", verbose_name=_("归属门店 Home store")
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="members", verbose_name=_("标签 Tags"))
    notes = models.TextField(_("备注 Notes"), blank=True)
    # Plain custom fields (non-sensitive) by field key; sensitive ones live encrypted in ``custom_sensitive``.
    custom = models.JSONField(default=dict, blank=True)
    custom_sensitive = EncryptedTextField(purpose="members.Member.custom_sensitive")
    status = models.CharField(max_length=10, choices=MemberStatus.choices, default=MemberStatus.ACTIVE)
    merged_into = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="merged_from")
    # Erasure keeps what the law requires, restricted: readable only through an audited export.
    restricted = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "member_no"], name="members_unique_member_no"),
            models.UniqueConstraint(
                fields=["organisation", "phone_index"],
                condition=models.Q(phone_index__isnull=False),
                name="members_unique_phone",
            ),
        ]
        indexes = [
            models.Index(fields=["organisation", "phone_index"], name="members_phone_idx"),
            models.Index(fields=["organisation", "id_number_index"], name="members_idno_idx"),
            models.Index(fields=["organisation", "name"], name="members_name_idx"),
            models.Index(fields=["home_store", "status"], name="members_store_status_idx"),
            models.Index(fields=["organisation", "birthday"], name="members_birthday_idx"),
        ]

    def __str__(self) -> str:
        return self.member_no


class MemberPhoto(models.Model):
    """The member's photo for recognising her at the desk. Encrypted; shown only to allowed roles."""

    member = models.OneToOneField(Member, on_delete=models.CASCADE, related_name="photo")
    content_type = models.CharField(max_length=50)
    data = EncryptedBinaryField(purpose="members.MemberPhoto.data")
    uploaded_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"photo of {self.member_id}"


class FieldType(models.TextChoices):
    TEXT = "text", _("文本 Text")
    NUMBER = "number", _("数字 Number")
    DATE = "date", _("日期 Date")
    CHOICE = "choice", _("单选 Single choice")
    MULTI = "multi", _("多选 Multiple choice")


class Retention(models.TextChoices):
    ERASE = "erase", _("注销时删除 Erase on request")
    KEEP = "keep", _("依法保留（限制访问） Keep, restricted, as the law requires")


class CustomField(models.Model):
    """A member attribute defined by the organisation, e.g. 肤质 skin type, 过敏史 allergies."""

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    key = models.SlugField(_("字段键 Key"), max_length=40)
    label_zh = models.CharField(_("中文名称 Chinese label"), max_length=40)
    label_en = models.CharField(_("英文名称 English label"), max_length=60, blank=True)
    field_type = models.CharField(_("类型 Type"), max_length=10, choices=FieldType.choices, default=FieldType.TEXT)
    choices = models.JSONField(_("选项 Choices"), default=list, blank=True)
    required = models.BooleanField(_("必填 Required"), default=False)
    # Sensitive: stored encrypted, masked on screen, every reveal audited.
    sensitive = models.BooleanField(_("敏感 Sensitive"), default=False)
    # Health: needs the member's active health-data consent to be filled in or shown.
    health = models.BooleanField(_("健康信息 Health data"), default=False)
    retention = models.CharField(
        _("注销时 On erasure"), max_length=10, choices=Retention.choices, default=Retention.ERASE
    )
    retention_reason = models.CharField(_("保留依据 Legal reason to keep"), max_length=200, blank=True)
    order = models.PositiveSmallIntegerField(default=0)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["order", "id"]
        constraints = [models.UniqueConstraint(fields=["organisation", "key"], name="members_customfield_unique_key")]

    def __str__(self) -> str:
        return self.label_zh

    @property
    def is_protected(self) -> bool:
        return self.sensitive or self.health


class ConsentPurpose(models.TextChoices):
    DATA = "data", _("个人信息处理 Personal data")
    HEALTH = "health", _("健康信息 Health data")
    PHOTO = "photo", _("照片 Photo")
    MARKETING_SMS = "marketing_sms", _("短信营销 SMS marketing")
    MARKETING_WECHAT = "marketing_wechat", _("微信营销 WeChat marketing")
    MARKETING_EMAIL = "marketing_email", _("邮件营销 Email marketing")


class ConsentChannel(models.TextChoices):
    PAPER = "paper", _("纸质 Paper")
    TABLET = "tablet", _("平板签署 Tablet")
    MOBILE = "mobile", _("手机 Mobile")
    API = "api", _("接口 API")


class ConsentRecord(models.Model):
    """One grant or withdrawal. The member's current consent for a purpose is the latest record."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="consents")
    purpose = models.CharField(max_length=20, choices=ConsentPurpose.choices)
    granted = models.BooleanField()
    text_version = models.CharField(max_length=20)
    channel = models.CharField(max_length=10, choices=ConsentChannel.choices)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["member", "purpose", "-at"], name="members_consent_latest_idx")]

    def __str__(self) -> str:
        return f"{self.purpose}={'yes' if self.granted else 'no'}"


class ErasureRecord(models.Model):
    """Why and what was erased or kept (restricted) when a member asked to be forgotten."""

    member = models.OneToOneField(Member, on_delete=models.PROTECT, related_name="erasure")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    reason = models.CharField(max_length=200)
    erased_fields = models.JSONField(default=list)
    kept_fields = models.JSONField(default=list)  # [{"field": ..., "why": ...}]
    at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"erasure of {self.member_id}"


class MemberSequence(models.Model):
    """Next member number per organisation (locked row, so numbers never repeat under concurrency)."""

    organisation = models.OneToOneField("org.Organisation", on_delete=models.PROTECT, related_name="+")
    next_value = models.BigIntegerField(default=1)

    def __str__(self) -> str:
        return f"{self.organisation_id}: {self.next_value}"
