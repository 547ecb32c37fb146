from django.urls import path

from meiye.frontdesk.views import (
    audit,
    auth,
    bills,
    campaign_pages,
    card_products_pages,
    cards_pages,
    catalog_pages,
    checkout,
    contracts_pages,
    giftcards_pages,
    mall_pages,
    members,
    notify_pages,
    packages_pages,
    promotions_pages,
    rules_pages,
    settings_pages,
    tier_pages,
    wallet,
)

app_name = "frontdesk"
urlpatterns = [
    path("", auth.home, name="home"),
    # Signing in (open paths for the two-factor middleware: /login, /logout, /2fa/).
    path("login/", auth.login_view, name="login"),
    path("logout/", auth.logout_view, name="logout"),
    path("2fa/setup/", auth.two_factor_setup, name="2fa_setup"),
    path("2fa/verify/", auth.two_factor_verify, name="2fa_verify"),
    path("store/switch/", auth.store_switch, name="store_switch"),
    # Members.
    path("members/", members.member_list, name="member_list"),
    path("members/new/", members.member_create_view, name="member_create"),
    path("members/duplicates/", members.member_duplicates, name="member_duplicates"),
    path("members/duplicates/merge/", members.member_merge_view, name="member_merge"),
    path("members/<int:pk>/", members.member_detail, name="member_detail"),
    path("members/<int:pk>/edit/", members.member_edit, name="member_edit"),
    path("members/<int:pk>/reveal/<str:field>/", members.member_reveal_view, name="member_reveal"),
    path("members/<int:pk>/consent/", members.member_consent, name="member_consent"),
    path("members/<int:pk>/photo/", members.member_photo, name="member_photo"),
    path("members/<int:pk>/photo/upload/", members.member_photo_upload, name="member_photo_upload"),
    path("members/<int:pk>/export/", members.member_export_view, name="member_export"),
    path("members/<int:pk>/erase/", members.member_erase_view, name="member_erase"),
    # Settings.
    path("settings/", settings_pages.settings_index, name="settings"),
    path("settings/custom-fields/", settings_pages.custom_field_list, name="custom_field_list"),
    path("settings/custom-fields/new/", settings_pages.custom_field_create, name="custom_field_create"),
    path("settings/custom-fields/<slug:key>/edit/", settings_pages.custom_field_edit, name="custom_field_edit"),
    path("settings/staff/", settings_pages.staff_list_view, name="staff_list"),
    path("settings/staff/new/", settings_pages.staff_create_view, name="staff_create"),
    path("settings/staff/<int:pk>/", settings_pages.staff_edit_view, name="staff_edit"),
    path("settings/staff/<int:pk>/reset-2fa/", settings_pages.staff_totp_reset, name="staff_totp_reset"),
    path("settings/stores/", settings_pages.store_list_view, name="store_list"),
    path("settings/stores/new/", settings_pages.store_create_view, name="store_create"),
    path("settings/stores/<int:pk>/", settings_pages.store_edit_view, name="store_edit"),
    # Audit log.
    path("audit/", audit.audit_log, name="audit_log"),
    # Checkout (收银台).
    path("checkout/", checkout.checkout_start, name="checkout"),
    path("checkout/open/", checkout.checkout_open, name="checkout_open"),
    path("checkout/<int:pk>/", checkout.checkout_bill, name="checkout_bill"),
    path("checkout/<int:pk>/items/", checkout.checkout_items, name="checkout_items"),
    path("checkout/<int:pk>/lines/", checkout.checkout_add_line, name="checkout_add_line"),
    path("checkout/<int:pk>/lines/<int:line_id>/", checkout.checkout_line_edit, name="checkout_line_edit"),
    path("checkout/<int:pk>/lines/<int:line_id>/remove/", checkout.checkout_line_remove, name="checkout_line_remove"),
    path("checkout/<int:pk>/complete/", checkout.checkout_complete, name="checkout_complete"),
    path("checkout/<int:pk>/coupons/", checkout.checkout_coupons, name="checkout_coupons"),
    path("checkout/<int:pk>/send-code/", checkout.checkout_send_code, name="checkout_send_code"),
    # Bills, refunds, receipts and the daily close.
    path("bills/", bills.bill_list, name="bill_list"),
    path("bills/close/", bills.daily_close_view, name="daily_close"),
    path("bills/<int:pk>/", bills.bill_detail, name="bill_detail"),
    path("bills/<int:pk>/void/", bills.bill_void_view, name="bill_void"),
    path("bills/<int:pk>/refund/", bills.bill_refund_view, name="bill_refund"),
    path("bills/<int:pk>/receipt/", bills.receipt_view, name="receipt"),
    # A member's stored value and points.
    path("members/<int:pk>/wallet/", wallet.member_wallet, name="member_wallet"),
    path("members/<int:pk>/wallet/panel/", wallet.member_wallet_panel, name="member_wallet_panel"),
    path("members/<int:pk>/wallet/recharge/", wallet.member_recharge, name="member_recharge"),
    path("members/<int:pk>/points/adjust/", wallet.member_points_adjust, name="member_points_adjust"),
    # Catalogue settings.
    path("catalog/", catalog_pages.catalog_index, name="catalog_index"),
    path("catalog/categories/", catalog_pages.catalog_categories, name="catalog_categories"),
    path("catalog/categories/new/", catalog_pages.catalog_category_edit, name="catalog_category_create"),
    path("catalog/categories/<int:pk>/", catalog_pages.catalog_category_edit, name="catalog_category_edit"),
    path("catalog/items/", catalog_pages.catalog_items, name="catalog_items"),
    path("catalog/items/new/", catalog_pages.catalog_item_edit, name="catalog_item_create"),
    path("catalog/items/<int:pk>/", catalog_pages.catalog_item_edit, name="catalog_item_edit"),
    path("catalog/prices/", catalog_pages.catalog_prices, name="catalog_prices"),
    path("catalog/prices/<int:item_id>/", catalog_pages.catalog_price_set, name="catalog_price_set"),
    # Notifications: outbox, templates, settings, a member's opt-outs.
    *notify_pages.urlpatterns,
    # Points mall: redeem, approvals, history, items and rules.
    *mall_pages.urlpatterns,
    # Coupons and promotions: settings (HQ) and a member's coupons.
    *promotions_pages.urlpatterns,
    *campaign_pages.urlpatterns,
    # Member tiers: the ladder (HQ settings) and a member's tier, history and grants by hand.
    *tier_pages.urlpatterns,
    # Earning rules (HQ settings), the daily-limit review flags and a member's check-in.
    *rules_pages.urlpatterns,
    # Stored-value card products and recharge rules, member cards, packages, gift cards, contracts.
    *card_products_pages.urlpatterns,
    *cards_pages.urlpatterns,
    *packages_pages.urlpatterns,
    *giftcards_pages.urlpatterns,
    *contracts_pages.urlpatterns,
]
