"""Forms parse what the browser sent. Business rules live in the services; their ``ApplicationError``s are
put beside the field they name by ``add_service_error``."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from meiye.core.errors import ApplicationError
from meiye.frontdesk.labels import choices_of, custom_field_label
from meiye.members.models import (
    Channel,
    ConsentChannel,
    ConsentPurpose,
    CustomField,
    FieldType,
    Gender,
    Retention,
)
from meiye.members.services import MAX_PHOTO_BYTES, MemberInput
from meiye.org.models import Store
from meiye.org.roles import Position

# The version of the consent text the member is shown at the desk.
CONSENT_VERSION: str = getattr(settings, "MEIYE_CONSENT_VERSION", "v1")
CUSTOM_PREFIX = "custom__"
_TAG_SPLIT = re.compile(r"[,，、;；]+")
_LIST_SPLIT = re.compile(r"[\n,，、;；]+")


def custom_input_name(key: str) -> str:
    """The form field name of custom field ``key`` (services call it ``custom.<key>``)."""
    return f"{CUSTOM_PREFIX}{key}"


def add_service_error(form: forms.BaseForm, exc: ApplicationError, aliases: dict[str, str] | None = None) -> None:
    """Show a service's refusal beside the field it names (``custom.<key>`` -> that custom input), in the
    active language; at the top of the form when the field is not on it."""
    name = exc.field or ""
    if name.startswith("custom."):
        name = custom_input_name(name.removeprefix("custom."))
    name = (aliases or {}).get(name, name)
    if name in form.fields and not form.fields[name].disabled:
        form.add_error(name, exc.message)
    else:
        form.add_error(None, exc.message)


def _text(attrs: dict[str, Any] | None = None) -> forms.TextInput:
    return forms.TextInput(attrs=attrs or {})


# --- Sign-in ------------------------------------------------------------------------------------------------


class LoginForm(forms.Form):
    username = forms.CharField(
        label=_("登录名"),
        max_length=150,
        widget=_text({"autocomplete": "username", "autofocus": "autofocus", "autocapitalize": "none"}),
    )
    password = forms.CharField(
        label=_("密码"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


class TotpForm(forms.Form):
    code = forms.CharField(
        label=_("6 位验证码"),
        max_length=10,
        widget=_text(
            {"inputmode": "numeric", "autocomplete": "one-time-code", "autofocus": "autofocus", "pattern": "[0-9 ]*"}
        ),
    )

    def clean_code(self) -> str:
        return "".join(str(self.cleaned_data["code"]).split())


class StoreSwitchForm(forms.Form):
    store = forms.IntegerField()
    next = forms.CharField(required=False)


# --- Members ---------------------------------------------------------------------------------------------


class MemberSearchForm(forms.Form):
    q = forms.CharField(
        label=_("搜索"),
        required=False,
        max_length=50,
        widget=forms.SearchInput(
            attrs={"placeholder": _("手机号、会员号或姓名"), "autocomplete": "off", "autofocus": "autofocus"}
        ),
    )
    tag = forms.ChoiceField(label=_("标签"), required=False)

    def __init__(self, *args: Any, tags: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tag"].choices = [("", _("全部标签")), *((t, t) for t in tags)]  # type: ignore[attr-defined]


def _custom_form_field(cf: CustomField, *, placeholder: str = "") -> forms.Field:
    label = custom_field_label(cf)
    attrs = {"placeholder": placeholder} if placeholder else {}
    field: forms.Field
    if cf.field_type == FieldType.NUMBER:
        field = forms.DecimalField(
            label=label, required=False, widget=forms.NumberInput(attrs={**attrs, "step": "any"})
        )
    elif cf.field_type == FieldType.DATE:
        field = forms.DateField(
            label=label, required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
        )
    elif cf.field_type == FieldType.CHOICE:
        options = [str(o) for o in cf.choices]
        field = forms.ChoiceField(label=label, required=False, choices=[("", "—"), *((o, o) for o in options)])
    elif cf.field_type == FieldType.MULTI:
        options = [str(o) for o in cf.choices]
        field = forms.MultipleChoiceField(
            label=label, required=False, choices=[(o, o) for o in options], widget=forms.CheckboxSelectMultiple
        )
    else:
        field = forms.CharField(label=label, required=False, max_length=500, widget=_text(attrs))
    return field


def _custom_value(value: Any) -> Any:
    """A parsed custom input as the service expects it: text, a number or date as text, a list."""
    if value in (None, "", []):
        return None
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return str(value)


def _tags(raw: str) -> list[str]:
    return [part.strip() for part in _TAG_SPLIT.split(raw or "") if part.strip()]


class _MemberFields(forms.Form):
    name = forms.CharField(label=_("姓名"), max_length=50)
    phone = forms.CharField(label=_("手机号"), max_length=20, widget=_text({"inputmode": "tel", "autocomplete": "off"}))
    gender = forms.ChoiceField(label=_("性别"), choices=choices_of(Gender), initial=Gender.FEMALE)
    birthday = forms.DateField(
        label=_("生日"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    email = forms.CharField(label=_("邮箱"), required=False, max_length=254, widget=_text({"inputmode": "email"}))
    address = forms.CharField(label=_("地址"), required=False, max_length=200)
    id_number = forms.CharField(
        label=_("身份证号"), required=False, max_length=24, widget=_text({"autocomplete": "off"})
    )
    channel = forms.ChoiceField(label=_("来源渠道"), choices=choices_of(Channel), initial=Channel.WALK_IN)
    home_store = forms.TypedChoiceField(label=_("归属门店"), coerce=int)
    tags = forms.CharField(label=_("标签"), required=False, max_length=300, help_text=_("多个标签用逗号分隔"))
    notes = forms.CharField(label=_("备注"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args: Any, stores: list[Store], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["home_store"].choices = [(s.pk, s.name) for s in stores]  # type: ignore[attr-defined]
        self.custom_names: list[str] = []

    def _add_custom(self, cf: CustomField, *, placeholder: str = "", note: str = "") -> None:
        name = custom_input_name(cf.key)
        field = _custom_form_field(cf, placeholder=placeholder)
        field.help_text = note
        self.fields[name] = field
        self.custom_names.append(name)

    @property
    def custom_bound_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.custom_names]

    @property
    def base_bound_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name not in self.custom_names and not name.startswith("consent")]


class MemberCreateForm(_MemberFields):
    consent_data = forms.BooleanField(
        label=_("个人信息处理（必选）"),
        help_text=_("同意为会员服务收集和使用姓名、手机号等个人信息。"),
        error_messages={"required": _("需要会员同意个人信息处理才能建档。")},
    )
    consent_health = forms.BooleanField(
        label=_("健康信息"), required=False, help_text=_("过敏史、肤质等敏感信息，单独同意。")
    )
    consent_photo = forms.BooleanField(label=_("照片"), required=False, help_text=_("拍照存档，便于到店识别。"))
    consent_marketing_sms = forms.BooleanField(label=_("短信营销"), required=False)
    consent_marketing_wechat = forms.BooleanField(label=_("微信营销"), required=False)
    consent_marketing_email = forms.BooleanField(label=_("邮件营销"), required=False)
    consent_channel = forms.ChoiceField(
        label=_("签署方式"),
        choices=[c for c in choices_of(ConsentChannel) if c[0] != ConsentChannel.API],
        initial=ConsentChannel.TABLET,
    )

    CONSENT_FIELDS = (
        ("consent_data", ConsentPurpose.DATA),
        ("consent_health", ConsentPurpose.HEALTH),
        ("consent_photo", ConsentPurpose.PHOTO),
        ("consent_marketing_sms", ConsentPurpose.MARKETING_SMS),
        ("consent_marketing_wechat", ConsentPurpose.MARKETING_WECHAT),
        ("consent_marketing_email", ConsentPurpose.MARKETING_EMAIL),
    )

    def __init__(self, *args: Any, custom_fields: list[CustomField], stores: list[Store], **kwargs: Any) -> None:
        super().__init__(*args, stores=stores, **kwargs)
        for cf in custom_fields:
            self._add_custom(cf, note=str(_("需要会员同意健康信息")) if cf.health else "")

    @property
    def consent_bound_fields(self) -> list[forms.BoundField]:
        return [self[name] for name, _purpose in self.CONSENT_FIELDS]

    def member_input(self) -> MemberInput:
        d = self.cleaned_data
        return MemberInput(
            name=d["name"],
            phone=d["phone"],
            gender=d["gender"],
            birthday=d["birthday"],
            email=d["email"],
            address=d["address"],
            id_number=d["id_number"],
            channel=d["channel"],
            home_store_id=d["home_store"],
            tags=_tags(d["tags"]),
            notes=d["notes"],
            custom={name.removeprefix(CUSTOM_PREFIX): _custom_value(d.get(name)) for name in self.custom_names},
        )

    def consents(self) -> list[tuple[str, bool]]:
        """Every purpose the member was asked about, granted or declined."""
        return [(purpose, bool(self.cleaned_data.get(name))) for name, purpose in self.CONSENT_FIELDS]


class MemberEditForm(_MemberFields):
    """Editing a member. Masked values (phone, ID, e-mail, address, protected custom fields) are never put
    into the form (that would show them without an audited reveal): an empty input leaves them unchanged."""

    MASKED = ("phone", "email", "address", "id_number")

    def __init__(
        self,
        *args: Any,
        custom_fields: list[CustomField],
        stores: list[Store],
        masked: dict[str, str],
        consents: dict[str, bool],
        can_write_protected: bool,
        protected_recorded: set[str],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, stores=stores, **kwargs)
        keep = str(_("已记录，留空则不修改"))
        for name in self.MASKED:
            field = self.fields[name]
            field.required = False
            if masked.get(name):
                field.widget.attrs["placeholder"] = f"{masked[name]}（{keep}）"
        self.skipped_custom: list[tuple[CustomField, str]] = []
        for cf in custom_fields:
            if cf.is_protected and not can_write_protected:
                self.skipped_custom.append((cf, str(_("您的岗位不能修改此字段"))))
            elif cf.health and not consents.get(ConsentPurpose.HEALTH, False):
                self.skipped_custom.append((cf, str(_("会员未同意健康信息，不能填写"))))
            elif cf.is_protected:
                self._add_custom(cf, placeholder=keep if cf.key in protected_recorded else "")
            else:
                self._add_custom(cf)
        self.protected_names = {custom_input_name(cf.key) for cf in custom_fields if cf.is_protected}

    def member_input(self) -> MemberInput:
        d = self.cleaned_data
        custom: dict[str, Any] = {}
        for name in self.custom_names:
            value = _custom_value(d.get(name))
            if name in self.protected_names and value is None:
                continue  # empty protected input: keep what is recorded
            custom[name.removeprefix(CUSTOM_PREFIX)] = value
        return MemberInput(
            name=d["name"],
            phone=d["phone"] or None,
            gender=d["gender"],
            birthday=d["birthday"] or "",
            email=d["email"] or None,
            address=d["address"] or None,
            id_number=d["id_number"] or None,
            channel=d["channel"],
            home_store_id=d["home_store"],
            tags=_tags(d["tags"]),
            notes=d["notes"],
            custom=custom,
        )


class ConsentForm(forms.Form):
    purpose = forms.ChoiceField(label=_("同意事项"), choices=choices_of(ConsentPurpose))
    granted = forms.TypedChoiceField(
        label=_("同意"), choices=[("1", _("同意")), ("0", _("撤回"))], coerce=lambda value: value == "1"
    )
    channel = forms.ChoiceField(
        label=_("签署方式"),
        choices=[c for c in choices_of(ConsentChannel) if c[0] != ConsentChannel.API],
        initial=ConsentChannel.TABLET,
    )


_SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
)


def sniff_image_type(head: bytes) -> str | None:
    """The image type from the file's first bytes (the browser's claim is not trusted)."""
    for signature, content_type in _SIGNATURES:
        if head.startswith(signature):
            return content_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


class PhotoForm(forms.Form):
    photo = forms.FileField(
        label=_("照片"),
        help_text=_("JPEG、PNG 或 WebP，不超过 2 MB"),
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp", "capture": "user"}),
    )

    def clean_photo(self) -> tuple[str, bytes]:
        upload = self.cleaned_data["photo"]
        if upload.size > MAX_PHOTO_BYTES:
            raise forms.ValidationError(_("照片不能超过 2 MB。"))
        data = upload.read()
        content_type = sniff_image_type(data[:16])
        if content_type is None:
            raise forms.ValidationError(_("只能上传 JPEG、PNG 或 WebP 图片。"))
        return content_type, data


class EraseForm(forms.Form):
    reason = forms.CharField(
        label=_("注销原因"),
        max_length=200,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": _("如：会员本人书面申请注销")}),
    )
    confirm = forms.BooleanField(
        label=_("我确认：注销后个人信息将被删除，无法恢复。"),
        error_messages={"required": _("请勾选确认。")},
    )


class MergeForm(forms.Form):
    survivor = forms.IntegerField()
    merged = forms.IntegerField()


# --- Settings ---------------------------------------------------------------------------------------------------


def _list(raw: str) -> list[str]:
    return [part.strip() for part in _LIST_SPLIT.split(raw or "") if part.strip()]


class CustomFieldForm(forms.Form):
    key = forms.CharField(
        label=_("字段键"), max_length=40, help_text=_("小写英文字母开头，如 skin_type；保存后不能修改")
    )
    label_zh = forms.CharField(label=_("中文名称"), max_length=40, required=False)
    label_en = forms.CharField(label=_("英文名称"), max_length=60, required=False)
    field_type = forms.ChoiceField(label=_("类型"), choices=choices_of(FieldType), initial=FieldType.TEXT)
    choices = forms.CharField(
        label=_("选项"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("单选或多选字段：每行一个选项"),
    )
    required = forms.BooleanField(label=_("必填"), required=False)
    sensitive = forms.BooleanField(label=_("敏感（加密、脱敏显示、查看留痕）"), required=False)
    health = forms.BooleanField(label=_("健康信息（需要会员单独同意）"), required=False)
    retention = forms.ChoiceField(label=_("注销时"), choices=choices_of(Retention), initial=Retention.ERASE)
    retention_reason = forms.CharField(label=_("保留依据"), max_length=200, required=False)
    order = forms.IntegerField(label=_("排序"), min_value=0, max_value=32767, initial=0)
    is_active = forms.BooleanField(label=_("启用"), required=False, initial=True)

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            self.fields["key"].disabled = True

    def service_kwargs(self) -> dict[str, Any]:
        d = dict(self.cleaned_data)
        d["choices"] = _list(d["choices"])
        return d


class StaffCreateForm(forms.Form):
    username = forms.CharField(
        label=_("登录名"), max_length=150, widget=_text({"autocomplete": "off", "autocapitalize": "none"})
    )
    display_name = forms.CharField(label=_("姓名"), max_length=50, required=False)
    position = forms.ChoiceField(label=_("岗位"), choices=choices_of(Position), initial=Position.RECEPTIONIST)
    stores = forms.ModelMultipleChoiceField(
        label=_("门店"), queryset=Store.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )
    password = forms.CharField(
        label=_("初始密码"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("至少 8 位，不要太简单"),
    )

    def __init__(self, *args: Any, stores: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["stores"].queryset = stores  # type: ignore[attr-defined]


class StaffEditForm(forms.Form):
    display_name = forms.CharField(label=_("姓名"), max_length=50, required=False)
    position = forms.ChoiceField(label=_("岗位"), choices=choices_of(Position))
    stores = forms.ModelMultipleChoiceField(
        label=_("门店"), queryset=Store.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )
    is_active = forms.BooleanField(label=_("在职（可登录）"), required=False)

    def __init__(self, *args: Any, stores: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["stores"].queryset = stores  # type: ignore[attr-defined]


DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS_RE = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun)\s+([01]\d|2[0-3]):([0-5]\d)\s*-\s*([01]\d|2[0-3]):([0-5]\d)$")


def opening_hours_text(hours: dict[str, list[str]]) -> str:
    return "\n".join(f"{day} {hours[day][0]}-{hours[day][1]}" for day in DAYS if day in hours)


class StoreForm(forms.Form):
    code = forms.CharField(label=_("门店编码"), max_length=32, help_text=_("如 s1；保存后不能修改"))
    name = forms.CharField(label=_("门店名称"), max_length=100, required=False)
    address = forms.CharField(label=_("地址"), max_length=200, required=False)
    phone = forms.CharField(label=_("电话"), max_length=32, required=False)
    time_zone = forms.CharField(label=_("时区"), max_length=64, initial="Asia/Shanghai")
    opening_hours = forms.CharField(
        label=_("营业时间"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "mon 10:00-21:00\ntue 10:00-21:00"}),
        help_text=_("每行一天，如 mon 10:00-21:00；未列出的日子休息"),
    )
    is_active = forms.BooleanField(label=_("启用"), required=False, initial=True)

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            self.fields["code"].disabled = True
        else:
            del self.fields["is_active"]

    def clean_opening_hours(self) -> dict[str, list[str]]:
        hours: dict[str, list[str]] = {}
        for line in (self.cleaned_data.get("opening_hours") or "").splitlines():
            line = line.strip().lower()
            if not line:
                continue
            match = _HOURS_RE.match(line)
            if match is None:
                raise forms.ValidationError(
                    _("无法识别“%(line)s”：格式为 mon 10:00-21:00（mon tue wed thu fri sat sun）。"),
                    params={"line": line},
                )
            day, h1, m1, h2, m2 = match.groups()
            hours[day] = [f"{h1}:{m1}", f"{h2}:{m2}"]
        return hours


class AuditFilterForm(forms.Form):
    action = forms.CharField(
        label=_("操作"),
        required=False,
        max_length=64,
        widget=_text({"placeholder": _("如 member.reveal，或 member. 表示全部会员操作")}),
    )
    staff = forms.TypedChoiceField(label=_("员工"), required=False, coerce=int, empty_value=None)
    object_type = forms.CharField(
        label=_("对象类型"), required=False, max_length=64, widget=_text({"placeholder": "members.Member"})
    )
    object_id = forms.CharField(label=_("对象编号"), required=False, max_length=64)
    date_from = forms.DateField(
        label=_("开始日期"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    date_to = forms.DateField(
        label=_("结束日期"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )

    def __init__(self, *args: Any, staff_choices: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["staff"].choices = [("", _("全部员工")), *staff_choices]  # type: ignore[attr-defined]

    def filters(self) -> dict[str, Any]:
        d = self.cleaned_data
        return {
            "action": d.get("action") or None,
            "staff_id": d.get("staff"),
            "object_type": d.get("object_type") or None,
            "object_id": d.get("object_id") or None,
            "date_from": d.get("date_from"),
            "date_to": d.get("date_to"),
        }
