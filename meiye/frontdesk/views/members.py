"""Members: list and search, register, edit, detail with audited reveal, consent, photo, export, erasure,
duplicates and merge. Each view loads the member through ``member_get`` first, so a member of a store the
staff member cannot see is a 404 whatever the action."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from meiye.core.errors import ApplicationError, PermissionDenied, ValidationFailed
from meiye.frontdesk.forms import (
    CONSENT_VERSION,
    ConsentForm,
    EraseForm,
    MemberCreateForm,
    MemberEditForm,
    MemberSearchForm,
    MergeForm,
    PhotoForm,
    add_service_error,
    custom_input_name,
)
from meiye.frontdesk.labels import label_of
from meiye.frontdesk.views.common import get_actor, is_htmx, staff_view
from meiye.loyalty.tiers import member_tier_info
from meiye.members.models import ConsentPurpose, Member, MemberStatus
from meiye.members.selectors import (
    custom_fields,
    duplicate_groups,
    member_get,
    member_search,
    member_view,
    sensitive_values,
    tags_list,
)
from meiye.members.services import (
    consent_record,
    member_create,
    member_erase,
    member_export,
    member_merge,
    member_photo_get,
    member_photo_set,
    member_reveal,
    member_update,
)
from meiye.org.context import Actor
from meiye.org.models import Store
from meiye.org.roles import Perm
from meiye.org.selectors import stores_visible

PLACEHOLDER_PHOTO = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 120 120" width="120" height="120">'
    '<rect width="120" height="120" rx="12" fill="#efe7ec"/>'
    '<circle cx="60" cy="46" r="22" fill="#c9b3c1"/>'
    '<path d="M20 112c4-24 20-36 40-36s36 12 40 36z" fill="#c9b3c1"/></svg>'
)


def _stores_for_form(actor: Actor, include: Store | None = None) -> list[Store]:
    stores = list(stores_visible(actor).filter(is_active=True).order_by("id"))
    if include is not None and include.pk not in {s.pk for s in stores}:
        stores.append(include)
    return stores


# --- List and search ------------------------------------------------------------------------------------------


@staff_view(Perm.MEMBER_VIEW)
@require_GET
def member_list(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request)
    form = MemberSearchForm(request.GET, tags=tags_list(actor))
    query, tag = "", ""
    if form.is_valid():
        query, tag = form.cleaned_data["q"], form.cleaned_data["tag"]
    members = member_search(actor, query, tag=tag).prefetch_related("tags")
    context = {"form": form, "members": members, "query": query, "tag": tag}
    template = "frontdesk/members/_table.html" if is_htmx(request) else "frontdesk/members/list.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


# --- Create and edit ------------------------------------------------------------------------------------------


@staff_view(Perm.MEMBER_CREATE)
@require_http_methods(["GET", "POST"])
def member_create_view(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request)
    fields = list(custom_fields(actor))
    initial = {"home_store": actor.store.pk if actor.store else None}
    form = MemberCreateForm(request.POST or None, custom_fields=fields, stores=_stores_for_form(actor), initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            member = member_create(
                actor=actor,
                data=form.member_input(),
                consents=form.consents(),
                consent_version=CONSENT_VERSION,
                consent_channel=form.cleaned_data["consent_channel"],
            )
        except ApplicationError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, _("会员 %(no)s 已建档。") % {"no": member.member_no})
            return redirect("frontdesk:member_detail", pk=member.pk)
    context = {"form": form, "consent_version": CONSENT_VERSION}
    return render(request, "frontdesk/members/create.html", context, status=400 if form.errors else 200)


@staff_view(Perm.MEMBER_EDIT)
@require_http_methods(["GET", "POST"])
def member_edit(request: HttpRequest, pk: int) -> HttpResponse:
    actor = get_actor(request)
    member = member_get(actor, pk)
    view = member_view(actor, member)
    fields = list(custom_fields(actor))
    recorded = {key for key, value in sensitive_values(member).items() if value not in (None, "", [])}
    initial: dict[str, Any] = {
        "name": member.name,
        "gender": member.gender,
        "birthday": member.birthday,
        "channel": member.channel,
        "home_store": member.home_store_id,
        "tags": ", ".join(t.name for t in member.tags.all()),
        "notes": member.notes,
    }
    for cf in fields:
        if not cf.is_protected and cf.key in (member.custom or {}):
            initial[custom_input_name(cf.key)] = member.custom[cf.key]
    form = MemberEditForm(
        request.POST or None,
        custom_fields=fields,
        stores=_stores_for_form(actor, include=member.home_store),
        masked={"phone": view.phone, "email": view.email, "address": view.address, "id_number": view.id_number},
        consents=view.consents,
        can_write_protected=actor.can(Perm.MEMBER_REVEAL_HEALTH),
        protected_recorded=recorded,
        initial=initial,
    )
    if request.method == "POST" and form.is_valid():
        try:
            member_update(actor=actor, member=member, data=form.member_input())
        except ApplicationError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, _("会员资料已保存。"))
            return redirect("frontdesk:member_detail", pk=member.pk)
    context = {"form": form, "member": member}
    return render(request, "frontdesk/members/edit.html", context, status=400 if form.errors else 200)


# --- Detail, reveal, consent, photo ---------------------------------------------------------------------------------


def _detail_context(request: HttpRequest, member: Member, **extra: Any) -> dict[str, Any]:
    actor = get_actor(request)
    view = member_view(actor, member)
    consents = [
        {"purpose": purpose, "label": label_of(ConsentPurpose, purpose), "granted": view.consents.get(purpose, False)}
        for purpose in ConsentPurpose.values
    ]
    revealable = not member.restricted and member.status != MemberStatus.ERASED
    profile = [
        ("phone", _("手机号"), view.phone),
        ("id_number", _("身份证号"), view.id_number),
        ("email", _("邮箱"), view.email),
        ("address", _("地址"), view.address),
    ]
    context: dict[str, Any] = {
        "member": member,
        "view": view,
        "profile": [
            {"field": f, "label": label, "shown": shown, "can_reveal": revealable and view.can_reveal.get(f, False)}
            for f, label, shown in profile
        ],
        "custom": [
            {
                "item": item,
                "field": f"custom.{item.field.key}",
                "can_reveal": revealable and item.masked and bool(item.shown) and view.can_reveal.get("custom", False),
            }
            for item in view.custom
        ],
        "tags": [t.name for t in member.tags.all()],
        "consents": consents,
        "consent_form": extra.pop("consent_form", None) or ConsentForm(),
        "photo_form": extra.pop("photo_form", None) or PhotoForm(),
        "consent_version": CONSENT_VERSION,
        "can_write": member.status not in (MemberStatus.ERASED, MemberStatus.MERGED),
        "tier_info": member_tier_info(member),  # her tier's name for the badge (one query)
    }
    context.update(extra)
    return context


@staff_view(Perm.MEMBER_VIEW)
@require_GET
def member_detail(request: HttpRequest, pk: int) -> HttpResponse:
    member = member_get(get_actor(request), pk)
    response = render(request, "frontdesk/members/detail.html", _detail_context(request, member))
    # Revealed values are swapped into this page: keep it out of the browser's caches.
    patch_cache_control(response, no_store=True, private=True)
    return response


@staff_view(Perm.MEMBER_VIEW)
@require_POST
def member_reveal_view(request: HttpRequest, pk: int, field: str) -> HttpResponse:
    """htmx: the full value of one masked field (audited by the service), or why it cannot be shown."""
    actor = get_actor(request)
    member = member_get(actor, pk)
    try:
        value = member_reveal(actor=actor, member=member, field=field)
    except (PermissionDenied, ValidationFailed) as exc:
        status = 403 if isinstance(exc, PermissionDenied) else 400
        return render(request, "frontdesk/members/_reveal_refused.html", {"message": exc.message}, status=status)
    response = render(request, "frontdesk/members/_revealed.html", {"value": value, "field": field})
    patch_cache_control(response, no_store=True, private=True)
    return response


@staff_view(Perm.MEMBER_CONSENT)
@require_POST
def member_consent(request: HttpRequest, pk: int) -> HttpResponse:
    actor = get_actor(request)
    member = member_get(actor, pk)
    form = ConsentForm(request.POST)
    if form.is_valid():
        try:
            consent_record(
                actor=actor,
                member=member,
                purpose=form.cleaned_data["purpose"],
                granted=form.cleaned_data["granted"],
                text_version=CONSENT_VERSION,
                channel=form.cleaned_data["channel"],
            )
        except ApplicationError as exc:
            add_service_error(form, exc, aliases={"text_version": "purpose"})
        else:
            label = label_of(ConsentPurpose, form.cleaned_data["purpose"])
            if form.cleaned_data["granted"]:
                messages.success(request, _("已登记同意：%(purpose)s。") % {"purpose": label})
            else:
                messages.success(request, _("已登记撤回：%(purpose)s。") % {"purpose": label})
            return redirect("frontdesk:member_detail", pk=member.pk)
    context = _detail_context(request, member, consent_form=form)
    return render(request, "frontdesk/members/detail.html", context, status=400)


@staff_view(Perm.MEMBER_PHOTO)
@require_GET
def member_photo(request: HttpRequest, pk: int) -> HttpResponse:
    """The member's photo (each view audited by the service); a neutral placeholder when there is none."""
    actor = get_actor(request)
    member = member_get(actor, pk)
    photo = member_photo_get(actor=actor, member=member)
    if photo is None or not photo.data:
        response = HttpResponse(PLACEHOLDER_PHOTO, content_type="image/svg+xml")
    else:
        response = HttpResponse(bytes(photo.data), content_type=photo.content_type)
    patch_cache_control(response, no_store=True, private=True)
    return response


