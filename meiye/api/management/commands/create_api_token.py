"""``manage.py create_api_token <username> --name NAME``: a per-staff API token, printed once."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from meiye.core.errors import ApplicationError
from meiye.org.context import Actor
from meiye.org.models import Staff
from meiye.org.services import api_token_create


class Command(BaseCommand):
    help = (
        "Create an API token for a staff member and print it once (only a hash is stored). "
        "为员工创建 API 令牌并仅显示一次（系统只保存其哈希）。"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="The staff member's sign-in name / 员工登录名")
        parser.add_argument("--name", required=True, help="What the token is for, e.g. 'booking-sync' / 令牌用途")

    def handle(self, *args: Any, **options: Any) -> None:
        username: str = options["username"]
        staff = Staff.objects.select_related("organisation").filter(username=username).first()
        if staff is None:
            raise CommandError(f"找不到登录名为 {username!r} 的员工。 / No staff member with username {username!r}.")
        if not staff.is_active:
            raise CommandError(f"员工 {username!r} 已停用。 / Staff member {username!r} is deactivated.")
        if staff.organisation is None:
            raise CommandError(
                f"员工 {username!r} 不属于任何品牌，不能使用 API。 / "
                f"Staff member {username!r} belongs to no organisation and cannot use the API."
            )
        try:
            token, secret = api_token_create(actor=Actor.system(staff.organisation), staff=staff, name=options["name"])
        except ApplicationError as exc:
            raise CommandError(f"{exc.message_zh} / {exc.message_en}") from None
        self.stderr.write(
            f"已为 {staff.username} 创建 API 令牌 {token.prefix}（{token.name}）。请立即保存，之后无法再次查看。\n"
            f"API token {token.prefix} ({token.name}) created for {staff.username}. "
            "Store it now: it cannot be shown again."
        )
        self.stdout.write(secret)
