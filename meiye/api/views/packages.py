"""API endpoints (v1): packages. Routes are collected in ``urlpatterns`` and included by ``meiye.api.urls``."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
