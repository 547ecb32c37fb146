from __future__ import annotations

import pytest

from meiye.members.models import ConsentPurpose, CustomField, FieldType, Retention
from meiye.members.services import custom_field_save


@pytest.fixture
def allergies(hq_admin, actor_for) -> CustomField:
    return custom_field_save(
        actor=actor_for(hq_admin),
        key="allergies",
        label_zh="过敏史",
        label_en="Allergies",
        health=True,
        retention=Retention.KEEP,
        retention_reason="医疗美容病历保存（医疗机构病历管理规定）",
    )


@pytest.fixture
def skin_type(hq_admin, actor_for) -> CustomField:
    return custom_field_save(
        actor=actor_for(hq_admin),
        key="skin_type",
        label_zh="肤质",
        label_en="Skin type",
        field_type=FieldType.CHOICE,
        choices=["干性", "油性", "混合", "敏感"],
    )


ALL_CONSENTS = [(ConsentPurpose.DATA, True), (ConsentPurpose.HEALTH, True), (ConsentPurpose.PHOTO, True)]
