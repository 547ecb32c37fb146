"""Front-desk pages: prepaid contracts (预付式消费合同) and the prepaid liability report (预付卡负债表).

- A contract: printable A4 HTML (``contract_detail``), the signing pad (``contract_sign``, ``sales.checkout``:
  the member signs on the screen; ``signature.js`` posts the drawing as a PNG data URL in a normal form), the
  PDF (``contract_pdf``); a member's contracts (``member_contracts``). Reading needs ``member.view``.
- The liability report per store and date (``liability_report``) and its CSV (``liability_csv``),
  ``prepaid.report``.

Views parse and call one service or selector; refusals show beside the field they name.
"""

from __future__ import annotations

import csv
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, URLResolver, path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from meiye.cards.liability import liability_csv_rows, prepaid_liability
from meiye.contracts.models import ContractKind, ContractStatus
from meiye.contracts.pdf import contract_pdf
from meiye.contracts.selectors import contract_get, member_contracts, text
from meiye.contracts.services import contract_sign, signature_png_from_text
from meiye.core.errors import ApplicationError
from meiye.frontdesk.views.common import get_actor, staff_view
from meiye.members.selectors import member_get
from meiye.org.roles import Perm
from meiye.org.selectors import stores_visible

_lazy = gettext_lazy


# --- Forms --------------------------------------------------------------------------------------------------------


class SignForm(forms.Form):
    signature = forms.CharField(
        label=_lazy("会员签名"),
        required=False,
        max_length=600_000,  # a 300 KB PNG as base64 in a data URL
        widget=forms.HiddenInput(attrs={"data-signature-input": ""}),
    )
    agree = forms.BooleanField(label=_lazy("会员已阅读并同意合同条款"), required=True)


