"""Writes for members: create, update, reveal (audited), consent, photo, merge, export, erasure.

Every service runs in one transaction and writes its audit row in it; a refused operation writes nothing.
Later apps extend merge, export and erasure through the hook lists at the bottom of this module.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q

from meiye.audit.models import AuditLog
from meiye.audit.services import audit_record
from meiye.core.crypto import blind_index
from meiye.core.errors import Conflict, PermissionDenied, ValidationFailed, forbidden
from meiye.core.models import IdempotencyRecord
from meiye.members import validation as v
from meiye.members.models import (
    Channel,
    ConsentChannel,
    ConsentPurpose,
    ConsentRecord,
    CustomField,
    ErasureRecord,
    FieldType,
    Gender,
    Member,
    MemberPhoto,
    MemberSequence,
    MemberStatus,
    Retention,
    Tag,
)
from meiye.members.selectors import (
    ID_KIND,
    consent_state,
    member_get,
    phone_index_of,
    sensitive_values,
)
from meiye.org.context import Actor
from meiye.org.models import Store
from meiye.org.roles import Perm
from meiye.org.selectors import store_get

MAX_PHOTO_BYTES = 2 * 1024 * 1024
PHOTO_TYPES = {"image/jpeg", "image/png", "image/webp"}


@dataclass
class MemberInput:
    """Everything a member form or API call may set. ``None`` means "leave unchanged" on update."""

    name: str | None = None
    phone: str | None = None
    gender: str | None = None
    birthday: date | str | None = None
    email: str | None = None
    address: str | None = None
    id_number: str | None = None
    channel: str | None = None
    referrer_id: int | None = None
    home_store_id: int | None = None
    tags: list[str] | None = None
    notes: str | None = None
    custom: dict[str, Any] | None = None


def _next_member_no(actor: Actor) -> str:
    seq, _ = MemberSequence.objects.select_for_update().get_or_create(organisation=actor.organisation)
    number = seq.next_value
    MemberSequence.objects.filter(pk=seq.pk).update(next_value=number + 1)
    return f"M{number:06d}"


def _choice(value: str, choices: type, field: str, zh: str, en: str) -> str:
    if value not in choices.values:  # type: ignore[attr-defined]
        raise ValidationFailed(
            f"member.invalid_{field}",
            zh=f"{zh}：{value!r} 不是有效选项。",
            en=f"{en}: {value!r} is not a valid choice.",
            field=field,
        )
    return value


def _apply(actor: Actor, member: Member, data: MemberInput, *, creating: bool) -> list[str]:
    """Validate ``data`` and set it on ``member``; returns the names of fields that changed."""
    changed: list[str] = []
    if data.name is not None or creating:
        member.name = v.clean_name(data.name or "")
        changed.append("name")
    if data.phone is not None or creating:
        phone = v.clean_phone(data.phone or "")
        if phone != member.phone:
            member.phone = phone
            member.phone_index = phone_index_of(phone)
            changed.append("phone")
    if data.gender is not None:
        member.gender = _choice(data.gender, Gender, "gender", "性别", "gender")
        changed.append("gender")
    if data.birthday is not None:
        member.birthday = v.clean_birthday(data.birthday)
        changed.append("birthday")
    if data.email is not None:
        member.email = v.clean_email(data.email) or None
        changed.append("email")
    if data.address is not None:
        member.address = data.address.strip()[:200] or None
        changed.append("address")
    if data.id_number is not None:
        if data.id_number.strip():
            id_number = v.clean_id_number(data.id_number)
            member.id_number = id_number
            member.id_number_index = blind_index(id_number, kind=ID_KIND)
        else:
            member.id_number = None
            member.id_number_index = None
        changed.append("id_number")
    if data.channel is not None:
        member.channel = _choice(data.channel, Channel, "channel", "来源渠道", "channel")
        changed.append("channel")
    if data.referrer_id is not None:
        if member.pk and data.referrer_id == member.pk:
            raise ValidationFailed(
                "member.self_referral",
                zh="推荐人：不能是本人。",
                en="referrer: cannot be the member herself.",
                field="referrer",
            )
        referrer = member_get(actor, data.referrer_id)
        if member.pk and _refers_back(referrer, member.pk):
            raise ValidationFailed(
                "member.referral_cycle",
                zh=f"推荐人：{referrer} 是由本会员直接或间接推荐的，不能互相推荐。",
                en=f"referrer: {referrer} was referred, directly or not, by this member; referrals cannot go round.",
                field="referrer",
            )
        member.referrer = referrer
        changed.append("referrer")
    if data.home_store_id is not None or creating:
        store: Store | None = store_get(actor, data.home_store_id) if data.home_store_id is not None else actor.store
        if store is None:
            raise ValidationFailed(
                "member.home_store_required", zh="归属门店：必填。", en="home_store: required.", field="home_store"
            )
        member.home_store = store
        changed.append("home_store")
    if data.notes is not None:
        member.notes = data.notes.strip()[:2000]
        changed.append("notes")
    if data.custom is not None:
        changed.extend(_apply_custom(actor, member, data.custom, creating=creating))
    return changed


def _apply_custom(actor: Actor, member: Member, values: dict[str, Any], *, creating: bool) -> list[str]:
    fields = {cf.key: cf for cf in CustomField.objects.filter(organisation=actor.organisation, is_active=True)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValidationFailed(
            "member.unknown_custom_field",
            zh=f"自定义字段：{unknown} 不存在或已停用。",
            en=f"custom: {unknown} are not active custom fields.",
            field=f"custom.{unknown[0]}",
        )
    consents = consent_state(member) if member.pk else {}
    plain = dict(member.custom or {})
    sensitive = sensitive_values(member)
    changed: list[str] = []
    for key, cf in fields.items():
        if key not in values:
            if creating and cf.required:
                v.clean_custom_value(cf, None)
            continue
        value = v.clean_custom_value(cf, values[key])
        if cf.health and value is not None and not consents.get(ConsentPurpose.HEALTH, False):
            raise ValidationFailed(
                "member.health_consent_required",
                zh=f"{cf.label_zh}：会员尚未同意健康信息的收集，不能填写。请先登记健康信息同意书。",
                en=f"{cf.label_en or key}: the member has not consented to health data; record her consent first.",
                field=f"custom.{key}",
            )
        if cf.is_protected and not actor.can(Perm.MEMBER_REVEAL_HEALTH) and not creating:
            # Writing (or clearing) a sensitive value is for the roles that may read it, and registration.
            raise forbidden(Perm.MEMBER_REVEAL_HEALTH)
        target = sensitive if cf.is_protected else plain
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
        changed.append(f"custom.{key}")
    member.custom = plain
    member.custom_sensitive = json.dumps(sensitive, ensure_ascii=False) if sensitive else None
    return changed


def _set_tags(actor: Actor, member: Member, names: list[str]) -> None:
    clean = sorted({" ".join(n.split())[:30] for n in names if n and n.strip()})
    tags = [Tag.objects.get_or_create(organisation=actor.organisation, name=name)[0] for name in clean]
    member.tags.set(tags)


def _refers_back(referrer: Member, member_id: int, *, depth: int = 20) -> bool:
    """Whether ``member_id`` is up ``referrer``'s referral chain (a cycle would let two checkouts of the
    referred members lock each other's points; loyalty rewards walk one level only)."""
    current: int | None = referrer.referrer_id
    for _ in range(depth):
        if current is None:
            return False
        if current == member_id:
            return True
        current = Member.objects.filter(pk=current).values_list("referrer_id", flat=True).first()
    return False


