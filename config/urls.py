from django.urls import include, path

from meiye.core.views import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/", include("meiye.api.urls")),
    path("", include("meiye.frontdesk.urls")),
]
