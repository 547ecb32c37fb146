"""Forms of the checkout, bills, stored-value and catalogue pages.

They parse what the browser sent into the services' inputs (``Money``, ``TenderInput``, line quantities).
Business rules stay in the services; their refusals go beside the field they name (``add_sales_error``).
"""

from __future__ import annotations

import re
import uuid
from datetime import date
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from meiye.catalog.models import Category, CommissionCategory, EarningCategory, ItemKind, ProductType
from meiye.core.errors import ApplicationError
from meiye.core.money import Money
from meiye.frontdesk.forms import add_service_error
from meiye.frontdesk.labels import choices_of
from meiye.sales.models import BillLine, BillStatus, RefundDestination, TenderKind
from meiye.sales.services import TenderInput
from meiye.wallet.models import Tender as RechargeTender

_DATE = {"type": "date"}
_MONEY_ATTRS = {"inputmode": "decimal", "autocomplete": "off", "placeholder": "0.00", "class": "money"}
_INDEXED = re.compile(r"^tenders\[(\d+)\]\s*[:：]\s*")


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


def _key_field() -> forms.CharField:
    """The hidden idempotency key of a form that moves money (checked in ``_check_key``)."""
    return forms.CharField(max_length=128, required=False, widget=forms.HiddenInput)


def _check_key(form: forms.Form) -> None:
    """A form without its key (a page from before, or a hand-made request) is refused at the top of the form,
    where the cashier sees it, instead of beside the hidden field."""
    if not form.cleaned_data.get("idempotency_key"):
        form.cleaned_data.pop("idempotency_key", None)
        form.add_error(None, _("这张表单已失效，请刷新页面后重试。"))


class MoneyField(forms.Field):
    """An amount in 元 ("12.30", "¥1,234.50") parsed into ``Money``; empty is None."""

    default_error_messages = {"invalid": _("金额格式不正确，应为最多两位小数的元，如 12.30。")}
    max_length = 20

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.TextInput(attrs=dict(_MONEY_ATTRS)))
        super().__init__(**kwargs)

    def widget_attrs(self, widget: forms.Widget) -> dict[str, Any]:
        return {**super().widget_attrs(widget), "maxlength": str(self.max_length)}

    def to_python(self, value: Any) -> Money | None:
        text = "" if value in self.empty_values else str(value).strip()
        if not text:
            return None
        if len(text) > self.max_length:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        try:
            return Money.parse(text)
        except ApplicationError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None

    def prepare_value(self, value: Any) -> Any:
        return value.as_decimal_string() if isinstance(value, Money) else value


def add_sales_error(form: forms.BaseForm, exc: ApplicationError, aliases: dict[str, str] | None = None) -> None:
    """``add_service_error``, plus: a tender error naming ``tenders[i]`` goes beside the i-th tender the
    form sent (without the ``tenders[i]：`` prefix), and an idempotency-key refusal at the top of the form."""
    tender_fields: list[str] = getattr(form, "tender_fields", [])
    if exc.field == "tenders" and tender_fields:
        match = _INDEXED.match(exc.message)
        if match and int(match.group(1)) < len(tender_fields):
            form.add_error(tender_fields[int(match.group(1))], exc.message[match.end() :])
            return
    add_service_error(form, exc, aliases={"idempotency_key": "__all__", **(aliases or {})})


# --- Checkout --------------------------------------------------------------------------------------------------


class MemberLookupForm(forms.Form):
    q = forms.CharField(
        label=_("手机号 / 会员号"),
        required=False,
        max_length=50,
        widget=forms.SearchInput(
            attrs={
                "placeholder": _("手机号、会员号或姓名，回车开单"),
                "autocomplete": "off",
                "autofocus": "autofocus",
                "inputmode": "search",
            }
        ),
    )


class OpenBillForm(forms.Form):
    member = forms.IntegerField(required=False, widget=forms.HiddenInput)
    q = forms.CharField(required=False, max_length=50)