@staff_view(Perm.MEMBER_PHOTO)
@require_POST
def member_photo_upload(request: HttpRequest, pk: int) -> HttpResponse:
    actor = get_actor(request)
    member = member_get(actor, pk)
    form = PhotoForm(request.POST, request.FILES)
    if form.is_valid():
        content_type, data = form.cleaned_data["photo"]
        try:
            member_photo_set(actor=actor, member=member, content_type=content_type, data=data)
        except ApplicationError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, _("照片已保存。"))
            return redirect("frontdesk:member_detail", pk=member.pk)
    context = _detail_context(request, member, photo_form=form)
    return render(request, "frontdesk/members/detail.html", context, status=400)


# --- Export and erasure -----------------------------------------------------------------------------------------


@staff_view(Perm.MEMBER_VIEW)
@require_POST
def member_export_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Everything held about the member as a JSON download (the service checks the permission and audits)."""
    actor = get_actor(request)
    member = member_get(actor, pk)
    data = member_export(actor=actor, member=member)
    response = JsonResponse(data, json_dumps_params={"ensure_ascii": False, "indent": 2})
    response["Content-Disposition"] = f'attachment; filename="member-{member.member_no}.json"'
    patch_cache_control(response, no_store=True, private=True)
    return response


@staff_view(Perm.MEMBER_ERASE)
@require_http_methods(["GET", "POST"])
def member_erase_view(request: HttpRequest, pk: int) -> HttpResponse:
    actor = get_actor(request)
    member = member_get(actor, pk)
    form = EraseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            member_erase(actor=actor, member=member, reason=form.cleaned_data["reason"])
        except ApplicationError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, _("会员 %(no)s 已注销。") % {"no": member.member_no})
            return redirect("frontdesk:member_detail", pk=member.pk)
    context = {"form": form, "member": member}
    return render(request, "frontdesk/members/erase.html", context, status=400 if form.errors else 200)


# --- Duplicates and merge ---------------------------------------------------------------------------------------


def _duplicates_response(
    request: HttpRequest, *, error: str = "", error_ids: frozenset[int] = frozenset()
) -> HttpResponse:
    groups = [
        {"group": group, "error": error if error_ids & {m.pk for m in group.members} else ""}
        for group in duplicate_groups(get_actor(request))
    ]
    context = {"groups": groups, "general_error": error if error and not any(g["error"] for g in groups) else ""}
    return render(request, "frontdesk/members/duplicates.html", context, status=400 if error else 200)


@staff_view(Perm.MEMBER_VIEW)
@require_GET
def member_duplicates(request: HttpRequest) -> HttpResponse:
    return _duplicates_response(request)


@staff_view(Perm.MEMBER_MERGE)
@require_POST
def member_merge_view(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request)
    form = MergeForm(request.POST)
    if not form.is_valid():
        return _duplicates_response(request, error=_("请选择要保留的会员和要并入的会员。"))
    survivor = member_get(actor, form.cleaned_data["survivor"])
    merged = member_get(actor, form.cleaned_data["merged"])
    try:
        member_merge(actor=actor, survivor=survivor, merged=merged)
    except ApplicationError as exc:
        return _duplicates_response(request, error=exc.message, error_ids=frozenset({survivor.pk, merged.pk}))
    messages.success(
        request,
        _("会员 %(merged)s 已并入 %(survivor)s。") % {"merged": merged.member_no, "survivor": survivor.member_no},
    )
    return redirect("frontdesk:member_detail", pk=survivor.pk)
