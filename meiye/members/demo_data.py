"""The demo chain 丽颜美业 Liyan Beauty, for ``manage.py seed_demo``: stores, staff, custom fields and a
deterministic generator of members.

Every member is a pure function of her index (``member_spec(i)``): the same index always gives the same
name, phone, birthday, consents… whatever ``--members`` is, so seeding is repeatable and a second run can
recognise what the first one wrote (by the phone's blind index).

Phones are syntactically valid mainland mobile numbers (1[3-9] + 9 digits) and may well belong to real
people: never connect a demo database to an SMS or WeChat gateway. E-mail addresses use the reserved
example.com / example.net / example.org domains (RFC 2606), so no real mailbox can receive anything.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from meiye.members.models import Channel, ConsentPurpose, FieldType, Gender, Retention
from meiye.org.roles import Position

ORG_CODE = "liyan"
ORG_NAME = "丽颜美业 Liyan Beauty"
DEMO_PASSWORD = "meiye-demo-2026"  # noqa: S105 - published on purpose: demo accounts only
DEFAULT_MEMBERS = 2000
MAX_MEMBERS = 10_000_000
SEED = 20260101
CONSENT_VERSION = "v1"

# --- Stores --------------------------------------------------------------------------------------------------

_WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _hours(weekday: tuple[str, str], weekend: tuple[str, str]) -> dict[str, list[str]]:
    return {day: list(weekend if day in ("sat", "sun") else weekday) for day in _WEEK}


STORES: list[dict[str, Any]] = [
    {
        "code": "jingan",
        "name": "静安店",
        "address": "上海市静安区南京西路 1788 号 3 楼 301 室",
        "phone": "021-62881234",
        "time_zone": "Asia/Shanghai",
        "opening_hours": _hours(("10:00", "21:30"), ("10:00", "22:00")),
    },
    {
        "code": "xuhui",
        "name": "徐汇店",
        "address": "上海市徐汇区天钥桥路 580 号 2 楼",
        "phone": "021-64265678",
        "time_zone": "Asia/Shanghai",
        "opening_hours": _hours(("10:00", "21:00"), ("09:30", "21:30")),
    },
    {
        "code": "pudong",
        "name": "浦东店",
        "address": "上海市浦东新区张杨路 1000 号 B1 层",
        "phone": "021-58309876",
        "time_zone": "Asia/Shanghai",
        "opening_hours": _hours(("10:30", "21:00"), ("10:00", "21:00")),
    },
]
STORE_WEIGHTS = (40, 35, 25)  # share of members per store, in STORES order

# --- Staff: 12 accounts covering every position, one password -----------------------------------------------


@dataclass(frozen=True)
class StaffSpec:
    username: str
    display_name: str
    position: str
    stores: tuple[str, ...]  # store codes; HQ roles have none and see every store


STAFF: list[StaffSpec] = [
    StaffSpec("admin", "陈静", Position.HQ_ADMIN, ()),
    StaffSpec("finance", "刘芳", Position.FINANCE, ()),
    StaffSpec("manager1", "王丽", Position.STORE_MANAGER, ("jingan",)),
    StaffSpec("manager2", "张敏", Position.STORE_MANAGER, ("xuhui",)),
    StaffSpec("manager3", "李娜", Position.STORE_MANAGER, ("pudong",)),
    StaffSpec("front1", "赵婷婷", Position.RECEPTIONIST, ("jingan",)),
    StaffSpec("front2", "周雨欣", Position.RECEPTIONIST, ("xuhui",)),
    StaffSpec("front3", "吴佳怡", Position.RECEPTIONIST, ("pudong",)),
    StaffSpec("beauty1", "孙晓燕", Position.BEAUTICIAN, ("jingan",)),
    StaffSpec("beauty2", "郑丹丹", Position.BEAUTICIAN, ("xuhui",)),
    StaffSpec("senior1", "黄秀英", Position.SENIOR_BEAUTICIAN, ("pudong", "jingan")),
    StaffSpec("consult1", "林思琪", Position.CONSULTANT, ("jingan", "xuhui")),
]
# Who registers a store's members (``created_by`` and ``recorded_by`` of their consents).
FRONT_DESK = {"jingan": "front1", "xuhui": "front2", "pudong": "front3"}
# 偏好美容师 values per store: the beauticians working there.
STORE_BEAUTICIANS = {"jingan": ("孙晓燕", "黄秀英"), "xuhui": ("郑丹丹",), "pudong": ("黄秀英",)}

# --- Custom fields and tags -------------------------------------------------------------------------------------

SKIN_TYPES = ["干性", "油性", "混合", "中性", "敏感"]
INTERESTS = ["面部护理", "身体护理", "美甲", "美睫", "脱毛", "抗衰", "祛痘", "头皮护理"]
PREFERRED_TIMES = ["工作日白天", "工作日晚上", "周末"]

ALLERGIES_RETENTION_REASON = (
    "医疗美容治疗记录（含过敏史）属病历资料，依《医疗机构病历管理规定》须自最后一次就诊起保存不少于 15 年；"
    "注销时限制访问保留。"
)

CUSTOM_FIELDS: list[dict[str, Any]] = [
    {
        "key": "skin_type",
        "label_zh": "肤质",
        "label_en": "Skin type",
        "field_type": FieldType.CHOICE,
        "choices": SKIN_TYPES,
        "order": 10,
    },
    {
        "key": "allergies",
        "label_zh": "过敏史",
        "label_en": "Allergies",
        "field_type": FieldType.TEXT,
        "sensitive": True,
        "health": True,
        "retention": Retention.KEEP,
        "retention_reason": ALLERGIES_RETENTION_REASON,
        "order": 20,
    },
    {
        "key": "favourite",
        "label_zh": "偏好美容师",
        "label_en": "Favourite beautician",
        "field_type": FieldType.TEXT,
        "order": 30,
    },
    {
        "key": "interests",
        "label_zh": "关注项目",
        "label_en": "Interested in",
        "field_type": FieldType.MULTI,
        "choices": INTERESTS,
        "order": 40,
    },
    {
        "key": "preferred_time",
        "label_zh": "偏好到店时段",
        "label_en": "Preferred visit time",
        "field_type": FieldType.CHOICE,
        "choices": PREFERRED_TIMES,
        "order": 50,
    },
]

TAGS = ["VIP", "新客", "老客户", "敏感肌", "学生", "孕期关怀", "高频到店", "沉睡会员", "企业客户"]

# --- Names -------------------------------------------------------------------------------------------------------

# The most common surnames, roughly by frequency (weights are coarse tiers), and a few compound ones.
_SURNAMES_COMMON = "王李张刘陈杨黄赵吴周"
_SURNAMES_FREQUENT = "徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
_SURNAMES_OTHER = "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严武戴莫孔向汤"
SURNAMES: list[str] = (
    list(_SURNAMES_COMMON) + list(_SURNAMES_FREQUENT) + list(_SURNAMES_OTHER) + ["欧阳", "上官", "司马"]
)
SURNAME_WEIGHTS: list[int] = (
    [12] * len(_SURNAMES_COMMON) + [4] * len(_SURNAMES_FREQUENT) + [2] * len(_SURNAMES_OTHER) + [1, 1, 1]
)

FEMALE_GIVEN = [
    "丽华",
    "秀英",
    "婷婷",
    "静怡",
    "雨欣",
    "思琪",
    "欣怡",
    "佳怡",
    "梓涵",
    "诗涵",
    "晓燕",
    "海燕",
    "丽娟",
    "秀兰",
    "桂英",
    "玉兰",
    "红梅",
    "雪梅",
    "丹丹",
    "晶晶",
    "莉莉",
    "倩倩",
    "佳琪",
    "梦瑶",
    "雅琴",
    "慧敏",
    "晓雯",
    "文静",
    "美玲",
    "春燕",
    "亚楠",
    "若曦",
    "一诺",
    "可馨",
    "子萱",
    "语嫣",
    "梦琪",
    "紫涵",
    "雨桐",
    "嘉怡",
    "欣妍",
    "佳慧",
    "晓丽",
    "玉梅",
    "丽萍",
    "淑华",
    "美华",
    "凤英",
    "艳红",
    "雅婷",
    "颖",
    "静",
    "敏",
    "丽",
    "艳",
    "娟",
    "芳",
    "燕",
    "霞",
    "琳",
    "洁",
    "萍",
    "蕾",
    "倩",
    "薇",
    "璐",
    "瑶",
    "雯",
    "琪",
    "悦",
    "馨",
    "妍",
]
MALE_GIVEN = [
    "伟",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "杰",
    "涛",
    "明",
    "超",
    "浩然",
    "子轩",
    "宇航",
    "俊杰",
    "志强",
    "建华",
    "文博",
    "一鸣",
    "晨阳",
    "家豪",
]

NOTES = [
    "喜欢安静的包间",
    "怕痛，手法请轻一些",
    "周末常带孩子来，需要儿童休息区",
    "对价格敏感，优先推荐套餐",
    "需要开具增值税普通发票",
    "不喝茶，准备温水",
    "只接受预约时段服务",
    "上次护理后反馈很好，想继续同一疗程",
]

_DISTRICTS = ["静安区", "徐汇区", "浦东新区", "长宁区", "黄浦区", "普陀区", "闵行区", "杨浦区"]
_ROADS = ["南京西路", "淮海中路", "天钥桥路", "张杨路", "延安西路", "长寿路", "世纪大道", "虹桥路", "漕溪北路"]
_EMAIL_DOMAINS = ["example.com", "example.net", "example.org"]
_EMAIL_WORDS = ["lily", "amy", "grace", "vivian", "cathy", "joy", "luna", "mia", "sunny", "coco", "yoyo", "jenny"]

CHANNELS = [
    (Channel.WALK_IN, 30),
    (Channel.MEITUAN, 20),
    (Channel.DOUYIN, 12),
    (Channel.XIAOHONGSHU, 12),
    (Channel.WECHAT, 10),
    (Channel.REFERRAL, 10),
    (Channel.EVENT, 4),
    (Channel.OTHER, 2),
]
_CHANNEL_VALUES = [str(c) for c, _ in CHANNELS]
_CHANNEL_WEIGHTS = [w for _, w in CHANNELS]

ALLERGY_VALUES = [
    "青霉素过敏",
    "对酒精类护肤品过敏",
    "对果酸敏感",
    "花粉过敏",
    "海鲜过敏",
    "对含香精产品过敏",
    "乳胶过敏",
    "对烟酰胺轻度不耐受",
]

# --- Phones: a bijection from member index to a unique mobile number ----------------------------------------------

MOBILE_PREFIXES = [
    "138",
    "139",
    "137",
    "136",
    "135",
    "134",
    "150",
    "151",
    "152",
    "157",
    "158",
    "159",
    "182",
    "183",
    "187",
    "188",
    "130",
    "131",
    "132",
    "155",
    "156",
    "185",
    "186",
    "176",
    "133",
    "153",
    "180",
    "181",
    "189",
    "177",
    "199",
    "173",
    "166",
    "198",
]
_SUFFIX_SPACE = 10**8
_SUFFIX_MULTIPLIER = 48271  # odd and not a multiple of 5: coprime with 10**8, so the map is a permutation
_SUFFIX_OFFSET = 26_041_733
# Phones of the deliberate duplicates come from indexes far above any --members value.
DUPLICATE_PHONE_BASE = len(MOBILE_PREFIXES) * _SUFFIX_SPACE - 1000


def phone_for(index: int) -> str:
    """The phone of member ``index``: distinct indexes always give distinct numbers."""
    prefix = MOBILE_PREFIXES[index % len(MOBILE_PREFIXES)]
    suffix = (index // len(MOBILE_PREFIXES) * _SUFFIX_MULTIPLIER + _SUFFIX_OFFSET) % _SUFFIX_SPACE
    return f"{prefix}{suffix:08d}"


# --- Deliberate duplicates: same name and birthday as an earlier member, another phone ---------------------------

# Member index each duplicate copies; a duplicate exists only when its original is within --members.
DUPLICATE_OF = (3, 13, 23, 33, 43)


def duplicates_for(count: int) -> list[int]:
    """Which duplicates (positions in DUPLICATE_OF) a run with ``count`` members seeds."""
    return [j for j, original in enumerate(DUPLICATE_OF) if original < count]


# --- Members ------------------------------------------------------------------------------------------------------

REFERRER_POOL = 200  # referrals point at one of the first members (loyal customers bring friends)
_BIRTHDAY_REFERENCE = date(2025, 1, 1)  # fixed, so birthdays do not drift with the calendar


@dataclass
class MemberSpec:
    index: int
    name: str
    gender: str
    phone: str
    birthday: date | None
    store: int  # position in STORES
    channel: str
    email: str | None = None
    address: str | None = None
    notes: str = ""
    tags: list[str] = field(default_factory=list)
    consents: list[tuple[str, bool]] = field(default_factory=list)
    custom: dict[str, Any] = field(default_factory=dict)
    sensitive: dict[str, Any] = field(default_factory=dict)
    referrer: int | None = None  # index of the referring member
    duplicate_of: int | None = None


def _rng(index: int) -> random.Random:
    return random.Random(SEED * 1_000_003 + index)  # noqa: S311 - demo data, not security


def _birthday(rng: random.Random) -> date:
    age_days = int(rng.triangular(18, 62, 34) * 365.25)
    return _BIRTHDAY_REFERENCE - timedelta(days=age_days + rng.randrange(365))


def _name(rng: random.Random, gender: str) -> str:
    surname = rng.choices(SURNAMES, SURNAME_WEIGHTS)[0]
    given = rng.choice(MALE_GIVEN if gender == Gender.MALE else FEMALE_GIVEN)
    return surname + given


def member_spec(index: int) -> MemberSpec:
    """Everything about member ``index`` (0-based), the same on every run."""
    rng = _rng(index)
    roll = rng.random()
    gender = Gender.FEMALE if roll < 0.9 else Gender.MALE if roll < 0.98 else Gender.UNKNOWN
    # Duplicates copy the birthday of their original, so originals always have one.
    has_birthday = index in DUPLICATE_OF or rng.random() < 0.95
    spec = MemberSpec(
        index=index,
        name=_name(rng, gender),
        gender=str(gender),
        phone=phone_for(index),
        birthday=_birthday(rng) if has_birthday else None,
        store=rng.choices(range(len(STORES)), STORE_WEIGHTS)[0],
        channel=rng.choices(_CHANNEL_VALUES, _CHANNEL_WEIGHTS)[0],
    )
    if rng.random() < 0.25:
        spec.email = f"{rng.choice(_EMAIL_WORDS)}{index}@{rng.choice(_EMAIL_DOMAINS)}"
    if rng.random() < 0.15:
        spec.address = f"上海市{rng.choice(_DISTRICTS)}{rng.choice(_ROADS)} {rng.randint(1, 2000)} 号"
    if rng.random() < 0.1:
        spec.notes = rng.choice(NOTES)
    if rng.random() < 0.6:
        spec.tags = sorted(rng.sample(TAGS, rng.choice((1, 1, 2))))
    health = rng.random() < 0.85
    spec.consents = [(ConsentPurpose.DATA, True), (ConsentPurpose.HEALTH, health)]
    if rng.random() < 0.4:
        spec.consents.append((ConsentPurpose.PHOTO, True))
    if rng.random() < 0.5:
        spec.consents.append((ConsentPurpose.MARKETING_SMS, True))
    if rng.random() < 0.6:
        spec.consents.append((ConsentPurpose.MARKETING_WECHAT, True))
    if spec.email and rng.random() < 0.3:
        spec.consents.append((ConsentPurpose.MARKETING_EMAIL, True))
    spec.consents = [(str(purpose), granted) for purpose, granted in spec.consents]
    if rng.random() < 0.8:
        spec.custom["skin_type"] = rng.choice(SKIN_TYPES)
    if rng.random() < 0.3:
        spec.custom["favourite"] = rng.choice(STORE_BEAUTICIANS[STORES[spec.store]["code"]])
    if rng.random() < 0.5:
        spec.custom["interests"] = sorted(rng.sample(INTERESTS, rng.randint(1, 3)), key=INTERESTS.index)
    if rng.random() < 0.4:
        spec.custom["preferred_time"] = rng.choice(PREFERRED_TIMES)
    # Health data only with health consent (the service refuses it otherwise).
    if health and rng.random() < 0.5:
        spec.sensitive["allergies"] = "无" if rng.random() < 0.6 else rng.choice(ALLERGY_VALUES)
    if spec.channel == Channel.REFERRAL and index > 0 and rng.random() < 0.5:
        spec.referrer = rng.randrange(min(index, REFERRER_POOL))
    return spec


def duplicate_spec(position: int) -> MemberSpec:
    """The ``position``-th deliberate duplicate: her original's name, birthday, gender and store, another
    phone; the rest of her profile is her own. No referrer."""
    original = member_spec(DUPLICATE_OF[position])
    index = DUPLICATE_PHONE_BASE + position
    own = member_spec(index)
    own.name, own.birthday, own.gender, own.store = original.name, original.birthday, original.gender, original.store
    own.custom.pop("favourite", None)
    own.channel = str(Channel.WALK_IN) if own.channel == Channel.REFERRAL else own.channel
    own.referrer = None
    own.duplicate_of = original.index
    return own