class ItemSearchForm(forms.Form):
    q = forms.CharField(
        label=_("搜索项目或产品"),
        required=False,
        max_length=50,
        widget=forms.SearchInput(attrs={"placeholder": _("名称、编码或条码"), "autocomplete": "off"}),
    )


class AddLineForm(forms.Form):
    item = forms.IntegerField(required=False, widget=forms.HiddenInput)
    barcode = forms.CharField(
        label=_("扫码"),
        required=False,
        max_length=40,
        widget=forms.TextInput(
            attrs={"placeholder": _("扫描或输入条码，回车添加"), "autocomplete": "off", "inputmode": "numeric"}
        ),
    )
    quantity = forms.IntegerField(required=False, min_value=1, max_value=9999, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if not data.get("item") and not (data.get("barcode") or "").strip():
            self.add_error("barcode", _("请扫描条码或从搜索结果中选择。"))
        return data


def _staff_choices(staff: list[Any], empty: str) -> list[tuple[Any, Any]]:
    return [("", empty), *((s.pk, str(s)) for s in staff)]


class LineEditForm(forms.Form):
    """Quantity, who performed and who sold the line, and a manual unit price (S-20)."""

    quantity = forms.IntegerField(
        label=_("数量"), min_value=1, max_value=9999, widget=forms.NumberInput(attrs={"inputmode": "numeric"})
    )
    performed_by = forms.TypedChoiceField(label=_("服务人"), required=False, coerce=int, empty_value=None)
    sold_by = forms.TypedChoiceField(label=_("销售人"), required=False, coerce=int, empty_value=None)
    unit_price = MoneyField(label=_("手工单价"), required=False, help_text=_("留空则按会员价"))
    approver = forms.TypedChoiceField(label=_("审批店长"), required=False, coerce=int, empty_value=None)
    approval_pin = forms.CharField(
        label=_("审批密码"),
        required=False,
        max_length=8,
        strip=False,
        widget=forms.PasswordInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )

    def __init__(self, *args: Any, staff: list[Any], approvers: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["performed_by"].choices = _staff_choices(staff, str(_("—")))  # type: ignore[attr-defined]
        self.fields["sold_by"].choices = _staff_choices(staff, str(_("—")))  # type: ignore[attr-defined]
        self.fields["approver"].choices = _staff_choices(approvers, str(_("选择店长")))  # type: ignore[attr-defined]

    @classmethod
    def initial_for(cls, line: BillLine) -> dict[str, Any]:
        manual = any(step.get("step") == "manual_adjustment" for step in line.price_steps)
        return {
            "quantity": line.quantity,
            "performed_by": line.performed_by_id,
            "sold_by": line.sold_by_id,
            "unit_price": Money(line.unit_price_fen) if manual else None,
            "approver": line.approved_by_id,
        }


def _ref_input(placeholder: Any) -> forms.TextInput:
    return forms.TextInput(attrs={"autocomplete": "off", "placeholder": placeholder, "class": "ref"})


class TenderForm(forms.Form):
    """How the bill is paid: any mix of stored value, points, card, WeChat, Alipay and cash."""

    idempotency_key = _key_field()
    stored_value_amount = MoneyField(label=_("储值"), required=False)
    points = forms.IntegerField(
        label=_("积分抵扣"),
        required=False,
        min_value=1,
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "placeholder": _("积分数"), "autocomplete": "off"}),
    )
    card_amount = MoneyField(label=_("银行卡"), required=False)
    card_ref = forms.CharField(label=_("参考号"), required=False, max_length=64, widget=_ref_input(_("银行卡参考号")))
    wechat_amount = MoneyField(label=_("微信"), required=False)
    wechat_ref = forms.CharField(label=_("交易号"), required=False, max_length=64, widget=_ref_input(_("微信交易号")))
    alipay_amount = MoneyField(label=_("支付宝"), required=False)
    alipay_ref = forms.CharField(label=_("交易号"), required=False, max_length=64, widget=_ref_input(_("支付宝交易号")))
    payment_password = forms.CharField(
        label=_("支付密码"),
        required=False,
        max_length=6,
        widget=forms.PasswordInput(
            attrs={
                "inputmode": "numeric",
                "autocomplete": "off",
                "maxlength": "6",
                "pattern": "[0-9]*",
                "placeholder": _("请会员输入 6 位支付密码"),
            }
        ),
    )
    payment_code = forms.CharField(
        label=_("验证码"),
        required=False,
        max_length=8,
        # Never sent back on a refused form: a code is used once, a second submit of it is a wrong try.
        widget=forms.PasswordInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "placeholder": _("或输入短信验证码")}
        ),
    )
    package_item = forms.TypedChoiceField(label=_("次卡"), required=False, coerce=int, empty_value=None, choices=[])
    package_sessions = forms.IntegerField(
        label=_("次数"),
        required=False,
        min_value=1,
        max_value=99,
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "placeholder": "1", "autocomplete": "off"}),
    )
    gift_card_amount = MoneyField(label=_("礼品卡"), required=False)
    gift_card_code = forms.CharField(
        label=_("卡号"), required=False, max_length=40, widget=_ref_input(_("礼品卡 16 位卡号"))
    )
    cash_amount = MoneyField(label=_("现金"), required=False)
    cash_received = MoneyField(
        label=_("实收"),
        required=False,
        widget=forms.TextInput(attrs={**_MONEY_ATTRS, "class": "money received", "placeholder": _("顾客付的现金")}),
    )
    # Where a refusal about the tenders as a whole (e.g. the sum does not match) is shown.
    tenders = forms.CharField(required=False, widget=forms.HiddenInput)

    # (kind, amount field, reference field): the order in which tenders are sent to the service.
    ROWS = (
        (TenderKind.STORED_VALUE, "stored_value_amount", ""),
        (TenderKind.POINTS, "points", ""),
        (TenderKind.PACKAGE, "package_item", "package_sessions"),
        (TenderKind.GIFT_CARD, "gift_card_amount", "gift_card_code"),
        (TenderKind.CARD, "card_amount", "card_ref"),
        (TenderKind.WECHAT, "wechat_amount", "wechat_ref"),
        (TenderKind.ALIPAY, "alipay_amount", "alipay_ref"),
        (TenderKind.CASH, "cash_amount", ""),
    )

    def __init__(self, *args: Any, package_choices: list[tuple[int, str]] | None = None, **kwargs: Any) -> None:
        """``package_choices``: the member's package items that may pay today, as (id, label)."""
        super().__init__(*args, **kwargs)
        field = self.fields["package_item"]
        assert isinstance(field, forms.TypedChoiceField)
        field.choices = [("", _("不用次卡")), *(package_choices or [])]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        _check_key(self)
        if data.get("cash_received") is not None and data.get("cash_amount") is None:
            self.add_error("cash_amount", _("填写实收现金时，请同时填写现金应收金额。"))
        if data.get("package_sessions") and data.get("package_item") is None:
            self.add_error("package_item", _("请选择用哪张次卡。"))
        if data.get("gift_card_amount") is not None and not (data.get("gift_card_code") or "").strip():
            self.add_error("gift_card_code", _("请填写礼品卡卡号。"))
        for kind, amount_field, ref_field in self.ROWS:
            if kind in (TenderKind.PACKAGE, TenderKind.GIFT_CARD):
                continue
            if ref_field and data.get(ref_field) and data.get(amount_field) is None:
                self.add_error(amount_field, _("请填写金额。"))
        return data

    def tender_inputs(self) -> list[TenderInput]:
        """The tenders to send, in ``ROWS`` order; ``tender_fields`` remembers which field each came from."""
        d = self.cleaned_data
        tenders: list[TenderInput] = []
        self.tender_fields: list[str] = []
        for kind, amount_field, ref_field in self.ROWS:
            value = d.get(amount_field)
            if value is None:
                continue
            if kind == TenderKind.POINTS:
                tenders.append(TenderInput(kind=kind, points=value))
            elif kind == TenderKind.STORED_VALUE:
                tenders.append(
                    TenderInput(
                        kind=kind,
                        amount=value,
                        payment_password=d.get("payment_password") or "",
                        payment_code=(d.get("payment_code") or "").strip(),
                    )
                )
            elif kind == TenderKind.PACKAGE:
                tenders.append(TenderInput(kind=kind, package_item_id=value, sessions=d.get("package_sessions") or 1))
            elif kind == TenderKind.GIFT_CARD:
                tenders.append(
                    TenderInput(kind=kind, amount=value, gift_card_code=(d.get("gift_card_code") or "").strip())
                )
            else:
                tenders.append(
                    TenderInput(
                        kind=kind,
                        amount=value,
                        external_ref=(d.get(ref_field) or "") if ref_field else "",
                        received=d.get("cash_received") if kind == TenderKind.CASH else None,
                    )
                )
            self.tender_fields.append(amount_field)
        return tenders


