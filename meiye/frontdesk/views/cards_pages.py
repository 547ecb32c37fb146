"""Front-desk pages: member cards (会员卡).

- The member page's cards panel (htmx): her cards with number, status, product; whether a payment password
  is set; links to manage them.
- Manage a member's cards (``cards.service``): issue, bind a physical number, freeze / unfreeze, report lost,
  replace (with the store's fee and its tender), close and transfer (``prepaid.refund``).
- Payment password: the member types it on a numeric keypad after a code sent to her phone (never echoed).
- Import old card numbers from a CSV: preview with each bad row's line, column and rule, then import.
- A store's card settings (``store.manage``): replacement fee, transfers, payment authorisation for everyone.

Views parse and call one service; refusals show beside the field they name. A member of a store the staff
cannot see is 404.
"""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, URLResolver, path
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from meiye.cards.models import CardMedium, CardStatus, CodePurpose
from meiye.cards.selectors import (
    card_get,
    card_products_active,
    card_settings,
    member_cards,
    member_live_card,
    payment_auth_required,
    payment_password_state,
)
from meiye.cards.services import (
    FEE_TENDERS,
    card_bind,
    card_close,
    card_freeze,
    card_issue,
    card_replace,
    card_report_lost,
    card_settings_set,
    card_transfer_balance,
    card_unfreeze,
    cards_import,
    payment_code_send,
    payment_password_set,
)
from meiye.core.errors import ApplicationError, NotFound
from meiye.core.money import Money
from meiye.frontdesk.forms import add_service_error
from meiye.frontdesk.forms_sales import MoneyField
from meiye.frontdesk.labels import bilingual, choices_of
from meiye.frontdesk.views.common import get_actor, staff_view
from meiye.members.models import Member, MemberStatus
from meiye.members.selectors import member_find_by_phone, member_get, member_search
from meiye.org.context import Actor
from meiye.org.roles import Perm
from meiye.org.selectors import store_get
from meiye.wallet.models import CardProduct, Tender
from meiye.wallet.selectors import wallet_balance

_lazy = gettext_lazy
MAX_CSV_BYTES = 1_000_000

# --- Forms ------------------------------------------------------------------------------------------------------


def _new_key() -> str:
    return uuid.uuid4().hex


def _key_field() -> forms.CharField:
    return forms.CharField(max_length=128, required=False, widget=forms.HiddenInput)


class _KeyedForm(forms.Form):
    def clean(self) -> dict[str, Any]:
        super().clean()
        if "idempotency_key" in self.fields and not self.cleaned_data.get("idempotency_key"):
            self.add_error(None, _("这张表单已失效，请刷新页面后重试。"))
        return self.cleaned_data


def _secret_input(placeholder: Any) -> forms.PasswordInput:
    return forms.PasswordInput(
        attrs={
            "inputmode": "numeric",
            "autocomplete": "off",
            "maxlength": "6",
            "pattern": "[0-9]{6}",
            "placeholder": placeholder,
        }
    )


def _code_input() -> forms.PasswordInput:
    """A one-time code: typed by the member, never rendered back into the page."""
    return forms.PasswordInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "maxlength": "6"})