def _duplicate_phone_error(actor: Actor, existing: Member | None) -> Conflict:
    """The phone is taken. The existing member's number is named only if the actor may see her."""
    from meiye.members.selectors import members_visible

    visible = existing is not None and members_visible(actor).filter(pk=existing.pk).exists()
    number = existing.member_no if existing is not None and visible else ""
    return Conflict(
        "member.duplicate_phone",
        zh=f"手机号：该号码已登记为会员 {number}，请勿重复建档（可合并会员）。",
        en=f"phone: this number already belongs to member {number}; do not register her twice (merge instead).",
        field="phone",
        extra={"member_no": number} if number else {},
    )


def member_create(
    *,
    actor: Actor,
    data: MemberInput,
    consents: list[tuple[str, bool]] | None = None,
    consent_version: str = "v1",
    consent_channel: str = ConsentChannel.TABLET,
) -> Member:
    """Register a member. ``consents`` (purpose, granted) are recorded in the same transaction, before
    custom values are checked, so health fields can be filled at registration with consent given."""
    actor.require(Perm.MEMBER_CREATE)
    member = Member(organisation=actor.organisation, created_by=actor.staff)
    custom = data.custom
    _apply(actor, member, dataclasses.replace(data, custom=None), creating=True)
    existing = Member.objects.filter(organisation=actor.organisation, phone_index=member.phone_index).first()
    if existing is not None:
        raise _duplicate_phone_error(actor, existing)
    try:
        with transaction.atomic():
            member.member_no = _next_member_no(actor)
            member.save()
            audit_record(actor=actor, action="member.create", obj=member)
            for purpose, granted in consents or []:
                _consent_write(actor, member, purpose, granted, consent_version, consent_channel)
            if (
                custom is not None
                or CustomField.objects.filter(organisation=actor.organisation, required=True).exists()
            ):
                _apply_custom(actor, member, custom or {}, creating=True)
                member.save(update_fields=["custom", "custom_sensitive"])
            if data.tags:
                _set_tags(actor, member, data.tags)
    except IntegrityError:
        existing = Member.objects.filter(organisation=actor.organisation, phone_index=member.phone_index).first()
        raise _duplicate_phone_error(actor, existing) from None
    return member


