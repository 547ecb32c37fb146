"""Settings: custom member fields, staff, stores. Each page is shown only to roles with its permission."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from meiye.core.errors import ApplicationError
from meiye.frontdesk.forms import (
    CustomFieldForm,
    StaffCreateForm,
    StaffEditForm,
    StoreForm,
    add_service_error,
    opening_hours_text,
)
from meiye.frontdesk.views.common import get_actor, staff_view
from meiye.members.selectors import custom_fields
from meiye.members.services import custom_field_save
from meiye.org.roles import Perm
from meiye.org.selectors import staff_get, staff_list, store_get, stores_visible
from meiye.org.services import staff_create, staff_update, store_create, store_update, totp_disable


@staff_view()
@require_GET
def settings_index(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request)
    for perm, target in (
        (Perm.CUSTOM_FIELDS_MANAGE, "frontdesk:custom_field_list"),
        (Perm.STAFF_VIEW, "frontdesk:staff_list"),
        (Perm.STORE_MANAGE, "frontdesk:store_list"),
    ):
        if actor.can(perm):
            return redirect(target)
    raise DjangoPermissionDenied("settings")


# --- Custom fields --------------------------------------------------------------------------------------------


@staff_view(Perm.CUSTOM_FIELDS_MANAGE)
@require_GET
def custom_field_list(request: HttpRequest) -> HttpResponse:
    fields = custom_fields(get_actor(request), active_only=False)
    return render(request, "frontdesk/settings/custom_fields.html", {"fields": fields})


def _custom_field_form_page(request: HttpRequest, key: str | None) -> HttpResponse:
    actor = get_actor(request)
    existing = custom_fields(actor, active_only=False).filter(key=key).first() if key else None
    if key and existing is None:
        raise Http404("custom field")
    initial: dict[str, Any] = {}
    if existing is not None:
        initial = {
            name: getattr(existing, name)
            for name in (
                "key",
                "label_zh",
                "label_en",
                "field_type",
                "required",
                "sensitive",
                "health",
                "retention",
                "retention_reason",
                "order",
                "is_active",
            )
        }
        initial["choices"] = "\n".join(str(c) for c in existing.choices)
    form = CustomFieldForm(request.POST or None, initial=initial, editing=existing is not None)
    if request.method == "POST" and form.is_valid():
        try:
            custom_field_save(actor=actor, **form.service_kwargs())
        except ApplicationError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, _("自定义字段已保存。"))
            return redirect("frontdesk:custom_field_list")
    context = {"form": form, "existing": existing}
    return render(request, "frontdesk/settings/custom_field_form.html", context, status=400 if form.errors else 200)


@staff_view(Perm.CUSTOM_FIELDS_MANAGE)
@require_http_methods(["GET", "POST"])
def custom_field_create(request: HttpRequest) -> HttpResponse:
    return _custom_field_form_page(request, None)


@staff_view(Perm.CUSTOM_FIELDS_MANAGE)
@require_http_methods(["GET", "POST"])
def custom_field_edit(request: HttpRequest, key: str) -> HttpResponse:
    return _custom_field_form_page(request, key)


# --- Staff ---------------------------------------------------------------------------------------------------------


@staff_view(Perm.STAFF_VIEW)
@require_GET
def staff_list_view(request: HttpRequest) -> HttpResponse:
    return render(request, "frontdesk/settings/staff_list.html", {"staff": staff_list(get_actor(request))})


@staff_view(Perm.STAFF_MANAGE)
@require_http_methods(["GET", "POST"])
def staff_create_view(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request)
    form = StaffCreateForm(request.POST or None, stores=stores_visible(actor).order_by("id"))
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            staff = staff_create(
                actor=actor,
                username=d["username"],
                display_name=d["display_name"],
                position=d["position"],
                stores=list(d["stores"]),
                password=d["password"],
            )
        except ApplicationError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, _("员工 %(name)s 已创建。") % {"name": staff})
            return redirect("frontdesk:staff_list")
    return render(request, "frontdesk/settings/staff_form.html", {"form": form}, status=400 if form.errors else 200)


@staff_view(Perm.STAFF_MANAGE)
@require_http_methods(["GET", "POST"])
def staff_edit_view(request: HttpRequest, pk: int) -> HttpResponse:
    actor = get_actor(request)
    staff = staff_get(actor, pk)
    initial = {
        "display_name": staff.display_name,
        "position": staff.position,
        "stores": list(staff.stores.all()),
        "is_active": staff.is_active,
    }
    form = StaffEditForm(request.POST or None, stores=stores_visible(actor).order_by("id"), initial=initial)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            staff_update(
                actor=actor,
                staff=staff,
                display_name=d["display_name"],
                position=d["position"],
                stores=list(d["stores"]),
                is_active=d["is_active"],
            )
        except ApplicationError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, _("员工资料已保存。"))
            return redirect("frontdesk:staff_list")
    context = {"form": form, "staff_member": staff}
    return render(request, "frontdesk/settings/staff_form.html", context, status=400 if form.errors else 200)


@staff_view(Perm.STAFF_MANAGE)
@require_POST
def staff_totp_reset(request: HttpRequest, pk: int) -> HttpResponse:
    actor = get_actor(request)
    staff = staff_get(actor, pk)
    totp_disable(actor=actor, staff=staff)
    messages.success(request, _("已重置 %(name)s 的两步验证，下次登录时需重新设置。") % {"name": staff})
    return redirect("frontdesk:staff_edit", pk=staff.pk)


# --- Stores ---------------------------------------------------------------------------------------------------------


@staff_view(Perm.STORE_MANAGE)
@require_GET
def store_list_view(request: HttpRequest) -> HttpResponse:
    stores = stores_visible(get_actor(request)).order_by("id")
    return render(request, "frontdesk/settings/store_list.html", {"stores": stores})


@staff_view(Perm.STORE_MANAGE)
@require_http_methods(["GET", "POST"])
def store_create_view(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request)
    form = StoreForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            store = store_create(
                actor=actor,
                code=d["code"],
                name=d["name"],
                address=d["address"],
                phone=d["phone"],
                time_zone=d["time_zone"],
                opening_hours=d["opening_hours"],
            )
        except ApplicationError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, _("门店 %(name)s 已创建。") % {"name": store.name})
            return redirect("frontdesk:store_list")
    return render(request, "frontdesk/settings/store_form.html", {"form": form}, status=400 if form.errors else 200)


@staff_view(Perm.STORE_MANAGE)
@require_http_methods(["GET", "POST"])
def store_edit_view(request: HttpRequest, pk: int) -> HttpResponse:
    actor = get_actor(request)
    store = store_get(actor, pk)
    initial = {
        "code": store.code,
        "name": store.name,
        "address": store.address,
        "phone": store.phone,
        "time_zone": store.time_zone,
        "opening_hours": opening_hours_text(store.opening_hours or {}),
        "is_active": store.is_active,
    }
    form = StoreForm(request.POST or None, initial=initial, editing=True)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            store_update(
                actor=actor,
                store=store,
                name=d["name"],
                address=d["address"],
                phone=d["phone"],
                time_zone=d["time_zone"],
                opening_hours=d["opening_hours"],
                is_active=d["is_active"],
            )
        except ApplicationError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, _("门店资料已保存。"))
            return redirect("frontdesk:store_list")
    context = {"form": form, "store": store}
    return render(request, "frontdesk/settings/store_form.html", context, status=400 if form.errors else 200)
