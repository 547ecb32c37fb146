"""OpenAPI: the schema validates without warnings; Swagger UI is served from our own static files."""

from __future__ import annotations

import re

import yaml
from django.contrib.staticfiles import finders
from django.core.management import call_command
from rest_framework.test import APIClient


def test_schema_generates_and_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    schema = yaml.safe_load(target.read_text(encoding="utf-8"))
    operations = {f"{method.upper()} {path}" for path, methods in schema["paths"].items() for method in methods}
    assert operations == {
        "GET /api/v1/me/",
        "GET /api/v1/members/",
        "POST /api/v1/members/",
        "GET /api/v1/members/lookup/",
        "GET /api/v1/members/{id}/",
        "PATCH /api/v1/members/{id}/",
        "POST /api/v1/members/{id}/reveal/",
        "GET /api/v1/members/{id}/export/",
        "POST /api/v1/members/{id}/erase/",
        "POST /api/v1/members/{id}/consents/",
        "GET /api/v1/stores/",
        "GET /api/v1/stores/{id}/",
        "GET /api/v1/staff/",
        "GET /api/v1/staff/{id}/",
        # catalogue
        "GET /api/v1/categories/",
        "POST /api/v1/categories/",
        "GET /api/v1/categories/{id}/",
        "PATCH /api/v1/categories/{id}/",
        "GET /api/v1/items/",
        "POST /api/v1/items/",
        "GET /api/v1/items/{id}/",
        "PATCH /api/v1/items/{id}/",
        "GET /api/v1/items/barcode/{code}/",
        "PUT /api/v1/stores/{store_id}/prices/{item_id}/",
        "DELETE /api/v1/stores/{store_id}/prices/{item_id}/",
        # bills
        "GET /api/v1/bills/",
        "POST /api/v1/bills/",
        "GET /api/v1/bills/{id}/",
        "POST /api/v1/bills/{id}/lines/",
        "DELETE /api/v1/bills/{id}/lines/{line_id}/",
        "PATCH /api/v1/bills/{id}/lines/{line_id}/",
        "POST /api/v1/bills/{id}/checkout/",
        "POST /api/v1/bills/checkout/",
        "POST /api/v1/bills/{id}/refund/",
        "POST /api/v1/bills/{id}/void/",
        "GET /api/v1/bills/{id}/receipt/",
        "GET /api/v1/stores/{store_id}/daily-close/",
        # stored value and points
        "GET /api/v1/members/{id}/wallet/",
        "GET /api/v1/members/{id}/wallet/history/",
        "POST /api/v1/members/{id}/wallet/recharge/",
        "GET /api/v1/members/{id}/points/",
        "POST /api/v1/members/{id}/points/adjust/",
        "GET /api/v1/members/{id}/points/lots/",
        "GET /api/v1/members/{id}/points/offset-quote/",
        "GET /api/v1/members/{id}/points/history/",
        # points mall
        "GET /api/v1/mall/items/",
        "GET /api/v1/mall/items/{id}/",
        "GET /api/v1/mall/redemptions/",
        "POST /api/v1/mall/redemptions/",
        "GET /api/v1/mall/redemptions/{id}/",
        "POST /api/v1/mall/redemptions/{id}/approve/",
        "POST /api/v1/mall/redemptions/{id}/reject/",
        # coupons and promotions
        "GET /api/v1/coupon-templates/",
        "POST /api/v1/coupon-templates/",
        "GET /api/v1/coupon-templates/{id}/",
        "PATCH /api/v1/coupon-templates/{id}/",
        "GET /api/v1/promotions/",
        "POST /api/v1/promotions/",
        "GET /api/v1/promotions/{id}/",
        "PATCH /api/v1/promotions/{id}/",
        "GET /api/v1/promotions/stacking/",
        "PUT /api/v1/promotions/stacking/",
        "GET /api/v1/members/{id}/coupons/",
        "POST /api/v1/members/{id}/coupons/",
        "POST /api/v1/coupons/{id}/void/",
        # member tiers
        "GET /api/v1/tiers/",
        "POST /api/v1/tiers/",
        "GET /api/v1/tiers/{id}/",
        "PATCH /api/v1/tiers/{id}/",
        "DELETE /api/v1/tiers/{id}/",
        "GET /api/v1/members/{id}/tier/",
        "GET /api/v1/members/{id}/tier/history/",
        "POST /api/v1/members/{id}/tier/grant/",
        # segments and campaigns
        "GET /api/v1/segments/",
        "POST /api/v1/segments/",
        "POST /api/v1/segments/count/",
        "GET /api/v1/segments/{id}/",
        "PATCH /api/v1/segments/{id}/",
        "DELETE /api/v1/segments/{id}/",
        "GET /api/v1/segments/{id}/count/",
        "GET /api/v1/campaigns/",
        "POST /api/v1/campaigns/",
        "GET /api/v1/campaigns/{id}/",
        "PATCH /api/v1/campaigns/{id}/",
        "POST /api/v1/campaigns/{id}/schedule/",
        "POST /api/v1/campaigns/{id}/send/",
        "GET /api/v1/campaigns/{id}/report/",
        # earning rules, check-in, review flags, the offers preview of an open bill
        "GET /api/v1/rules/",
        "PUT /api/v1/rules/",
        "POST /api/v1/members/{id}/checkin/",
        "GET /api/v1/earning-flags/",
        "POST /api/v1/earning-flags/{id}/review/",
        "GET /api/v1/bills/{id}/offers/",
        # Cards and prepaid (issue 5): card products and recharge rules, member cards and payment security,
        # packages, gift cards, contracts, the liability report, stored-value refunds and transfers.
        "GET /api/v1/card-products/",
        "GET /api/v1/card-products/{id}/",
        "GET /api/v1/card-products/{id}/rules/",
        "GET /api/v1/card-products/{id}/rules/{rule_id}/",
        "GET /api/v1/cards/lookup/",
        "GET /api/v1/contracts/{id}/",
        "GET /api/v1/contracts/{id}/pdf/",
        "GET /api/v1/gift-cards/",
        "GET /api/v1/gift-cards/{id}/",
        "GET /api/v1/member-packages/{id}/",
        "GET /api/v1/member-packages/{id}/refund/preview/",
        "GET /api/v1/members/{id}/cards/",
        "GET /api/v1/members/{id}/contracts/",
        "GET /api/v1/members/{id}/packages/",
        "GET /api/v1/members/{id}/wallet/instalments/",
        "GET /api/v1/members/{id}/wallet/recharge/preview/",
        "GET /api/v1/package-products/",
        "GET /api/v1/package-products/{id}/",
        "GET /api/v1/reports/prepaid-liability/",
        "GET /api/v1/stores/{store_id}/card-settings/",
        "POST /api/v1/card-products/",
        "POST /api/v1/card-products/{id}/rules/",
        "POST /api/v1/cards/import/",
        "POST /api/v1/cards/{id}/bind/",
        "POST /api/v1/cards/{id}/close/",
        "POST /api/v1/cards/{id}/freeze/",
        "POST /api/v1/cards/{id}/lost/",
        "POST /api/v1/cards/{id}/replace/",
        "POST /api/v1/cards/{id}/transfer/",
        "POST /api/v1/cards/{id}/unfreeze/",
        "POST /api/v1/contracts/{id}/sign/",
        "POST /api/v1/gift-cards/",
        "POST /api/v1/gift-cards/lookup/",
        "POST /api/v1/gift-cards/{id}/void/",
        "POST /api/v1/member-packages/{id}/extend/",
        "POST /api/v1/member-packages/{id}/freeze/",
        "POST /api/v1/member-packages/{id}/refund/",
        "POST /api/v1/member-packages/{id}/transfer/",
        "POST /api/v1/member-packages/{id}/unfreeze/",
        "POST /api/v1/member-packages/{id}/use/",
        "POST /api/v1/members/{id}/cards/",
        "POST /api/v1/members/{id}/payment-code/",
        "POST /api/v1/members/{id}/payment-password/",
        "POST /api/v1/members/{id}/wallet/close/",
        "POST /api/v1/members/{id}/wallet/recharges/{recharge_id}/refund/",
        "POST /api/v1/members/{id}/wallet/transfer/",
        "POST /api/v1/package-products/",
        "PUT /api/v1/card-products/{id}/",
        "PUT /api/v1/card-products/{id}/rules/{rule_id}/",
        "PUT /api/v1/package-products/{id}/",
        "PUT /api/v1/stores/{store_id}/card-settings/",
    }
    create = schema["paths"]["/api/v1/members/"]["post"]
    headers = {p["name"] for p in create["parameters"] if p["in"] == "header"}
    assert headers == {"Idempotency-Key", "X-Store-Id"}
    assert "application/problem+json" in create["responses"]["409"]["content"]
    assert schema["components"]["securitySchemes"]["staffToken"]["scheme"] == "bearer"


def test_schema_endpoint_serves_the_schema(db):
    response = APIClient().get("/api/schema/")

    assert response.status_code == 200
    assert b"/api/v1/members/" in response.content


def test_docs_page_uses_local_static_files_only(db):
    response = APIClient().get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css" in html
    assert re.findall(r"https?://", html) == []
    assert re.findall(r"""(?:src|href)\s*=\s*["']//""", html) == []
    assert "'unsafe-inline'" in response["Content-Security-Policy"]
    for asset in ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"):
        assert finders.find(f"drf_spectacular_sidecar/swagger-ui-dist/{asset}") is not None
