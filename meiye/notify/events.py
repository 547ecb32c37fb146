"""The events Meiye tells members about, their variables and their default wording (zh-hans and en).

Placeholders are ``{name}``. Every event also has the standard variables: ``{name}`` (the member's name),
``{member_no}``, ``{org}`` (the organisation) and ``{store}`` (the store the event happened in, else the
member's home store). Callers pass the event's variables in ``context``: money as ``Money`` or as an integer
``*_fen`` (``amount_fen=12345`` fills ``{amount}`` with "¥123.45"), points as integers ("1,200"), dates as
``date`` ("2026年12月31日" / "2026-12-31"), and any value as a ``{"zh-hans": …, "en": …}`` dict to give
it per language (a campaign's text).

Marketing events need the member's marketing consent for the channel and wait out quiet hours; the others
(transactional: a charge, a recharge, points earned …) go out at once. An organisation may reclassify
events (``NotifySettings.marketing_events``).
"""

from __future__ import annotations

from dataclasses import dataclass

STANDARD_VARIABLES = ("name", "member_no", "org", "store")


@dataclass(frozen=True)
class EventSpec:
    key: str
    label: str  # "中文 English", shown with the front desk's bilingual filter
    marketing: bool
    required: tuple[str, ...]
    optional: tuple[str, ...]
    # language -> (subject, body)
    defaults: dict[str, tuple[str, str]]

    @property
    def variables(self) -> tuple[str, ...]:
        return (*STANDARD_VARIABLES, *self.required, *self.optional)


WALLET_CHARGE = "wallet.charge"
WALLET_RECHARGE = "wallet.recharge"
POINTS_EARNED = "points.earned"
POINTS_EXPIRING = "points.expiring"
MEMBER_BIRTHDAY = "member.birthday"
COUPON_ISSUED = "coupon.issued"
TIER_CHANGED = "tier.changed"
CAMPAIGN = "campaign"
WALLET_PAYMENT_CODE = "wallet.payment_code"
WALLET_BONUS_RELEASED = "wallet.bonus_released"
PACKAGE_EXPIRING = "package.expiring"