class LiabilityForm(forms.Form):
    store = forms.TypedChoiceField(label=_lazy("门店"), required=False, coerce=int, empty_value=None)
    date = forms.DateField(
        label=_lazy("截止日期"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_lazy("统计到该日营业结束（门店所在时区）"),
    )

    def __init__(self, *args: Any, stores: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["store"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", _("全部门店")), *[(s.pk, s.name) for s in stores]]


# --- Contracts ----------------------------------------------------------------------------------------------------


def _labels(contract: Any) -> dict[str, str]:
    return {
        "kind": str(ContractKind(contract.kind).label) if contract.kind in ContractKind.values else contract.kind,
        "status": str(ContractStatus(contract.status).label)
        if contract.status in ContractStatus.values
        else contract.status,
    }


def _body(contract: Any) -> dict[str, Any]:
    """The frozen text, both languages side by side, for the template."""
    body = contract.body or {}

    def both(value: Any) -> dict[str, str]:
        zh, en = text(value, "zh-hans"), text(value, "en")
        return {"zh": zh, "en": en if en != zh else ""}

    return {
        "title": both(body.get("title")),
        "items": [
            {"name": item.get("name", ""), "quantity": item.get("quantity", 1), "detail": both(item.get("detail"))}
            for item in body.get("items") or []
        ],
        "price": body.get("price", ""),
        "validity": both(body.get("validity")),
        "refund_method": both(body.get("refund_method")),
        "liability": both(body.get("liability")),
        "terms": both(body.get("terms")) if body.get("terms") else None,
        "seller": body.get("seller") or {},
        "buyer": body.get("buyer") or {},
    }


@require_GET
@staff_view(Perm.MEMBER_VIEW)
def contract_detail(request: HttpRequest, pk: int) -> HttpResponse:
    actor = get_actor(request)
    contract = contract_get(actor, pk)
    response = render(
        request,
        "frontdesk/contracts/detail.html",
        {
            "contract": contract,
            "body": _body(contract),
            "labels": _labels(contract),
            "can_sign": actor.can(Perm.CHECKOUT) and not contract.signed,
        },
    )
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@staff_view(Perm.MEMBER_VIEW)
def contract_signature(request: HttpRequest, pk: int) -> HttpResponse:
    """The signature image of a signed contract (for the printable page; never cached)."""
    contract = contract_get(get_actor(request), pk)
    if not contract.signed or not contract.signature:
        return HttpResponse(status=404)
    response = HttpResponse(bytes(contract.signature), content_type="image/png")
    response["Cache-Control"] = "private, no-store"
    return response


@require_http_methods(["GET", "POST"])
@staff_view(Perm.CHECKOUT)
def contract_sign_view(request: HttpRequest, pk: int) -> HttpResponse:
    actor = get_actor(request)
    contract = contract_get(actor, pk)
    if contract.signed:
        messages.info(request, _("合同已签署。"))
        return redirect("frontdesk:contract_detail", pk=contract.pk)
    form = SignForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            png = signature_png_from_text(form.cleaned_data["signature"])
            contract_sign(actor=actor, contract=contract, signature_png=png)
        except ApplicationError as exc:
            form.add_error("signature" if exc.field in ("signature", "signature_png") else None, exc.message)
        else:
            messages.success(request, _("会员已签署合同。"))
            return redirect("frontdesk:contract_detail", pk=contract.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "frontdesk/contracts/sign.html",
        {"contract": contract, "body": _body(contract), "labels": _labels(contract), "form": form},
        status=status,
    )


@require_GET
@staff_view(Perm.MEMBER_VIEW)
def contract_pdf_view(request: HttpRequest, pk: int) -> HttpResponse:
    contract = contract_get(get_actor(request), pk)
    response = HttpResponse(contract_pdf(contract), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{contract.number}.pdf"'
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@staff_view(Perm.MEMBER_VIEW)
def member_contracts_view(request: HttpRequest, pk: int) -> HttpResponse:
    actor = get_actor(request)
    member = member_get(actor, pk)
    rows = [
        {"contract": c, "labels": _labels(c), "title": text((c.body or {}).get("title"), "zh-hans")}
        for c in member_contracts(actor, member)[:200]
    ]
    return render(request, "frontdesk/contracts/member_list.html", {"member": member, "rows": rows})


# --- The liability report -----------------------------------------------------------------------------------------


def _liability(request: HttpRequest) -> tuple[LiabilityForm, Any]:
    actor = get_actor(request)
    stores = list(stores_visible(actor).order_by("id"))
    form = LiabilityForm(request.GET or None, stores=stores)
    report = None
    if not request.GET or form.is_valid():
        data = form.cleaned_data if request.GET else {}
        try:
            report = prepaid_liability(actor, on=data.get("date"), store=data.get("store"))
        except ApplicationError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
    return form, report


@require_GET
@staff_view(Perm.PREPAID_REPORT)
def liability_report(request: HttpRequest) -> HttpResponse:
    form, report = _liability(request)
    return render(
        request,
        "frontdesk/liability/report.html",
        {"form": form, "report": report, "query": request.GET.urlencode()},
        status=200 if report is not None else 400,
    )


@require_GET
@staff_view(Perm.PREPAID_REPORT)
def liability_csv(request: HttpRequest) -> HttpResponse:
    form, report = _liability(request)
    if report is None:
        return HttpResponse("\n".join(str(e) for e in form.errors.values()), status=400, content_type="text/plain")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="prepaid-liability-{report.on.isoformat()}.csv"'
    response.write("\ufeff")  # a BOM, so spreadsheet programs read the Chinese headers as UTF-8
    writer = csv.writer(response)
    for row in liability_csv_rows(report):
        writer.writerow(row)
    writer.writerow(["生成时间 Generated", timezone.localtime().strftime("%Y-%m-%d %H:%M")])
    return response


urlpatterns: list[URLPattern | URLResolver] = [
    path("contracts/<int:pk>/", contract_detail, name="contract_detail"),
    path("contracts/<int:pk>/sign/", contract_sign_view, name="contract_sign"),
    path("contracts/<int:pk>/pdf/", contract_pdf_view, name="contract_pdf"),
    path("contracts/<int:pk>/signature.png", contract_signature, name="contract_signature"),
    path("members/<int:pk>/contracts/", member_contracts_view, name="member_contracts"),
    path("liability/", liability_report, name="liability_report"),
    path("liability/export.csv", liability_csv, name="liability_csv"),
]
