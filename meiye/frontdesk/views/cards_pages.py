"""Front-desk pages: cards. Routes are collected in ``urlpatterns`` and included by ``meiye.frontdesk.urls``."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, URLResolver, path
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_GET

from meiye.frontdesk.views.common import get_actor, staff_view
from meiye.members.selectors import member_get
from meiye.org.roles import Perm


@staff_view(Perm.MEMBER_VIEW)
@require_GET
def member_cards_panel(request: HttpRequest, pk: int) -> HttpResponse:
    """htmx: the member page's cards panel."""
    member = member_get(get_actor(request), pk)
    response = render(request, "frontdesk/cards/_member_panel.html", {"member": member})
    patch_cache_control(response, private=True, no_store=True)
    return response


urlpatterns: list[URLPattern | URLResolver] = [
    path("members/<int:pk>/cards/panel/", member_cards_panel, name="member_cards_panel"),
]