class VoidForm(forms.Form):
    reason = forms.CharField(label=_("作废原因"), required=False, max_length=200)


# --- Bills and refunds ---------------------------------------------------------------------------------------------


class BillFilterForm(forms.Form):
    date_from = forms.DateField(label=_("从"), required=False, widget=forms.DateInput(attrs=_DATE, format="%Y-%m-%d"))
    date_to = forms.DateField(label=_("到"), required=False, widget=forms.DateInput(attrs=_DATE, format="%Y-%m-%d"))
    status = forms.ChoiceField(label=_("状态"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = [("", _("全部状态")), *choices_of(BillStatus)]  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", _("结束日期不能早于开始日期。"))
        return data


class RefundForm(forms.Form):
    """A refund of the whole bill or of some lines (a quantity per line), to the original tenders or to
    stored value, with a reason."""

    FULL, LINES = "full", "lines"

    mode = forms.ChoiceField(
        label=_("退款范围"),
        choices=[(FULL, _("整单退款")), (LINES, _("按项目退款"))],
        initial=FULL,
        widget=forms.RadioSelect,
    )
    destination = forms.ChoiceField(
        label=_("退款去向"),
        choices=choices_of(RefundDestination),
        initial=RefundDestination.ORIGINAL,
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(
        label=_("退款原因"), required=False, max_length=200, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )
    idempotency_key = _key_field()
    # Where refusals about the lines are shown (beside the table of lines).
    lines = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, bill_lines: list[BillLine], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bill_lines = bill_lines
        for line in bill_lines:
            self.fields[self.qty_name(line)] = forms.IntegerField(
                label=line.name,
                required=False,
                min_value=0,
                widget=forms.NumberInput(attrs={"inputmode": "numeric", "class": "qty", "placeholder": "0"}),
            )

    def clean(self) -> dict[str, Any]:
        super().clean()
        _check_key(self)
        return self.cleaned_data

    @staticmethod
    def qty_name(line: BillLine) -> str:
        return f"qty_{line.pk}"

    @property
    def line_rows(self) -> list[tuple[BillLine, forms.BoundField]]:
        return [(line, self[self.qty_name(line)]) for line in self.bill_lines]

    def refund_lines(self) -> list[tuple[int, int]] | None:
        """None for the whole bill, else [(line id, quantity)] of the lines with a quantity."""
        if self.cleaned_data["mode"] == self.FULL:
            return None
        return [
            (line.pk, qty) for line in self.bill_lines if (qty := self.cleaned_data.get(self.qty_name(line)) or 0) > 0
        ]


class DayForm(forms.Form):
    day = forms.DateField(label=_("日期"), required=False, widget=forms.DateInput(attrs=_DATE, format="%Y-%m-%d"))

    def day_or(self, default: date) -> date:
        if self.is_valid() and self.cleaned_data.get("day"):
            day: date = self.cleaned_data["day"]
            return day
        return default


# --- Stored value --------------------------------------------------------------------------------------------------


class RechargeForm(forms.Form):
    amount = MoneyField(label=_("充值金额"))
    bonus = MoneyField(label=_("赠送金额"), required=False, help_text=_("按门店充值活动填写，没有则留空"))
    tender = forms.ChoiceField(
        label=_("支付方式"), choices=choices_of(RechargeTender), initial=RechargeTender.WECHAT, widget=forms.RadioSelect
    )
    external_ref = forms.CharField(
        label=_("支付流水号"),
        required=False,
        max_length=64,
        help_text=_("银行卡、微信、支付宝的交易参考号"),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    idempotency_key = _key_field()

    def clean(self) -> dict[str, Any]:
        super().clean()
        _check_key(self)
        return self.cleaned_data


# --- Catalogue --------------------------------------------------------------------------------------------------------


class CategoryForm(forms.Form):
    code = forms.CharField(label=_("编码"), max_length=32, help_text=_("小写字母、数字、- 或 _；保存后不能修改"))
    name = forms.CharField(label=_("名称"), max_length=50)
    kind = forms.ChoiceField(label=_("类型"), choices=choices_of(ItemKind), initial=ItemKind.SERVICE)
    earning_category = forms.ChoiceField(label=_("积分类别"), choices=choices_of(EarningCategory))
    commission_category = forms.ChoiceField(label=_("提成类别"), choices=choices_of(CommissionCategory))
    order = forms.IntegerField(label=_("排序"), min_value=0, max_value=32767, initial=0)
    is_active = forms.BooleanField(label=_("启用"), required=False, initial=True)

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            self.fields["code"].disabled = True


class ItemForm(forms.Form):
    code = forms.CharField(label=_("编码"), max_length=40, help_text=_("小写字母、数字、- 或 _；保存后不能修改"))
    name = forms.CharField(label=_("名称"), max_length=80)
    category = forms.TypedChoiceField(label=_("分类"), coerce=int)
    price = MoneyField(label=_("标价（元）"))
    duration_minutes = forms.IntegerField(
        label=_("时长（分钟）"), required=False, min_value=1, max_value=1440, help_text=_("服务必填")
    )
    sku = forms.CharField(label=_("SKU"), required=False, max_length=40)
    barcode = forms.CharField(label=_("条码"), required=False, max_length=40)
    unit = forms.CharField(label=_("单位"), required=False, max_length=10)
    product_type = forms.ChoiceField(label=_("产品类型"), required=False)
    is_active = forms.BooleanField(label=_("在售"), required=False, initial=True)

    def __init__(self, *args: Any, categories: list[Category], editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.categories = {c.pk: c for c in categories}
        self.fields["category"].choices = [  # type: ignore[attr-defined]
            (c.pk, f"{c.name}{'' if c.is_active else ' ×'}") for c in categories
        ]
        self.fields["product_type"].choices = [("", "—"), *choices_of(ProductType)]  # type: ignore[attr-defined]
        if editing:
            self.fields["code"].disabled = True

    def clean_category(self) -> Category:
        category = self.categories.get(self.cleaned_data["category"])
        if category is None:
            raise forms.ValidationError(_("请选择分类。"))
        return category


class ItemFilterForm(forms.Form):
    q = forms.CharField(
        label=_("搜索"),
        required=False,
        max_length=50,
        widget=forms.SearchInput(attrs={"placeholder": _("名称、编码或条码"), "autocomplete": "off"}),
    )
    kind = forms.ChoiceField(label=_("类型"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [("", _("全部类型")), *choices_of(ItemKind)]  # type: ignore[attr-defined]


class StorePriceForm(forms.Form):
    item = forms.IntegerField(widget=forms.HiddenInput)
    price = MoneyField(label=_("门店价"), required=False, help_text=_("留空则使用标价"))