def member_update(*, actor: Actor, member: Member, data: MemberInput) -> Member:
    actor.require(Perm.MEMBER_EDIT)
    member = member_get(actor, member.pk)  # re-check visibility
    if member.status == MemberStatus.ERASED:
        raise ValidationFailed("member.erased", zh="该会员已注销，不能修改。", en="This member was erased.")
    try:
        with transaction.atomic():
            locked = Member.objects.select_for_update(no_key=True).get(pk=member.pk)
            changed = _apply(actor, locked, data, creating=False)
            if "phone" in changed:
                other = (
                    Member.objects.filter(organisation=actor.organisation, phone_index=locked.phone_index)
                    .exclude(pk=locked.pk)
                    .first()
                )
                if other is not None:
                    raise _duplicate_phone_error(actor, other)
            locked.save()
            if data.tags is not None:
                _set_tags(actor, locked, data.tags)
                changed.append("tags")
            # Field names only: the audit log never holds the personal data itself.
            audit_record(actor=actor, action="member.update", obj=locked, detail={"fields": changed})
    except IntegrityError:
        raise _duplicate_phone_error(actor, None) from None
    return locked


# --- Reveal: the only way to see a full value, and always audited -----------------------------------------

_REVEAL_PERMS = {
    "phone": Perm.MEMBER_REVEAL_PHONE,
    "id_number": Perm.MEMBER_REVEAL_ID,
    "email": Perm.MEMBER_REVEAL_CONTACT,
    "address": Perm.MEMBER_REVEAL_CONTACT,
}


def member_reveal(*, actor: Actor, member: Member, field: str) -> str:
    """Return the full value of a masked field and write an audit row (who, what, when)."""
    member = member_get(actor, member.pk)
    if member.restricted:
        raise _restricted_error()
    if field.startswith("custom."):
        key = field.removeprefix("custom.")
        cf = CustomField.objects.filter(organisation=actor.organisation, key=key).first()
        if cf is None:
            raise ValidationFailed(
                "member.unknown_field", zh=f"没有字段 {field}。", en=f"There is no field {field}.", field="field"
            )
        if cf.is_protected:
            actor.require(Perm.MEMBER_REVEAL_HEALTH)
        if cf.health and not consent_state(member).get(ConsentPurpose.HEALTH, False):
            raise ValidationFailed(
                "member.health_consent_required",
                zh=f"{cf.label_zh}：会员未同意或已撤回健康信息同意，不能查看。",
                en=f"{cf.label_en or key}: the member has not consented (or withdrew consent) to health data.",
                field=field,
            )
        raw = (sensitive_values(member) if cf.is_protected else member.custom).get(key)
        value = "、".join(raw) if isinstance(raw, list) else ("" if raw is None else str(raw))
    elif field in _REVEAL_PERMS:
        actor.require(_REVEAL_PERMS[field])
        value = getattr(member, field) or ""
    else:
        raise ValidationFailed(
            "member.unknown_field",
            zh=f"没有可查看的字段 {field}。",
            en=f"There is no revealable field {field}.",
            field="field",
        )
    with transaction.atomic():
        audit_record(actor=actor, action="member.reveal", obj=member, detail={"field": field})
    return value