EVENTS: dict[str, EventSpec] = {
    spec.key: spec
    for spec in (
        EventSpec(
            key=WALLET_CHARGE,
            label="储值消费 Stored-value charge",
            marketing=False,
            required=("amount", "balance"),
            optional=(),
            defaults={
                "zh-hans": (
                    "储值消费提醒",
                    "{name}您好，您的储值账户在{store}消费 {amount}，当前余额 {balance}。如非本人操作，请立即联系门店。",
                ),
                "en": (
                    "Stored-value charge",
                    "Dear {name}, your stored value was charged {amount} at {store}. New balance: {balance}. "
                    "If this was not you, contact the store at once.",
                ),
            },
        ),
        EventSpec(
            key=WALLET_RECHARGE,
            label="储值充值 Recharge",
            marketing=False,
            required=("amount", "balance"),
            optional=("bonus",),
            defaults={
                "zh-hans": ("充值成功", "{name}您好，您已充值 {amount}，当前储值余额 {balance}。感谢您的信任！"),
                "en": (
                    "Recharge received",
                    "Dear {name}, your recharge of {amount} was received. Stored-value balance: {balance}. Thank you!",
                ),
            },
        ),
        EventSpec(
            key=POINTS_EARNED,
            label="获得积分 Points earned",
            marketing=False,
            required=("points", "points_balance"),
            optional=(),
            defaults={
                "zh-hans": ("积分到账", "{name}您好，您本次获得 {points} 积分，当前积分 {points_balance}。"),
                "en": ("Points earned", "Dear {name}, you earned {points} points. Points balance: {points_balance}."),
            },
        ),
        EventSpec(
            key=POINTS_EXPIRING,
            label="积分即将到期 Points expiring",
            marketing=False,
            required=("points", "date"),
            optional=(),
            defaults={
                "zh-hans": ("积分到期提醒", "{name}您好，您有 {points} 积分将于 {date} 到期，请及时使用。"),
                "en": (
                    "Points expiring",
                    "Dear {name}, {points} of your points expire on {date}. Use them before then.",
                ),
            },
        ),
        EventSpec(
            key=MEMBER_BIRTHDAY,
            label="会员生日 Birthday",
            marketing=True,
            required=(),
            optional=(),
            defaults={
                "zh-hans": ("生日快乐", "{name}您好，{org}祝您生日快乐！生日当月到店可享会员生日礼遇。"),
                "en": (
                    "Happy birthday",
                    "Dear {name}, {org} wishes you a happy birthday! Visit us this month for your birthday treat.",
                ),
            },
        ),
        EventSpec(
            key=COUPON_ISSUED,
            label="优惠券发放 Coupon issued",
            marketing=True,
            required=("coupon", "valid_until"),
            optional=(),
            defaults={
                "zh-hans": ("优惠券到账", "{name}您好，您获得一张优惠券「{coupon}」，有效期至 {valid_until}。"),
                "en": ("New coupon", "Dear {name}, you received a coupon: {coupon}, valid until {valid_until}."),
            },
        ),
        EventSpec(
            key=TIER_CHANGED,
            label="会员等级变更 Tier changed",
            marketing=False,
            required=("tier",),
            optional=("old_tier",),
            defaults={
                "zh-hans": ("会员等级变更", "{name}您好，您的会员等级已变更为{tier}。"),
                "en": ("Your tier", "Dear {name}, your membership tier is now {tier}."),
            },
        ),
        EventSpec(
            key=WALLET_PAYMENT_CODE,
            label="储值支付验证码 Stored-value payment code",
            marketing=False,
            required=("code", "minutes"),
            optional=("amount",),
            defaults={
                "zh-hans": (
                    "支付验证码",
                    "{name}您好，您的储值支付验证码为 {code}，{minutes} 分钟内有效。请勿告诉他人，包括门店员工。",
                ),
                "en": (
                    "Payment code",
                    "Dear {name}, your stored-value payment code is {code}, valid for {minutes} minutes. "
                    "Tell no one, not even the store's staff.",
                ),
            },
        ),
        EventSpec(
            key=WALLET_BONUS_RELEASED,
            label="赠送金到账 Bonus instalment released",
            marketing=False,
            required=("amount", "balance"),
            optional=("remaining",),
            defaults={
                "zh-hans": ("赠送金到账", "{name}您好，您的充值赠送金 {amount} 已到账，当前储值余额 {balance}。"),
                "en": (
                    "Bonus released",
                    "Dear {name}, a bonus instalment of {amount} was added to your stored value. Balance: {balance}.",
                ),
            },
        ),
        EventSpec(
            key=PACKAGE_EXPIRING,
            label="次卡即将到期 Package expiring",
            marketing=False,
            required=("package", "sessions", "date"),
            optional=(),
            defaults={
                "zh-hans": (
                    "次卡到期提醒",
                    "{name}您好，您的{package}还剩 {sessions} 次，将于 {date} 到期，请及时预约。",
                ),
                "en": (
                    "Package expiring",
                    "Dear {name}, your {package} has {sessions} sessions left and expires on {date}. Book soon.",
                ),
            },
        ),
        EventSpec(
            key=CAMPAIGN,
            label="营销活动 Campaign",
            marketing=True,
            required=("text",),
            optional=("subject",),
            defaults={
                "zh-hans": ("{subject}", "{text}"),
                "en": ("{subject}", "{text}"),
            },
        ),
    )
}

DEFAULT_MARKETING_EVENTS = tuple(key for key, spec in EVENTS.items() if spec.marketing)
DEFAULT_CHANNELS = ("sms",)


def event_spec(event: str) -> EventSpec:
    """The event's definition; an unknown event is a programming error."""
    try:
        return EVENTS[event]
    except KeyError:
        raise ValueError(f"unknown notification event {event!r}; expected one of {sorted(EVENTS)}") from None
