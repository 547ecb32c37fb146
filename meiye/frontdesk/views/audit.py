"""The audit log viewer: read-only, filtered, paginated."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from meiye.audit.selectors import audit_list
from meiye.frontdesk.forms import AuditFilterForm
from meiye.frontdesk.views.common import get_actor, staff_view
from meiye.org.roles import Perm
from meiye.org.selectors import staff_list

PAGE_SIZE = 50


@staff_view(Perm.AUDIT_VIEW)
@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request)
    staff_choices: list[tuple[int, str]] = []
    if actor.can(Perm.STAFF_VIEW):
        staff_choices = [(s.pk, f"{s} ({s.username})") for s in staff_list(actor)]
    form = AuditFilterForm(request.GET, staff_choices=staff_choices)
    filters = form.filters() if form.is_valid() else {}
    page = Paginator(audit_list(actor, **filters), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "frontdesk/audit/list.html", {"form": form, "page": page}, status=200)
