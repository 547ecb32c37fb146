"""Serializers parse input into service arguments and shape results; they never write.

Member representations are masked (``members.selectors.member_view``); full values only via reveal.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from meiye.core.crypto import mask_phone
from meiye.members.models import (
    Channel,
    ConsentChannel,
    ConsentPurpose,
    Gender,
    Member,
    MemberStatus,
)
from meiye.members.selectors import MemberView
from meiye.members.services import MemberInput
from meiye.org.roles import Position

# --- Stores and staff ---------------------------------------------------------------------------------------


class StoreRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()


class StoreSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    address = serializers.CharField()
    phone = serializers.CharField()
    time_zone = serializers.CharField()
    opening_hours = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text='Per weekday, e.g. {"mon": ["10:00", "21:00"]}; a missing day is closed.',
    )
    is_active = serializers.BooleanField()


class StaffSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    display_name = serializers.CharField()
    position = serializers.ChoiceField(choices=Position.choices)
    position_label = serializers.CharField(source="get_position_display")
    is_active = serializers.BooleanField()
    stores = StoreRefSerializer(many=True, source="stores.all")


class OrganisationRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()


class MeSerializer(serializers.Serializer):
    """Who is calling: shaped from ``{"staff", "organisation", "store", "stores"}``."""

    id = serializers.IntegerField(source="staff.pk")
    username = serializers.CharField(source="staff.username")
    display_name = serializers.CharField(source="staff.display_name")
    position = serializers.ChoiceField(choices=Position.choices, source="staff.position")
    position_label = serializers.CharField(source="staff.get_position_display")
    permissions = serializers.ListField(child=serializers.CharField(), source="permissions_sorted")
    sees_all_stores = serializers.BooleanField(source="staff.sees_all_stores")
    organisation = OrganisationRefSerializer()
    acting_store = StoreRefSerializer(
        source="store", allow_null=True, help_text="The store the API acts from (X-Store-Id or the default)."
    )
    stores = StoreRefSerializer(many=True, help_text="Every store the staff member may see.")


# --- Members: output ------------------------------------------------------------------------------------------


class MemberRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    member_no = serializers.CharField()


class CustomValueSerializer(serializers.Serializer):
    key = serializers.CharField(source="field.key")
    label_zh = serializers.CharField(source="field.label_zh")
    label_en = serializers.CharField(source="field.label_en")
    field_type = serializers.CharField(source="field.field_type")
    value = serializers.JSONField(allow_null=True, help_text="Null for protected (sensitive or health) fields.")
    display = serializers.CharField(source="shown", help_text="As shown on screen; masked when protected.")
    masked = serializers.BooleanField()
    blocked_by_consent = serializers.BooleanField(help_text="A health field hidden: no health-data consent.")


class MemberSerializer(serializers.Serializer):
    """A member as a staff member may see her: phone, ID number, email and address masked."""

    id = serializers.IntegerField(source="member.pk")
    member_no = serializers.CharField(source="member.member_no")
    name = serializers.CharField(source="member.name")
    gender = serializers.ChoiceField(choices=Gender.choices, source="member.gender")
    phone = serializers.CharField(help_text="Masked, e.g. 138****5678. Full value: POST …/reveal/.")
    id_number = serializers.CharField(help_text="Masked, e.g. 1101**********1234.")
    email = serializers.CharField(help_text="Masked, e.g. w***@example.com.")
    address = serializers.CharField(help_text="Masked: ****** when recorded.")
    birthday = serializers.DateField(source="member.birthday", allow_null=True)
    channel = serializers.ChoiceField(choices=Channel.choices, source="member.channel")
    referrer = serializers.SerializerMethodField()
    home_store = StoreRefSerializer(source="member.home_store")
    tags = serializers.SerializerMethodField()
    notes = serializers.CharField(source="member.notes")
    status = serializers.ChoiceField(choices=MemberStatus.choices, source="member.status")
    restricted = serializers.BooleanField(source="member.restricted")
    custom = CustomValueSerializer(many=True)
    consents = serializers.DictField(
        child=serializers.BooleanField(), help_text="Current consent per purpose (data, health, photo, marketing_*)."
    )
    can_reveal = serializers.DictField(child=serializers.BooleanField())
    photo_visible = serializers.BooleanField()
    created_at = serializers.DateTimeField(source="member.created_at")
    updated_at = serializers.DateTimeField(source="member.updated_at")

    @extend_schema_field(MemberRefSerializer(allow_null=True))
    def get_referrer(self, view: MemberView) -> dict[str, Any] | None:
        referrer = view.member.referrer
        return {"id": referrer.pk, "member_no": referrer.member_no} if referrer is not None else None

    def get_tags(self, view: MemberView) -> list[str]:
        return sorted(tag.name for tag in view.member.tags.all())


class MemberSummarySerializer(serializers.Serializer):
    """A row of the member list: masked phone, no custom fields (one query for the whole page)."""

    id = serializers.IntegerField()
    member_no = serializers.CharField()
    name = serializers.CharField()
    gender = serializers.ChoiceField(choices=Gender.choices)
    phone = serializers.SerializerMethodField(help_text="Masked, e.g. 138****5678.")
    home_store = StoreRefSerializer()
    status = serializers.ChoiceField(choices=MemberStatus.choices)
    tags = serializers.SerializerMethodField()

    def get_phone(self, member: Member) -> str:
        return mask_phone(member.phone or "")

    def get_tags(self, member: Member) -> list[str]:
        return sorted(tag.name for tag in member.tags.all())


# --- Members: input -------------------------------------------------------------------------------------------

_MEMBER_INPUT_FIELDS = (
    "name",
    "phone",
    "gender",
    "birthday",
    "email",
    "address",
    "id_number",
    "channel",
    "referrer_id",
    "home_store_id",
    "tags",
    "notes",
    "custom",
)


class _MemberFieldsSerializer(serializers.Serializer):
    """Types only; the business rules (phone format, ID checksum, visibility) are the service's."""

    name = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    phone = serializers.CharField(required=False, allow_blank=True, help_text="11-digit mainland mobile.")
    gender = serializers.ChoiceField(choices=Gender.choices, required=False)
    birthday = serializers.DateField(required=False, help_text="YYYY-MM-DD, not in the future.")
    email = serializers.CharField(required=False, allow_blank=True, help_text="Empty string clears it.")
    address = serializers.CharField(required=False, allow_blank=True, help_text="Empty string clears it.")
    id_number = serializers.CharField(
        required=False, allow_blank=True, help_text="18-character resident ID; empty string clears it."
    )
    channel = serializers.ChoiceField(choices=Channel.choices, required=False)
    referrer_id = serializers.IntegerField(required=False, min_value=1, help_text="A member visible to you.")
    home_store_id = serializers.IntegerField(
        required=False, min_value=1, help_text="A store you may see; default: the acting store."
    )
    tags = serializers.ListField(child=serializers.CharField(max_length=30), required=False)
    notes = serializers.CharField(required=False, allow_blank=True)
    custom = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        required=False,
        help_text="Custom field values by key (e.g. skin_type); null or empty clears one.",
    )

    def to_member_input(self) -> MemberInput:
        data = self.validated_data
        return MemberInput(**{name: data[name] for name in _MEMBER_INPUT_FIELDS if name in data})


