"""``manage.py compilemessages_py``: compile translation catalogues with polib (no GNU gettext needed).

Compiles every ``<locale dir>/<language>/LC_MESSAGES/*.po`` to a ``.mo`` beside it, for each directory in
``settings.LOCALE_PATHS`` and each ``locale/`` directory of an installed app that lives in the project
(``BASE_DIR``; third-party apps ship their own ``.mo`` files). Like ``msgfmt``, fuzzy and obsolete entries
are left out. Like ``msgfmt --check-format``, a translation whose ``%(name)s`` / ``{name}`` placeholders
differ from its source is an error, because it would fail at run time. A ``.mo`` newer than its ``.po``
is left alone unless ``--force``. Used by ``make setup``.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import polib
from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

_PERCENT_RE = re.compile(r"%(?:\((?P<name>[^)]*)\))?[#0 +-]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?(?P<conv>[a-zA-Z%])")
_BRACE_RE = re.compile(r"(?<!\{)\{(?P<name>[^{}!:]*)(?:![rsa])?(?::[^{}]*)?\}(?!\})")


def locale_dirs() -> list[Path]:
    """LOCALE_PATHS, then the ``locale`` directories of the project's own installed apps."""
    base = Path(settings.BASE_DIR).resolve()
    found: list[Path] = []
    for entry in settings.LOCALE_PATHS:
        path = Path(entry).resolve()
        if path not in found:
            found.append(path)
    for config in apps.get_app_configs():
        if not config.name.startswith("meiye."):
            continue  # Django's and third-party catalogues ship compiled (and live in .venv/)
        path = (Path(config.path) / "locale").resolve()
        if path.is_dir() and path.is_relative_to(base) and path not in found:
            found.append(path)
    return found


def catalogues(directories: list[Path]) -> list[Path]:
    return sorted(po for directory in directories if directory.is_dir() for po in directory.glob("*/LC_MESSAGES/*.po"))


def percent_placeholders(text: str) -> tuple[set[str], list[str]]:
    """printf-style placeholders: ({'name'}, ['d', 's']) for named and positional ones; '%%' is none."""
    named: set[str] = set()
    positional: list[str] = []
    for m in _PERCENT_RE.finditer(text):
        if m.group("conv") == "%":
            continue
        if m.group("name") is not None:
            named.add(m.group("name"))
        else:
            positional.append(m.group("conv"))
    return named, positional


def brace_placeholders(text: str) -> set[str]:
    return {m.group("name") for m in _BRACE_RE.finditer(text)}


def format_problems(po: polib.POFile, path: Path) -> list[str]:
    """Translations that would fail when formatted (entries flagged python-format / python-brace-format, as
    ``msgfmt --check-format`` checks): a named placeholder the source does not have, or a different
    sequence of positional ones. A plural translation may leave a placeholder out (\"一个\" for \"%(n)d\")."""
    problems: list[str] = []
    for entry in po.translated_entries():
        sources = [entry.msgid] + ([entry.msgid_plural] if entry.msgid_plural else [])
        texts = [entry.msgstr] if not entry.msgid_plural else [t for _, t in sorted(entry.msgstr_plural.items())]
        for text in texts:
            why = ""
            if "python-format" in entry.flags:
                source_named = set().union(*(percent_placeholders(s)[0] for s in sources))
                source_positional = percent_placeholders(entry.msgid)[1]
                named, positional = percent_placeholders(text)
                if named - source_named:
                    why = f"unknown placeholder(s) {sorted(named - source_named)}"
                elif positional != source_positional and not (entry.msgid_plural and not positional):
                    why = f"positional placeholders {positional} instead of {source_positional}"
            if not why and "python-brace-format" in entry.flags:
                source_names = set().union(*(brace_placeholders(s) for s in sources))
                extra = brace_placeholders(text) - source_names
                if extra:
                    why = f"unknown placeholder(s) {sorted(extra)}"
            if why:
                problems.append(f"{path}:{entry.linenum}: {why} in the translation of {entry.msgid!r}")
    return problems


class Command(BaseCommand):
    help = "Compile locale/*/LC_MESSAGES/*.po to .mo with polib (no GNU gettext). / 编译翻译文件。"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true", help="recompile even when the .mo is up to date")
        parser.add_argument(
            "-l", "--locale", action="append", default=[], help="only these languages (e.g. -l en); repeatable"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        verbosity = int(options.get("verbosity", 1))
        languages = set(options["locale"] or [])
        compiled = up_to_date = 0
        errors: list[str] = []
        for po_path in catalogues(locale_dirs()):
            language = po_path.parent.parent.name
            if languages and language not in languages:
                continue
            mo_path = po_path.with_suffix(".mo")
            if not options["force"] and mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
                up_to_date += 1
                continue
            try:
                po = polib.pofile(str(po_path), encoding="utf-8")
            except (OSError, ValueError, UnicodeDecodeError) as exc:
                errors.append(f"{po_path}: {exc}")
                continue
            problems = format_problems(po, po_path)
            if problems:
                errors.extend(problems)
                continue
            _write_atomically(po, mo_path)
            compiled += 1
            if verbosity >= 2:
                self.stdout.write(f"  {po_path} -> {mo_path.name} ({len(po.translated_entries())} messages)")
        if errors:
            raise CommandError("无法编译翻译文件 / Could not compile:\n" + "\n".join(errors))
        if verbosity >= 1:
            self.stdout.write(f"Compiled {compiled} catalogue(s); {up_to_date} already up to date.")


def _write_atomically(po: polib.POFile, mo_path: Path) -> None:
    """Write the .mo next to its final name and rename it into place, so a running server never reads half a
    file."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".mo", dir=mo_path.parent)
    os.close(fd)
    try:
        po.save_as_mofile(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, mo_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
