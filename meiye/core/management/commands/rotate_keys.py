"""``manage.py rotate_keys``: re-encrypt every encrypted field value that is not under the current key.

Rotation, step by step:

1. Put the new key FIRST in MEIYE_FIELD_KEYS and keep the old ones after it
   (``new:<base64>,old:<base64>``); restart. New writes use the new key; old values stay readable.
2. ``manage.py rotate_keys --dry-run`` shows how many values each key id still holds.
3. ``manage.py rotate_keys`` re-encrypts them, in batches (one transaction each). It can be interrupted
   and run again: values already on the current key are skipped.
4. When it reports nothing left on old keys, remove the old keys from MEIYE_FIELD_KEYS. (Backups made
   before the rotation still need the old key.)

Every EncryptedTextField / EncryptedBinaryField of every installed model is found through
``apps.get_models()``. Ciphertext is read with SQL (nothing is decrypted to find out whether a value
needs rotating: its key id is in clear in ``v1.<key id>.<…>``) and written back with the field's own
``from_db_value`` / ``get_prep_value``, so the purpose (associated data) stays the field's. A row changed by
the application between read and write is left alone (the application already wrote it under the current
key). Before anything is written, every key id in use is checked against the keyring: a value under a key
that is not configured stops the command with the model, field and key id, and nothing is changed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from meiye.core import crypto
from meiye.core.fields import ENCRYPTED_FIELD_TYPES, EncryptedBinaryField, EncryptedTextField
from meiye.core.progress import Progress

DEFAULT_BATCH = 500

EncryptedField = EncryptedTextField | EncryptedBinaryField


@dataclass
class FieldReport:
    label: str  # "members.Member.phone"
    values: int = 0
    current: int = 0
    by_key: Counter[str] = field(default_factory=Counter)
    rotated: int = 0
    changed_meanwhile: int = 0

    @property
    def to_rotate(self) -> int:
        return self.values - self.current


@dataclass
class Target:
    model: type[models.Model]
    fields: list[EncryptedField]
    reports: dict[str, FieldReport]


def encrypted_targets() -> list[Target]:
    """Every concrete model with encrypted fields, and those fields (each column once, so multi-table
    inheritance children do not repeat their parents' columns)."""
    targets: list[Target] = []
    for model in apps.get_models():
        meta = model._meta
        if meta.proxy or not meta.managed:
            continue
        found = [f for f in meta.local_concrete_fields if isinstance(f, ENCRYPTED_FIELD_TYPES)]
        if found:
            reports = {f.name: FieldReport(label=f"{meta.label}.{f.name}") for f in found}
            targets.append(Target(model=model, fields=found, reports=reports))
    return sorted(targets, key=lambda t: t.model._meta.label)


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted field value not under the current key (the first in MEIYE_FIELD_KEYS). "
        "/ 用当前密钥重新加密所有加密字段。"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="only count; write nothing / 只统计，不写入")
        parser.add_argument(
            "--batch-size", type=int, default=DEFAULT_BATCH, help=f"rows per transaction (default {DEFAULT_BATCH})"
        )
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="database alias (default: default)")

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size = int(options["batch_size"])
        if batch_size < 1:
            raise CommandError(f"--batch-size: 需要正整数 / must be a positive whole number, got {batch_size}")
        connection = connections[options["database"]]
        dry_run = bool(options["dry_run"])
        verbosity = int(options.get("verbosity", 1))
        try:
            ring = crypto.keyring()
        except crypto.KeyConfigurationError as exc:
            raise CommandError(f"MEIYE_FIELD_KEYS / MEIYE_BLIND_INDEX_KEY: {exc}") from None

        targets = encrypted_targets()
        # Pass 1: count values per key id, read-only; refuse before writing if a key id is unknown.
        for target in targets:
            for _pk, values in _scan(connection, target, batch_size):
                for f, raw in zip(target.fields, values, strict=True):
                    if raw is None or raw == "":
                        continue
                    report = target.reports[f.name]
                    report.values += 1
                    kid = _key_id(raw, report.label, _pk)
                    report.by_key[kid] += 1
                    if kid == ring.current_id:
                        report.current += 1
        unknown = sorted(
            (report.label, kid, n)
            for target in targets
            for report in target.reports.values()
            for kid, n in report.by_key.items()
            if kid not in ring.keys
        )
        if unknown:
            lines = "; ".join(f"{label}: {n} value(s) under key id {kid!r}" for label, kid, n in unknown)
            raise CommandError(
                f"有数据使用未配置的密钥加密，未做任何修改。 / Some values are encrypted under a key id that is not "
                f"in MEIYE_FIELD_KEYS, so they cannot be read; nothing was changed. {lines}. Add that key "
                f"(kid:base64) after the current key {ring.current_id!r} and run again."
            )

        pending = sum(r.to_rotate for t in targets for r in t.reports.values())
        if not dry_run and pending:
            progress = Progress(pending, "重新加密 Re-encrypting") if verbosity >= 1 else None
            for target in targets:
                self._rotate(connection, target, batch_size, ring.current_id, progress)
            if progress is not None:
                progress.finish()
        self._report(targets, ring.current_id, dry_run=dry_run, verbosity=verbosity)

    def _rotate(
        self,
        connection: BaseDatabaseWrapper,
        target: Target,
        batch_size: int,
        current_id: str,
        progress: Progress | None,
    ) -> None:
        if not any(r.to_rotate for r in target.reports.values()):
            return
        meta = target.model._meta
        qn = connection.ops.quote_name
        table = qn(meta.db_table)
        pk_column = qn(_column(meta.pk))
        updates = {
            f.name: f"UPDATE {table} SET {qn(_column(f))} = %s WHERE {pk_column} = %s AND {qn(_column(f))} = %s"  # noqa: S608 - quoted identifiers from model metadata
            for f in target.fields
        }
        for rows in _batches(_scan(connection, target, batch_size), batch_size):
            with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
                for pk, values in rows:
                    for f, raw in zip(target.fields, values, strict=True):
                        if raw is None or raw == "" or crypto.key_id_of(raw) == current_id:
                            continue
                        report = target.reports[f.name]
                        fresh = _reencrypt(f, raw, connection, report.label, pk)
                        # Only if unchanged since it was read: a concurrent write used the current key.
                        cursor.execute(updates[f.name], [fresh, pk, raw])
                        if cursor.rowcount == 1:
                            report.rotated += 1
                        else:
                            report.changed_meanwhile += 1
                        if progress is not None:
                            progress.advance()

    def _report(self, targets: list[Target], current_id: str, *, dry_run: bool, verbosity: int) -> None:
        if verbosity < 1:
            return
        title = "演练（未写入） Dry run — nothing written" if dry_run else "密钥轮换完成 Key rotation done"
        self.stdout.write(self.style.SUCCESS(f"{title}. Current key id: {current_id}"))
        total_rotate = total_values = total_current = 0
        for target in targets:
            for report in target.reports.values():
                total_values += report.values
                total_current += report.current
                total_rotate += report.to_rotate
                keys = ", ".join(f"{kid}: {n}" for kid, n in sorted(report.by_key.items())) or "-"
                if dry_run:
                    action = f"to re-encrypt {report.to_rotate}"
                else:
                    action = f"re-encrypted {report.rotated}"
                    if report.changed_meanwhile:
                        action += f", changed meanwhile {report.changed_meanwhile}"
                self.stdout.write(
                    f"  {report.label:<36} values {report.values:>8}  on current key {report.current:>8}  "
                    f"{action}  (by key id: {keys})"
                )
        verb = "would re-encrypt" if dry_run else "re-encrypted"
        self.stdout.write(
            f"Total: {total_values} values, {total_current} already on {current_id!r} (skipped), {verb} {total_rotate}."
        )
        if not dry_run:
            self.stdout.write(
                "Every value is now under the current key; older keys may be removed from MEIYE_FIELD_KEYS once "
                "no backup that needs them is kept. / 旧密钥可在不再需要旧备份后移除。"
            )