class ConsentGrantSerializer(serializers.Serializer):
    purpose = serializers.ChoiceField(choices=ConsentPurpose.choices)
    granted = serializers.BooleanField()


class MemberCreateSerializer(_MemberFieldsSerializer):
    name = serializers.CharField(trim_whitespace=False)
    phone = serializers.CharField(help_text="11-digit mainland mobile, e.g. 13812345678.")
    consents = ConsentGrantSerializer(
        many=True,
        required=False,
        help_text="Consents given at registration, recorded before custom fields are checked.",
    )
    consent_version = serializers.CharField(required=False, default="v1", max_length=20)
    consent_channel = serializers.ChoiceField(
        choices=ConsentChannel.choices, required=False, default=ConsentChannel.API
    )

    def consent_list(self) -> list[tuple[str, bool]]:
        return [(item["purpose"], item["granted"]) for item in self.validated_data.get("consents", [])]


class MemberUpdateSerializer(_MemberFieldsSerializer):
    """Only the fields sent are changed."""


class RevealRequestSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="phone, id_number, email, address or custom.<key>.")


class RevealResultSerializer(serializers.Serializer):
    field = serializers.CharField()
    value = serializers.CharField(help_text="The full, unmasked value. This reveal is recorded in the audit log.")


class EraseRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="Why (e.g. the member's written request of 2026-05-01).")


class ErasureSerializer(serializers.Serializer):
    member_id = serializers.IntegerField()
    member_no = serializers.CharField(source="member.member_no")
    status = serializers.ChoiceField(choices=MemberStatus.choices, source="member.status")
    reason = serializers.CharField()
    erased_fields = serializers.ListField(child=serializers.CharField())
    kept_fields = serializers.ListField(
        child=serializers.DictField(child=serializers.CharField()),
        help_text='Kept (restricted) as the law requires: [{"field": ..., "why": ...}].',
    )
    at = serializers.DateTimeField()


class ConsentRequestSerializer(serializers.Serializer):
    purpose = serializers.ChoiceField(choices=ConsentPurpose.choices)
    granted = serializers.BooleanField(help_text="true: consent given; false: withdrawn (takes effect at once).")
    text_version = serializers.CharField(max_length=20, help_text="Version of the consent text shown, e.g. v1.")
    consent_channel = serializers.ChoiceField(
        choices=ConsentChannel.choices, default=ConsentChannel.API, help_text="How the member gave it."
    )


class ConsentRecordSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    member_id = serializers.IntegerField()
    purpose = serializers.ChoiceField(choices=ConsentPurpose.choices)
    granted = serializers.BooleanField()
    text_version = serializers.CharField()
    consent_channel = serializers.ChoiceField(choices=ConsentChannel.choices, source="channel")
    at = serializers.DateTimeField()
