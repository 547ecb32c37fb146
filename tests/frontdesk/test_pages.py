"""Every page opens for the roles that may use it, with its key content, and is refused to the others."""

from __future__ import annotations

import pytest

from meiye.members.services import custom_field_save

PAGES = [
    # (role, path, status, text that must be on the page)
    ("receptionist", "/members/", 200, "新建会员"),
    ("receptionist", "/members/new/", 200, "会员同意（同意书 v1）"),
    ("receptionist", "/members/{member}/", 200, "基本资料"),
    ("receptionist", "/members/{member}/edit/", 200, "编辑会员"),
    ("receptionist", "/members/duplicates/", 200, "没有发现重复的会员。"),
    ("receptionist", "/members/{member}/erase/", 403, "没有权限"),
    ("receptionist", "/settings/custom-fields/", 403, "您的岗位没有此权限（custom_fields.manage）。"),
    ("receptionist", "/audit/", 403, "没有权限"),
    ("beautician", "/members/", 200, "会员"),
    ("beautician", "/members/new/", 403, "没有权限"),
    ("beautician", "/members/{member}/edit/", 403, "没有权限"),
    ("manager", "/settings/staff/", 200, "manager1"),
    ("manager", "/audit/", 200, "审计日志"),
    ("hq_admin", "/members/{member}/erase/", 200, "确认注销"),
    ("hq_admin", "/settings/custom-fields/", 200, "skin"),
    ("hq_admin", "/settings/custom-fields/new/", 200, "字段键"),
    ("hq_admin", "/settings/custom-fields/skin/edit/", 200, "肤质"),
    ("hq_admin", "/settings/staff/", 200, "manager1"),
    ("hq_admin", "/settings/staff/new/", 200, "初始密码"),
    ("hq_admin", "/settings/staff/{manager}/", 200, "编辑员工"),
    ("hq_admin", "/settings/stores/", 200, "徐汇店"),
    ("hq_admin", "/settings/stores/new/", 200, "门店编码"),
    ("hq_admin", "/settings/stores/{store1}/", 200, "静安店"),
    ("hq_admin", "/members/99999/", 404, "找不到页面"),
    ("hq_admin", "/no-such-page/", 404, "找不到页面"),
]


@pytest.mark.parametrize(("role", "path", "status", "text"), PAGES)
def test_page(role, path, status, text, request, store1, store2, make_member, hq_admin, manager, actor_for, client_for):
    custom_field_save(actor=actor_for(hq_admin), key="skin", label_zh="肤质", label_en="Skin type")
    member = make_member(store1)
    staff = request.getfixturevalue(role)
    url = path.format(member=member.pk, manager=manager.pk, store1=store1.pk)

    response = client_for(staff).get(url)

    assert response.status_code == status
    assert text in response.content.decode()


def test_pages_carry_no_inline_scripts(receptionist, store1, make_member, client_for):
    """The CSP (script-src 'self') refuses inline scripts and event handlers, so the pages have none."""
    member = make_member(store1)
    client = client_for(receptionist)
    for url in ("/members/", "/members/new/", f"/members/{member.pk}/", f"/members/{member.pk}/edit/", "/login/"):
        content = client.get(url).content.decode()
        assert "<script>" not in content
        assert " onclick=" not in content and " onchange=" not in content and " onsubmit=" not in content
        assert "//cdn" not in content and "https://" not in content
    content = client.get("/members/").content.decode()
    assert '<script src="/static/vendor/htmx/htmx.min.js" defer></script>' in content
    assert '<script src="/static/frontdesk/frontdesk.js" defer></script>' in content


def test_static_assets_are_found():
    from django.contrib.staticfiles import finders

    for path in (
        "vendor/htmx/htmx.min.js",
        "frontdesk/frontdesk.js",
        "frontdesk/frontdesk.css",
        "frontdesk/favicon.svg",
    ):
        assert finders.find(path), path