def _scan(connection: BaseDatabaseWrapper, target: Target, batch_size: int) -> Any:
    """Yield (pk, [raw values]) for every row, in primary-key order, reading ``batch_size`` rows a query."""
    meta = target.model._meta
    qn = connection.ops.quote_name
    pk_column = qn(_column(meta.pk))
    columns = ", ".join(qn(_column(f)) for f in target.fields)
    base = f"SELECT {pk_column}, {columns} FROM {qn(meta.db_table)}"  # noqa: S608 - quoted identifiers only
    last: Any = None
    while True:
        with connection.cursor() as cursor:
            if last is None:
                cursor.execute(f"{base} ORDER BY {pk_column} LIMIT %s", [batch_size])
            else:
                cursor.execute(f"{base} WHERE {pk_column} > %s ORDER BY {pk_column} LIMIT %s", [last, batch_size])
            rows = cursor.fetchall()
        if not rows:
            return
        for row in rows:
            yield row[0], list(row[1:])
        last = rows[-1][0]
        if len(rows) < batch_size:
            return


def _batches(rows: Any, size: int) -> Any:
    batch: list[tuple[Any, list[Any]]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _key_id(raw: Any, label: str, pk: Any) -> str:
    try:
        return crypto.key_id_of(str(raw))
    except ValueError:
        raise CommandError(
            f"{label} (pk={pk}): 存储的值不是加密格式 v1.<kid>.<…> / the stored value is not an encrypted value "
            "(expected v1.<key id>.<…>); nothing was changed."
        ) from None


def _column(f: models.Field[Any, Any] | None) -> str:
    assert f is not None and f.column is not None
    return f.column


def _reencrypt(f: EncryptedField, raw: str, connection: BaseDatabaseWrapper, label: str, pk: Any) -> str:
    try:
        plain = f.from_db_value(raw, None, connection)
    except InvalidTag:
        raise CommandError(
            f"{label} (pk={pk}): 解密失败（密钥不符或数据被篡改） / cannot be decrypted: wrong key for its key id, "
            "or the value was altered or moved from another field. Earlier batches are done; this one was rolled back."
        ) from None
    fresh: str = f.get_prep_value(plain)
    return fresh
