"""API endpoints (v1): stored-value card products and their recharge rules (HQ), and a member's recharge
preview, bonus instalments, cooling-off refund, closing refund and transfer. The views live in
``meiye.api.views.wallet``; their routes are collected here and included by ``meiye.api.urls``."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from meiye.api.views.wallet import (
    CardProductDetailView,
    CardProductListView,
    InstalmentsView,
    RechargePreviewView,
    RechargeRefundView,
    RechargeRuleDetailView,
    RechargeRuleListView,
    WalletCloseView,
    WalletTransferView,
)

urlpatterns: list[URLPattern | URLResolver] = [
    path("card-products/", CardProductListView.as_view(), name="card-product-list"),
    path("card-products/<int:pk>/", CardProductDetailView.as_view(), name="card-product-detail"),
    path("card-products/<int:pk>/rules/", RechargeRuleListView.as_view(), name="card-product-rule-list"),
    path(
        "card-products/<int:pk>/rules/<int:rule_id>/", RechargeRuleDetailView.as_view(), name="card-product-rule-detail"
    ),
    path("members/<int:pk>/wallet/recharge/preview/", RechargePreviewView.as_view(), name="member-recharge-preview"),
    path("members/<int:pk>/wallet/instalments/", InstalmentsView.as_view(), name="member-wallet-instalments"),
    path(
        "members/<int:pk>/wallet/recharges/<int:recharge_id>/refund/",
        RechargeRefundView.as_view(),
        name="member-recharge-refund",
    ),
    path("members/<int:pk>/wallet/close/", WalletCloseView.as_view(), name="member-wallet-close"),
    path("members/<int:pk>/wallet/transfer/", WalletTransferView.as_view(), name="member-wallet-transfer"),
]
