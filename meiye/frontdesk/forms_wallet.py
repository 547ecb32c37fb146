"""Forms of the stored-value screens: recharge with a card product, the cooling-off refund, closing a card,
and the HQ settings of card products and recharge rules. They parse input; the wallet services decide."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _lazy

from meiye.core.money import Money
from meiye.frontdesk.forms_sales import MoneyField, new_idempotency_key
from meiye.frontdesk.forms_sales import RechargeForm as SalesRechargeForm
from meiye.frontdesk.labels import choices_of
from meiye.wallet.models import CardProduct, Tender

__all__ = [
    "CardProductForm",
    "RechargeForm",
    "RechargeRefundForm",
    "RechargeRuleForm",
    "WalletCloseForm",
    "new_idempotency_key",
]


def _key_field() -> forms.CharField:
    return forms.CharField(max_length=128, required=False, widget=forms.HiddenInput)


def _require_key(form: forms.Form) -> None:
    if not form.cleaned_data.get("idempotency_key"):
        form.cleaned_data.pop("idempotency_key", None)
        form.add_error(None, _lazy("这张表单已失效，请刷新页面后重试。"))


class RechargeForm(SalesRechargeForm):
    """The recharge form with the card product (its cap and recharge rule) and named / anonymous."""

    product = forms.TypedChoiceField(label=_lazy("储值卡种类"), coerce=int, required=False, empty_value=None)
    named = forms.TypedChoiceField(
        label=_lazy("卡类型"),
        coerce=lambda v: v == "1",
        choices=[("1", _lazy("记名卡")), ("0", _lazy("不记名卡"))],
        initial="1",
        required=False,
        empty_value=True,  # type: ignore[arg-type]  # not sent: a named card
        widget=forms.RadioSelect,
    )

    field_order = ["product", "amount", "bonus", "tender", "named", "external_ref", "idempotency_key"]

    def __init__(self, *args: Any, products: list[CardProduct] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        products = products or []
        field = self.fields["product"]
        assert isinstance(field, forms.TypedChoiceField)
        field.choices = [(p.pk, p.name) for p in products]
        default = next((p for p in products if p.is_default), None)
        if default is not None and not self.is_bound:
            self.initial.setdefault("product", default.pk)
        self.fields["amount"].widget.attrs.update({"data-recharge-amount": "1"})
        self.fields["bonus"].help_text = _lazy("规则赠送自动计算；这里只填手工赠送，需要店长权限")
        self.products = {p.pk: p for p in products}

    def clean_product(self) -> CardProduct | None:
        value = self.cleaned_data.get("product")
        if value in (None, ""):
            return None
        product = self.products.get(int(value))
        if product is None:
            raise forms.ValidationError(_lazy("请选择有效的储值卡种类。"))
        return product


class RechargeRefundForm(forms.Form):
    tender = forms.ChoiceField(label=_lazy("退款方式"), choices=choices_of(Tender), initial=Tender.WECHAT)
    reason = forms.CharField(label=_lazy("原因"), max_length=200)
    idempotency_key = _key_field()

    def clean(self) -> dict[str, Any]:
        super().clean()
        _require_key(self)
        return self.cleaned_data


class WalletCloseForm(RechargeRefundForm):
    pass


class CardProductForm(forms.Form):
    code = forms.CharField(
        label=_lazy("代码"), max_length=32, help_text=_lazy("小写字母、数字、- 或 _；保存后不能修改")
    )
    name = forms.CharField(label=_lazy("名称"), max_length=60)
    named_cap = MoneyField(label=_lazy("记名卡本金上限"), required=False, help_text=_lazy("留空表示不限"))
    anonymous_cap = MoneyField(label=_lazy("不记名卡本金上限"), required=False, help_text=_lazy("留空表示不限"))
    cooling_off_days = forms.IntegerField(label=_lazy("冷静期（天）"), min_value=0, max_value=365, initial=7)
    terms = forms.CharField(label=_lazy("合同补充条款"), required=False, max_length=4000, widget=forms.Textarea)
    is_default = forms.BooleanField(label=_lazy("默认卡种"), required=False)
    active = forms.BooleanField(label=_lazy("启用"), required=False, initial=True)

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            self.fields["code"].disabled = True


class RechargeRuleForm(forms.Form):
    name = forms.CharField(label=_lazy("名称"), required=False, max_length=60, help_text=_lazy("留空则显示为“充X送Y”"))
    threshold = MoneyField(label=_lazy("充值满"))
    bonus = MoneyField(label=_lazy("赠送金额"), required=False)
    instalments = forms.IntegerField(
        label=_lazy("分期月数"), min_value=1, max_value=60, initial=1, help_text=_lazy("1 表示一次到账")
    )
    bonus_points = forms.IntegerField(label=_lazy("赠送积分"), min_value=0, max_value=10_000_000, initial=0)
    coupon_template = forms.TypedChoiceField(label=_lazy("赠送优惠券"), coerce=int, required=False, empty_value=None)
    coupon_count = forms.IntegerField(label=_lazy("赠券张数"), min_value=0, max_value=20, initial=0)
    grant_tier = forms.TypedChoiceField(label=_lazy("授予会员等级"), coerce=int, required=False, empty_value=None)
    grant_months = forms.IntegerField(label=_lazy("等级月数"), min_value=1, max_value=120, initial=12)
    starts_on = forms.DateField(label=_lazy("开始日期"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    ends_on = forms.DateField(label=_lazy("结束日期"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    active = forms.BooleanField(label=_lazy("启用"), required=False, initial=True)

    def __init__(
        self,
        *args: Any,
        templates: list[tuple[int, str]] | None = None,
        tiers: list[tuple[int, str]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        for name, options in (("coupon_template", templates or []), ("grant_tier", tiers or [])):
            field = self.fields[name]
            assert isinstance(field, forms.TypedChoiceField)
            field.choices = [("", _lazy("无")), *options]

    def bonus_fen(self) -> int:
        bonus = self.cleaned_data.get("bonus")
        return bonus.fen if isinstance(bonus, Money) else 0
