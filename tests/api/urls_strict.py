"""A URLconf for the tests: the member endpoints with ``idempotency_required = True``."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from meiye.api.views.members import MemberViewSet


class StrictMemberViewSet(MemberViewSet):
    idempotency_required = True


router = SimpleRouter()
router.register("members", StrictMemberViewSet, basename="strict-member")

urlpatterns = [path("strict/", include(router.urls))]