def _restricted_error() -> PermissionDenied:
    return PermissionDenied(
        "member.restricted",
        zh="该会员已申请注销，其依法保留的信息已限制访问，只能通过审计导出查看。",
        en="This member was erased; what the law keeps is restricted and readable only through an audited export.",
    )


# --- Consent -----------------------------------------------------------------------------------------------------


def _consent_write(
    actor: Actor, member: Member, purpose: str, granted: bool, version: str, channel: str
) -> ConsentRecord:
    _choice(purpose, ConsentPurpose, "purpose", "同意事项", "purpose")
    _choice(channel, ConsentChannel, "channel", "签署方式", "channel")
    if not version.strip():
        raise ValidationFailed(
            "member.consent_version_required",
            zh="同意书版本：必填。",
            en="text_version: required.",
            field="text_version",
        )
    record = ConsentRecord.objects.create(
        member=member,
        purpose=purpose,
        granted=granted,
        text_version=version.strip()[:20],
        channel=channel,
        recorded_by=actor.staff,
    )
    audit_record(
        actor=actor,
        action="member.consent",
        obj=member,
        detail={"purpose": purpose, "granted": granted, "version": version},
    )
    return record


def consent_record(
    *, actor: Actor, member: Member, purpose: str, granted: bool, text_version: str, channel: str
) -> ConsentRecord:
    """Record a grant or withdrawal. Withdrawal takes effect at once: health fields and the photo are
    no longer shown (and the photo is deleted)."""
    actor.require(Perm.MEMBER_CONSENT)
    member = member_get(actor, member.pk)
    with transaction.atomic():
        record = _consent_write(actor, member, purpose, granted, text_version, channel)
        if purpose == ConsentPurpose.PHOTO and not granted:
            MemberPhoto.objects.filter(member=member).delete()
    return record


# --- Photo --------------------------------------------------------------------------------------------------


def member_photo_set(*, actor: Actor, member: Member, content_type: str, data: bytes) -> MemberPhoto:
    actor.require(Perm.MEMBER_PHOTO)
    member = member_get(actor, member.pk)
    if not consent_state(member).get(ConsentPurpose.PHOTO, False):
        raise ValidationFailed(
            "member.photo_consent_required",
            zh="照片：会员尚未单独同意拍照存档，不能上传。",
            en="photo: the member has not given her separate photo consent.",
            field="photo",
        )
    if content_type not in PHOTO_TYPES or not data or len(data) > MAX_PHOTO_BYTES:
        raise ValidationFailed(
            "member.invalid_photo",
            zh="照片：需要 JPEG、PNG 或 WebP 图片，不超过 2 MB。",
            en="photo: must be a JPEG, PNG or WebP image of at most 2 MB.",
            field="photo",
        )
    with transaction.atomic():
        photo, _ = MemberPhoto.objects.update_or_create(
            member=member, defaults={"content_type": content_type, "data": data}
        )
        audit_record(actor=actor, action="member.photo_set", obj=member)
    return photo


def member_photo_get(*, actor: Actor, member: Member) -> MemberPhoto | None:
    """The photo, for roles allowed to see it and while consent stands; each view is audited."""
    actor.require(Perm.MEMBER_PHOTO)
    member = member_get(actor, member.pk)
    if member.restricted or not consent_state(member).get(ConsentPurpose.PHOTO, False):
        return None
    photo = MemberPhoto.objects.filter(member=member).first()
    if photo is not None:
        with transaction.atomic():
            audit_record(actor=actor, action="member.photo_view", obj=member)
    return photo


