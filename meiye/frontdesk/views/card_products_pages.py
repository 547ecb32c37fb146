"""Front-desk pages: card_products. Routes are collected in ``urlpatterns`` and included by ``meiye.frontdesk.urls``."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
