"""The form to adjust a member's points by hand (``loyalty.services.points_adjust``): money.adjust, a reason."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from meiye.frontdesk.forms_sales import _check_key, _key_field


class PointsAdjustForm(forms.Form):
    points = forms.IntegerField(
        label=_("调整积分"),
        min_value=-(10**12) + 1,
        max_value=10**12 - 1,
        help_text=_("正数增加（新批次），负数扣减（先扣最早到期的批次）"),
    )
    reason = forms.CharField(
        label=_("调整原因"),
        max_length=200,
        help_text=_("必填，记入审计日志"),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    idempotency_key = _key_field()

    def clean(self) -> dict[str, Any]:
        super().clean()
        _check_key(self)
        return self.cleaned_data
