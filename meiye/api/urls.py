"""API routes: v1 under /api/v1/, the OpenAPI schema at /api/schema/ and Swagger UI at /api/docs/."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from meiye.api.views.base import not_found
from meiye.api.views.members import MemberViewSet
from meiye.api.views.org import MeView, StaffViewSet, StoreViewSet

router = SimpleRouter()
router.register("members", MemberViewSet, basename="member")
router.register("stores", StoreViewSet, basename="store")
router.register("staff", StaffViewSet, basename="staff")

v1_patterns = [
    path("me/", MeView.as_view(), name="me"),
    *router.urls,
]

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("v1/", include((v1_patterns, "v1"), namespace="v1")),
    re_path(r"^", not_found, name="api-not-found"),
]
