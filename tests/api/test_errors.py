"""Framework-level errors are problems too."""

from __future__ import annotations

PROBLEM = "application/problem+json"


def test_unknown_api_path_is_a_404_problem(reception_api):
    response = reception_api.post("/api/v1/nothing-here/", {}, format="json")

    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM
    assert response.json() == {
        "type": "https://meiye.invalid/problems/http.not_found",
        "title": "Not found",
        "status": 404,
        "code": "http.not_found",
        "detail": "没有这个接口。API 文档见 /api/docs/。",
        "detail_zh": "没有这个接口。API 文档见 /api/docs/。",
        "detail_en": "No such endpoint. See the API documentation at /api/docs/.",
        "instance": "/api/v1/nothing-here/",
    }


def test_malformed_json_is_a_400_problem(reception_api):
    response = reception_api.generic("POST", "/api/v1/members/", b'{"name": ', content_type="application/json")

    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert response.json()["code"] == "http.parse_error"


def test_unsupported_media_type_is_a_415_problem(reception_api):
    response = reception_api.generic("POST", "/api/v1/members/", b"name", content_type="text/plain")

    assert response.status_code == 415
    assert response.json()["code"] == "http.unsupported_media_type"


def test_english_messages_for_framework_errors(db):
    from rest_framework.test import APIClient

    response = APIClient().get("/api/v1/me/", HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 401
    assert response.json()["detail"] == ("Not authenticated: send an API token (Authorization: Bearer …) or sign in.")