# --- Custom fields ------------------------------------------------------------------------------------------


def custom_field_save(
    *,
    actor: Actor,
    key: str,
    label_zh: str,
    label_en: str = "",
    field_type: str = FieldType.TEXT,
    choices: list[str] | None = None,
    required: bool = False,
    sensitive: bool = False,
    health: bool = False,
    retention: str = Retention.ERASE,
    retention_reason: str = "",
    order: int = 0,
    is_active: bool = True,
) -> CustomField:
    """Create or update (by key) a custom field definition."""
    actor.require(Perm.CUSTOM_FIELDS_MANAGE)
    import re

    if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", key or ""):
        raise ValidationFailed(
            "custom_field.invalid_key",
            zh="字段键：小写字母开头，只含小写字母、数字和下划线，最多 40 个字符。",
            en="key: starts with a lowercase letter; lowercase letters, digits and _ only; at most 40.",
            field="key",
        )
    if not label_zh.strip():
        raise ValidationFailed("input.required", zh="中文名称：必填。", en="label_zh: required.", field="label_zh")
    _choice(field_type, FieldType, "field_type", "类型", "field_type")
    _choice(retention, Retention, "retention", "注销时", "retention")
    options = [c.strip() for c in (choices or []) if c and c.strip()]
    if field_type in (FieldType.CHOICE, FieldType.MULTI) and len(options) < 2:
        raise ValidationFailed(
            "custom_field.choices_required",
            zh="选项：单选或多选字段至少需要 2 个选项。",
            en="choices: a choice field needs at least 2 options.",
            field="choices",
        )
    if retention == Retention.KEEP and not retention_reason.strip():
        raise ValidationFailed(
            "custom_field.retention_reason_required",
            zh="保留依据：依法保留的字段必须写明依据。",
            en="retention_reason: a field kept on erasure needs its legal reason.",
            field="retention_reason",
        )
    with transaction.atomic():
        cf, created = CustomField.objects.update_or_create(
            organisation=actor.organisation,
            key=key,
            defaults={
                "label_zh": label_zh.strip(),
                "label_en": label_en.strip(),
                "field_type": field_type,
                "choices": options,
                "required": required,
                "sensitive": sensitive or health,
                "health": health,
                "retention": retention,
                "retention_reason": retention_reason.strip(),
                "order": order,
                "is_active": is_active,
            },
        )
        audit_record(actor=actor, action="custom_field.create" if created else "custom_field.update", obj=cf)
    return cf


# --- Merge ---------------------------------------------------------------------------------------------------

# Later apps (wallets, cards, packages) register a function(actor, survivor, merged) -> dict of what moved.
MERGE_HOOKS: list[Callable[[Actor, Member, Member], dict[str, Any]]] = []