class IssueForm(_KeyedForm):
    medium = forms.ChoiceField(label=_lazy("介质"), choices=choices_of(CardMedium), initial=CardMedium.VIRTUAL)
    number = forms.CharField(
        label=_lazy("实体卡号"),
        required=False,
        max_length=40,
        help_text=_lazy("实体卡请输入或扫描卡号；电子卡自动生成"),
    )
    product = forms.TypedChoiceField(label=_lazy("卡种"), required=False, coerce=int, empty_value=None)
    named = forms.BooleanField(label=_lazy("记名卡"), required=False, initial=True)
    idempotency_key = _key_field()

    def __init__(self, *args: Any, products: list[CardProduct], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["product"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", _lazy("默认卡种")), *((p.pk, p.name) for p in products)]


class BindForm(forms.Form):
    number = forms.CharField(label=_lazy("实体卡号"), max_length=40)


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_lazy("原因"), required=False, max_length=200)


class ReplaceForm(_KeyedForm):
    medium = forms.ChoiceField(label=_lazy("新卡介质"), choices=choices_of(CardMedium), initial=CardMedium.VIRTUAL)
    number = forms.CharField(label=_lazy("新实体卡号"), required=False, max_length=40)
    fee_tender = forms.ChoiceField(label=_lazy("工本费支付方式"), required=False)
    password = forms.CharField(label=_lazy("支付密码（会员输入）"), required=False, widget=_secret_input(""))
    code = forms.CharField(label=_lazy("验证码"), required=False, max_length=6, widget=_code_input())
    reason = forms.CharField(label=_lazy("原因"), required=False, max_length=200)
    idempotency_key = _key_field()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["fee_tender"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "—"), *choices_of(Tender), ("stored_value", _lazy("储值"))]


class CloseForm(_KeyedForm):
    tender = forms.ChoiceField(label=_lazy("退款方式"), choices=choices_of(Tender))
    reason = forms.CharField(label=_lazy("原因"), max_length=200)
    idempotency_key = _key_field()


class TransferForm(_KeyedForm):
    target = forms.CharField(label=_lazy("转入会员（手机号或会员号）"), max_length=30)
    reason = forms.CharField(label=_lazy("原因"), max_length=200)
    password = forms.CharField(label=_lazy("支付密码（会员输入）"), required=False, widget=_secret_input(""))
    code = forms.CharField(label=_lazy("验证码"), required=False, max_length=6, widget=_code_input())
    idempotency_key = _key_field()


class PasswordForm(forms.Form):
    code = forms.CharField(label=_lazy("短信验证码"), max_length=6, widget=_code_input())
    password = forms.CharField(label=_lazy("支付密码（6 位数字）"), widget=_secret_input(""))


