"""API routes: v1 under /api/v1/, the OpenAPI schema at /api/schema/ and Swagger UI at /api/docs/."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from meiye.api.views import card_products, cards, contracts, giftcards, packages
from meiye.api.views.base import not_found
from meiye.api.views.campaigns import CampaignViewSet, SegmentViewSet
from meiye.api.views.catalog import CategoryViewSet, ItemViewSet, StorePriceView
from meiye.api.views.loyalty import MemberTierGrantView, MemberTierHistoryView, MemberTierView, TierViewSet
from meiye.api.views.mall import MallItemViewSet, MallRedemptionViewSet
from meiye.api.views.members import MemberViewSet
from meiye.api.views.org import MeView, StaffViewSet, StoreViewSet
from meiye.api.views.promotions import (
    CouponTemplateViewSet,
    CouponVoidView,
    MemberCouponsView,
    PromotionViewSet,
    StackingView,
)
from meiye.api.views.rules import (
    BillOffersView,
    EarningFlagReviewView,
    EarningFlagsView,
    MemberCheckInView,
    RulesSettingsView,
)
from meiye.api.views.sales import BillViewSet, DailyCloseView
from meiye.api.views.wallet import (
    PointsAdjustView,
    PointsHistoryView,
    PointsLotsView,
    PointsOffsetQuoteView,
    PointsView,
    RechargeView,
    WalletHistoryView,
    WalletView,
)

router = SimpleRouter()
router.register("members", MemberViewSet, basename="member")
router.register("stores", StoreViewSet, basename="store")
router.register("staff", StaffViewSet, basename="staff")
router.register("categories", CategoryViewSet, basename="category")
router.register("items", ItemViewSet, basename="item")
router.register("bills", BillViewSet, basename="bill")
router.register("coupon-templates", CouponTemplateViewSet, basename="coupon-template")
router.register("promotions", PromotionViewSet, basename="promotion")
router.register("mall/items", MallItemViewSet, basename="mall-item")
router.register("mall/redemptions", MallRedemptionViewSet, basename="mall-redemption")
router.register("tiers", TierViewSet, basename="tier")
router.register("segments", SegmentViewSet, basename="segment")
router.register("campaigns", CampaignViewSet, basename="campaign")

v1_patterns = [
    path("me/", MeView.as_view(), name="me"),
    path("members/<int:pk>/wallet/", WalletView.as_view(), name="member-wallet"),
    path("members/<int:pk>/wallet/history/", WalletHistoryView.as_view(), name="member-wallet-history"),
    path("members/<int:pk>/wallet/recharge/", RechargeView.as_view(), name="member-wallet-recharge"),
    path("members/<int:pk>/points/", PointsView.as_view(), name="member-points"),
    path("members/<int:pk>/points/adjust/", PointsAdjustView.as_view(), name="member-points-adjust"),
    path("members/<int:pk>/points/lots/", PointsLotsView.as_view(), name="member-points-lots"),
    path("members/<int:pk>/points/offset-quote/", PointsOffsetQuoteView.as_view(), name="member-points-offset-quote"),
    path("members/<int:pk>/points/history/", PointsHistoryView.as_view(), name="member-points-history"),
    path("members/<int:pk>/tier/", MemberTierView.as_view(), name="member-tier"),
    path("members/<int:pk>/tier/history/", MemberTierHistoryView.as_view(), name="member-tier-history"),
    path("members/<int:pk>/tier/grant/", MemberTierGrantView.as_view(), name="member-tier-grant"),
    path("stores/<int:store_id>/daily-close/", DailyCloseView.as_view(), name="store-daily-close"),
    path("promotions/stacking/", StackingView.as_view(), name="promotion-stacking"),
    path("members/<int:pk>/coupons/", MemberCouponsView.as_view(), name="member-coupons"),
    path("coupons/<int:pk>/void/", CouponVoidView.as_view(), name="coupon-void"),
    path("stores/<int:store_id>/prices/<int:item_id>/", StorePriceView.as_view(), name="store-price"),
    path("rules/", RulesSettingsView.as_view(), name="rules"),
    path("members/<int:pk>/checkin/", MemberCheckInView.as_view(), name="member-checkin"),
    path("earning-flags/", EarningFlagsView.as_view(), name="earning-flags"),
    path("earning-flags/<int:pk>/review/", EarningFlagReviewView.as_view(), name="earning-flag-review"),
    path("bills/<int:pk>/offers/", BillOffersView.as_view(), name="bill-offers"),
    *card_products.urlpatterns,
    *cards.urlpatterns,
    *packages.urlpatterns,
    *giftcards.urlpatterns,
    *contracts.urlpatterns,
    *router.urls,
]

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("v1/", include((v1_patterns, "v1"), namespace="v1")),
    re_path(r"^", not_found, name="api-not-found"),
]