def member_merge(*, actor: Actor, survivor: Member, merged: Member) -> Member:
    """Fold ``merged`` into ``survivor``: tags, consents, referrals, photo, custom values and notes move;
    ``merged`` is kept as a tombstone pointing at the survivor (its phone is freed)."""
    actor.require(Perm.MEMBER_MERGE)
    survivor = member_get(actor, survivor.pk)
    merged = member_get(actor, merged.pk)
    if survivor.pk == merged.pk:
        raise ValidationFailed(
            "member.merge_self", zh="不能把会员合并到自己。", en="Cannot merge a member into herself."
        )
    if MemberStatus.ERASED in (survivor.status, merged.status):
        raise ValidationFailed("member.erased", zh="已注销的会员不能合并。", en="An erased member cannot be merged.")
    with transaction.atomic():
        first, second = sorted([survivor.pk, merged.pk])
        locked = {
            m.pk: m for m in Member.objects.select_for_update(no_key=True).filter(pk__in=[first, second]).order_by("pk")
        }
        survivor, merged = locked[survivor.pk], locked[merged.pk]
        moved: dict[str, Any] = {}
        survivor.tags.add(*merged.tags.all())
        moved["consents"] = ConsentRecord.objects.filter(member=merged).update(member=survivor)
        moved["referred"] = Member.objects.filter(referrer=merged).exclude(pk=survivor.pk).update(referrer=survivor)
        if not MemberPhoto.objects.filter(member=survivor).exists():
            moved["photo"] = MemberPhoto.objects.filter(member=merged).update(member=survivor)
        for attr in ("birthday", "email", "address", "referrer_id"):
            if getattr(survivor, attr) in (None, "") and getattr(merged, attr) not in (None, ""):
                setattr(survivor, attr, getattr(merged, attr))
        if survivor.referrer_id == survivor.pk:
            survivor.referrer_id = None
        if not survivor.id_number and merged.id_number:
            survivor.id_number, survivor.id_number_index = merged.id_number, merged.id_number_index
        survivor.custom = {**(merged.custom or {}), **(survivor.custom or {})}
        sens = {**sensitive_values(merged), **sensitive_values(survivor)}
        survivor.custom_sensitive = json.dumps(sens, ensure_ascii=False) if sens else None
        if merged.notes:
            survivor.notes = (survivor.notes + "\n" if survivor.notes else "") + f"[{merged.member_no}] {merged.notes}"
        for hook in MERGE_HOOKS:
            moved.update(hook(actor, survivor, merged))
        merged.status = MemberStatus.MERGED
        merged.merged_into = survivor
        merged.phone_index = None
        merged.id_number_index = None
        merged.save()
        survivor.save()
        audit_record(
            actor=actor, action="member.merge", obj=survivor, detail={"merged": merged.member_no, "moved": moved}
        )
    return survivor


# --- Export and erasure -------------------------------------------------------------------------------------

EXPORT_SECTIONS: list[Callable[[Member], tuple[str, Any]]] = []
# Later apps register what the law says must be kept: function(member) -> list of {"field", "why"}.
RETENTION_HOOKS: list[Callable[[Member], list[dict[str, str]]]] = []


def member_export(*, actor: Actor, member: Member) -> dict[str, Any]:
    """Everything Meiye holds about the member, as JSON-ready data. Audited."""
    member = member_get(actor, member.pk)
    actor.require(Perm.MEMBER_EXPORT)
    photo = MemberPhoto.objects.filter(member=member).first()
    data: dict[str, Any] = {
        "format": "meiye.member_export.v1",
        "member": {
            "member_no": member.member_no,
            "name": member.name,
            "gender": member.gender,
            "phone": member.phone,
            "birthday": member.birthday.isoformat() if member.birthday else None,
            "email": member.email,
            "address": member.address,
            "id_number": member.id_number,
            "channel": member.channel,
            "referrer": member.referrer.member_no if member.referrer else None,
            "home_store": member.home_store.name,
            "tags": sorted(t.name for t in member.tags.all()),
            "notes": member.notes,
            "status": member.status,
            "restricted": member.restricted,
            "created_at": member.created_at.isoformat(),
        },
        "custom_fields": {**(member.custom or {}), **sensitive_values(member)},
        "consents": [
            {
                "purpose": c.purpose,
                "granted": c.granted,
                "text_version": c.text_version,
                "channel": c.channel,
                "at": c.at.isoformat(),
            }
            for c in ConsentRecord.objects.filter(member=member).order_by("at", "id")
        ],
        "photo": (
            {"content_type": photo.content_type, "base64": base64.b64encode(photo.data or b"").decode()}
            if photo
            else None
        ),
        "referred_members": [m.member_no for m in Member.objects.filter(referrer=member).order_by("id")],
        "access_log": [
            {
                "action": a.action,
                "at": a.at.isoformat(),
                "staff": str(a.staff) if a.staff else "system",
                "detail": a.detail,
            }
            for a in AuditLog.objects.filter(object_type="members.Member", object_id=str(member.pk)).order_by(
                "at", "id"
            )
        ],
    }
    erasure = ErasureRecord.objects.filter(member=member).first()
    if erasure is not None:
        data["erasure"] = {"at": erasure.at.isoformat(), "reason": erasure.reason, "kept": erasure.kept_fields}
    for section in EXPORT_SECTIONS:
        name, value = section(member)
        data[name] = value
    with transaction.atomic():
        audit_record(actor=actor, action="member.export", obj=member)
    return data