class ImportForm(forms.Form):
    file = forms.FileField(label=_lazy("CSV 文件"), required=False)
    csv_text = forms.CharField(
        label=_lazy("或粘贴 CSV 内容"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        help_text=_lazy("每行：旧卡号,会员手机号或会员号,卡种代码（卡种可留空，用默认卡种）"),
    )


class SettingsForm(forms.Form):
    replacement_fee = MoneyField(label=_lazy("补卡工本费（元）"), required=False, help_text=_lazy("0 或留空表示不收费"))
    allow_balance_transfer = forms.BooleanField(label=_lazy("允许储值余额转赠"), required=False)
    require_payment_auth = forms.BooleanField(
        label=_lazy("所有会员储值支付须验证"),
        required=False,
        help_text=_lazy("开启后，未设支付密码的会员用短信验证码支付"),
    )


ACTION_FORMS: dict[str, type[forms.Form]] = {
    "issue": IssueForm,
    "bind": BindForm,
    "freeze": ReasonForm,
    "unfreeze": ReasonForm,
    "lost": ReasonForm,
    "replace": ReplaceForm,
    "close": CloseForm,
    "transfer": TransferForm,
}
ACTION_PERMS = {"close": Perm.PREPAID_REFUND, "transfer": Perm.PREPAID_REFUND}


# --- Helpers ------------------------------------------------------------------------------------------------------


def _render(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    response = render(request, template, context, status=status)
    patch_cache_control(response, private=True, no_store=True)
    return response


def _status_labels() -> dict[str, str]:
    return {value: bilingual(label) for value, label in CardStatus.choices}


def _cards_context(actor: Actor, member: Member) -> dict[str, Any]:
    state = payment_password_state(member)
    return {
        "member": member,
        "cards": list(member_cards(member)),
        "live": member_live_card(member),
        "has_password": bool(state and state.is_set),
        "auth_required": payment_auth_required(member, actor.store),
        "status_labels": _status_labels(),
        "medium_labels": {value: bilingual(label) for value, label in CardMedium.choices},
        "can_service": actor.can(Perm.CARD_SERVICE),
        "can_refund": actor.can(Perm.PREPAID_REFUND),
        "can_settings": actor.can(Perm.STORE_MANAGE) and actor.store is not None,
        "store_id": actor.store.pk if actor.store is not None else None,
    }


def _products(actor: Actor) -> list[CardProduct]:
    return list(card_products_active(actor))


def _blank_forms(actor: Actor) -> dict[str, forms.Form]:
    built: dict[str, forms.Form] = {}
    for action, form_class in ACTION_FORMS.items():
        initial = {"idempotency_key": _new_key()} if "idempotency_key" in form_class.base_fields else {}
        if form_class is IssueForm:
            built[action] = IssueForm(prefix=action, initial={**initial, "named": True}, products=_products(actor))
        else:
            built[action] = form_class(prefix=action, initial=initial)
    return built


def _target_member(actor: Actor, text: str) -> Member:
    text = (text or "").strip()
    found = member_find_by_phone(actor, text) or member_search(actor, text, limit=20).filter(member_no=text).first()
    if found is None:
        raise NotFound(
            "member.not_found",
            zh=f"转入会员：找不到「{text}」，或您无权查看。",
            en=f"target: no member {text!r}, or not visible to you.",
            field="target",
        )
    return found


def _manage_page(
    request: HttpRequest, member: Member, bound: dict[str, forms.Form] | None = None, status: int = 200
) -> HttpResponse:
    actor = get_actor(request)
    built = _blank_forms(actor)
    built.update(bound or {})
    settings = card_settings(actor.store) if actor.store is not None else None
    context = {
        **_cards_context(actor, member),
        "forms": built,
        "balance": wallet_balance(member),
        "fee": Money(settings.replacement_fee_fen) if settings is not None else Money(0),
        "allow_transfer": bool(settings and settings.allow_balance_transfer),
        "active_member": member.status == MemberStatus.ACTIVE,
    }
    return _render(request, "frontdesk/cards/member.html", context, status=status)


# --- Panel and management ------------------------------------------------------------------------------------


@staff_view(Perm.MEMBER_VIEW)
@require_GET
def member_cards_panel(request: HttpRequest, pk: int) -> HttpResponse:
    """htmx: the member page's cards panel."""
    actor = get_actor(request)
    member = member_get(actor, pk)
    return _render(request, "frontdesk/cards/_member_panel.html", _cards_context(actor, member))


@staff_view(Perm.CARD_SERVICE)
@require_GET
def member_cards_page(request: HttpRequest, pk: int) -> HttpResponse:
    """A member's cards and what can be done with them."""
    return _manage_page(request, member_get(get_actor(request), pk))


@staff_view(Perm.CARD_SERVICE)
@require_POST
def member_cards_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """One action on the member's live card (or issuing one); errors beside the field, in that form."""
    actor = get_actor(request)
    member = member_get(actor, pk)
    if action not in ACTION_FORMS:
        raise NotFound("cards.no_such_action", zh="没有这个操作。", en="No such action.")
    if action in ACTION_PERMS:
        actor.require(ACTION_PERMS[action])
    form_class = ACTION_FORMS[action]
    form: forms.Form = (
        IssueForm(request.POST, prefix=action, products=_products(actor))
        if form_class is IssueForm
        else form_class(request.POST, prefix=action)
    )
    if not form.is_valid():
        return _manage_page(request, member, {action: form}, status=400)
    try:
        done = _run(actor, member, action, form.cleaned_data)
    except ApplicationError as exc:
        add_service_error(form, exc, aliases={"idempotency_key": "__all__", "card": "__all__", "member": "__all__"})
        return _manage_page(request, member, {action: form}, status=400)
    messages.success(request, done)
    return redirect("frontdesk:member_cards_page", pk=member.pk)


def _run(actor: Actor, member: Member, action: str, d: dict[str, Any]) -> str:
    if action == "issue":
        product = CardProduct(pk=d["product"]) if d.get("product") else None
        card = card_issue(
            actor=actor,
            member=member,
            product=product,
            medium=d["medium"],
            number=d["number"] if d["medium"] == CardMedium.PHYSICAL else "",
            named=d["named"],
            idempotency_key=d["idempotency_key"],
        )
        return _("已开卡 %(number)s。") % {"number": card.number}
    live = member_live_card(member)
    if live is None:
        raise ApplicationError(
            "card.no_live_card",
            zh="会员没有在用的卡，请先开卡。",
            en="The member holds no live card; issue one first.",
        )
    card = card_get(actor, live.pk)
    if action == "bind":
        card = card_bind(actor=actor, card=card, number=d["number"])
        return _("已绑定实体卡 %(number)s。") % {"number": card.number}
    if action == "freeze":
        card_freeze(actor=actor, card=card, reason=d["reason"])
        return _("已冻结 %(number)s。") % {"number": card.number}
    if action == "unfreeze":
        card_unfreeze(actor=actor, card=card, reason=d["reason"])
        return _("已恢复 %(number)s。") % {"number": card.number}
    if action == "lost":
        card_report_lost(actor=actor, card=card, reason=d["reason"])
        return _("已挂失 %(number)s，储值支付已停止。") % {"number": card.number}
    if action == "replace":
        new = card_replace(
            actor=actor,
            card=card,
            medium=d["medium"],
            number=d["number"] if d["medium"] == CardMedium.PHYSICAL else "",
            fee_tender=d["fee_tender"] if d["fee_tender"] in FEE_TENDERS else "",
            password=d["password"],
            code=d["code"],
            reason=d["reason"],
            idempotency_key=d["idempotency_key"],
        )
        return _("已补卡：新卡号 %(number)s，旧卡号作废。") % {"number": new.number}
    if action == "close":
        card_close(actor=actor, card=card, tender=d["tender"], reason=d["reason"], idempotency_key=d["idempotency_key"])
        return _("已销卡 %(number)s。") % {"number": card.number}
    target = _target_member(actor, d["target"])
    card_transfer_balance(
        actor=actor,
        card=card,
        target=target,
        reason=d["reason"],
        password=d["password"],
        code=d["code"],
        idempotency_key=d["idempotency_key"],
    )
    return _("储值余额已转给 %(member)s。") % {"member": target.member_no}


@staff_view(Perm.CARD_SERVICE)
@require_POST
def member_payment_code(request: HttpRequest, pk: int) -> HttpResponse:
    """Send a one-time payment code to the member's phone (for a replacement fee or a transfer)."""
    actor = get_actor(request)
    member = member_get(actor, pk)
    try:
        payment_code_send(actor=actor, member=member, purpose=CodePurpose.PAYMENT)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("验证码已发送到会员手机，5 分钟内有效。"))
    return redirect("frontdesk:member_cards_page", pk=member.pk)


# --- Payment password ---------------------------------------------------------------------------------------------


@staff_view(Perm.CARD_SERVICE)
@require_http_methods(["GET", "POST"])
def member_payment_password(request: HttpRequest, pk: int) -> HttpResponse:
    """The member sets or resets her payment password on a numeric keypad, after a code to her phone."""
    actor = get_actor(request)
    member = member_get(actor, pk)
    form = PasswordForm()
    status = 200
    if request.method == "POST" and "send" in request.POST:
        try:
            payment_code_send(actor=actor, member=member, purpose=CodePurpose.PASSWORD)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
            status = 400
        else:
            messages.success(request, _("验证码已发送到会员手机，5 分钟内有效。"))
            return redirect("frontdesk:member_payment_password", pk=member.pk)
    elif request.method == "POST":
        form = PasswordForm(request.POST)
        if form.is_valid():
            try:
                payment_password_set(
                    actor=actor, member=member, password=form.cleaned_data["password"], code=form.cleaned_data["code"]
                )
            except ApplicationError as exc:
                add_service_error(form, exc)
            else:
                messages.success(request, _("支付密码已设置。"))
                return redirect("frontdesk:member_cards_page", pk=member.pk)
        status = 400
    state = payment_password_state(member)
    context = {"member": member, "form": form, "has_password": bool(state and state.is_set), "keys": "123456789"}
    return _render(request, "frontdesk/cards/password.html", context, status=status)


# --- Import ---------------------------------------------------------------------------------------------------------


@staff_view(Perm.CARD_SERVICE)
@require_http_methods(["GET", "POST"])
def cards_import_page(request: HttpRequest) -> HttpResponse:
    """Upload or paste a CSV of old card numbers: preview (every bad row with its line, column and rule),
    then import (nothing is written if any row is bad)."""
    actor = get_actor(request)
    form = ImportForm()
    result = None
    text = ""
    status = 200
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data.get("file")
            if upload is not None:
                if upload.size > MAX_CSV_BYTES:
                    form.add_error("file", _("文件过大（最多 1 MB）。"))
                else:
                    text = upload.read().decode("utf-8-sig", errors="replace")
            else:
                text = form.cleaned_data.get("csv_text") or ""
            if not form.errors and not text.strip():
                form.add_error("csv_text", _("请上传文件或粘贴 CSV 内容。"))
        if form.is_valid():
            real = "import" in request.POST
            try:
                result = cards_import(actor, text, dry_run=not real)
            except ApplicationError as exc:
                form.add_error(None, exc.message)
                result = cards_import(actor, text, dry_run=True)
                status = 400
            else:
                if real:
                    messages.success(
                        request,
                        _("已导入 %(aliases)s 个旧卡号，新开 %(cards)s 张电子卡。")
                        % {"aliases": result.aliases_created, "cards": result.cards_created},
                    )
                    return redirect("frontdesk:cards_import")
                form = ImportForm(initial={"csv_text": text})
        else:
            status = 400
    return _render(request, "frontdesk/cards/import.html", {"form": form, "result": result, "csv_text": text}, status)


# --- Settings -----------------------------------------------------------------------------------------------------


@staff_view(Perm.STORE_MANAGE)
@require_http_methods(["GET", "POST"])
def card_settings_page(request: HttpRequest, store_id: int) -> HttpResponse:
    actor = get_actor(request)
    store = store_get(actor, store_id)
    current = card_settings(store)
    initial = {
        "replacement_fee": Money(current.replacement_fee_fen),
        "allow_balance_transfer": current.allow_balance_transfer,
        "require_payment_auth": current.require_payment_auth,
    }
    form = SettingsForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            d = form.cleaned_data
            try:
                card_settings_set(
                    actor=actor,
                    store=store,
                    replacement_fee=d.get("replacement_fee") or Money(0),
                    allow_balance_transfer=d["allow_balance_transfer"],
                    require_payment_auth=d["require_payment_auth"],
                )
            except ApplicationError as exc:
                add_service_error(form, exc)
            else:
                messages.success(request, _("会员卡设置已保存。"))
                return redirect("frontdesk:card_settings", store_id=store.pk)
        status = 400
    return _render(request, "frontdesk/cards/settings.html", {"form": form, "store": store}, status)


urlpatterns: list[URLPattern | URLResolver] = [
    path("members/<int:pk>/cards/panel/", member_cards_panel, name="member_cards_panel"),
    path("members/<int:pk>/cards/", member_cards_page, name="member_cards_page"),
    path("members/<int:pk>/cards/code/", member_payment_code, name="member_payment_code"),
    path("members/<int:pk>/cards/password/", member_payment_password, name="member_payment_password"),
    path("members/<int:pk>/cards/<slug:action>/", member_cards_action, name="member_cards_action"),
    path("cards/import/", cards_import_page, name="cards_import"),
    path("stores/<int:store_id>/card-settings/", card_settings_page, name="card_settings"),
]