def member_erase(*, actor: Actor, member: Member, reason: str) -> ErasureRecord:
    """Anonymise the profile; keep, restricted, what the law requires (with why); never touch amounts."""
    member = member_get(actor, member.pk)
    actor.require(Perm.MEMBER_ERASE)
    if not reason.strip():
        raise ValidationFailed(
            "member.erase_reason_required", zh="注销原因：必填。", en="reason: required.", field="reason"
        )
    if member.status == MemberStatus.ERASED:
        raise ValidationFailed("member.erased", zh="该会员已注销。", en="This member was already erased.")
    with transaction.atomic():
        member = Member.objects.select_for_update(no_key=True).get(pk=member.pk)
        fields = {cf.key: cf for cf in CustomField.objects.filter(organisation=member.organisation)}
        erased, kept = _anonymise(member, fields)
        member.status = MemberStatus.ERASED
        member.restricted = bool(kept)
        member.save()
        # Records merged into her are tombstones that still hold their own personal data: erase them too.
        tombstones = _merged_into(member)
        for tombstone in tombstones:
            _erased, tombstone_kept = _anonymise(tombstone, fields)
            tombstone.restricted = bool(tombstone_kept)
            tombstone.save()
        redacted = _redact_stored_replies(member, tombstones)
        record = ErasureRecord.objects.create(
            member=member, requested_by=actor.staff, reason=reason.strip()[:200], erased_fields=erased, kept_fields=kept
        )
        audit_record(
            actor=actor,
            action="member.erase",
            obj=member,
            detail={
                "erased": erased,
                "kept": kept,
                "merged_records": [t.member_no for t in tombstones],
                "stored_replies_redacted": redacted,
            },
        )
    return record


def _merged_into(member: Member) -> list[Member]:
    """Every record merged into ``member``, directly or through earlier merges, locked."""
    found: list[Member] = []
    frontier = [member.pk]
    while frontier:
        batch = list(Member.objects.select_for_update(no_key=True).filter(merged_into_id__in=frontier).order_by("pk"))
        found.extend(batch)
        frontier = [m.pk for m in batch]
    return found


def _anonymise(member: Member, fields: dict[str, CustomField]) -> tuple[list[str], list[dict[str, str]]]:
    """Clear what may be erased from one record; return (erased field names, kept fields with why)."""
    kept: list[dict[str, str]] = []
    for hook in RETENTION_HOOKS:
        kept.extend(hook(member))
    kept_names = {k["field"] for k in kept}
    erased: list[str] = []
    for attr in ("phone", "email", "address", "id_number"):
        if attr in kept_names or not getattr(member, attr):
            continue
        setattr(member, attr, None)
        erased.append(attr)
    if "phone" not in kept_names:
        member.phone_index = None
    if "id_number" not in kept_names:
        member.id_number_index = None
    sensitive = sensitive_values(member)
    for store_dict in (member.custom, sensitive):
        for key in list(store_dict):
            cf = fields.get(key)
            if cf is not None and cf.retention == Retention.KEEP:
                kept.append({"field": f"custom.{key}", "why": cf.retention_reason})
            else:
                store_dict.pop(key)
                erased.append(f"custom.{key}")
    member.custom_sensitive = json.dumps(sensitive, ensure_ascii=False) if sensitive else None
    if member.birthday:
        erased.append("birthday")
    member.birthday = None
    member.name = f"已注销会员 {member.member_no}"
    member.notes = ""
    erased.append("name")
    if MemberPhoto.objects.filter(member=member).delete()[0]:
        erased.append("photo")
    member.tags.clear()
    return erased, kept


def _redact_stored_replies(member: Member, tombstones: list[Member]) -> int:
    """Stored API replies (idempotency records) keep a copy of what was answered: a member's profile, or a
    bill naming her. Replace those copies; a replay then answers that the data was erased."""
    ids = [member.pk, *(t.pk for t in tombstones)]
    about_her = Q(scope__contains="/members/", response__id__in=ids) | Q(response__member__id__in=ids)
    return (
        IdempotencyRecord.objects.filter(organisation_id=member.organisation_id)
        .filter(about_her)
        .update(response={"redacted": "member erased / 会员已注销"})
    )
