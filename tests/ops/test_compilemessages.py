"""manage.py compilemessages_py: .po -> .mo with polib, no GNU gettext."""

from __future__ import annotations

import gettext
import io
import os
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import translation

from meiye.core.management.commands import compilemessages_py
from meiye.core.management.commands.compilemessages_py import (
    brace_placeholders,
    locale_dirs,
    percent_placeholders,
)


def write_po(path: Path, entries: list[polib.POEntry]) -> Path:
    po = polib.POFile()
    po.metadata = {"Content-Type": "text/plain; charset=UTF-8", "Language": path.parent.parent.name}
    for entry in entries:
        po.append(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    po.save(str(path))
    return path


@pytest.fixture
def locale(tmp_path, monkeypatch):
    """A locale directory of our own (so the tests never write into the project's locale/)."""
    root = tmp_path / "locale"
    write_po(
        root / "en" / "LC_MESSAGES" / "django.po",
        [
            polib.POEntry(msgid="会员", msgstr="Member"),
            polib.POEntry(msgid="会员 %(name)s 已登记", msgstr="Member %(name)s registered", flags=["python-format"]),
            polib.POEntry(msgid="待译", msgstr="Draft", flags=["fuzzy"]),
            polib.POEntry(msgid="未翻译", msgstr=""),
        ],
    )
    write_po(root / "ja" / "LC_MESSAGES" / "djangojs.po", [polib.POEntry(msgid="门店", msgstr="店舗")])
    monkeypatch.setattr(compilemessages_py, "locale_dirs", lambda: [root])
    return root


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("compilemessages_py", *args, stdout=out)
    return out.getvalue()


def test_compiles_every_catalogue_to_mo(locale):
    out = run()
    assert "Compiled 2 catalogue(s); 0 already up to date." in out
    mo = locale / "en" / "LC_MESSAGES" / "django.mo"
    with mo.open("rb") as handle:
        catalogue = gettext.GNUTranslations(handle)
    assert catalogue.gettext("会员") == "Member"
    assert catalogue.gettext("会员 %(name)s 已登记") == "Member %(name)s registered"
    assert catalogue.gettext("待译") == "待译"  # fuzzy entries are left out, as msgfmt does
    assert catalogue.gettext("未翻译") == "未翻译"
    assert (locale / "ja" / "LC_MESSAGES" / "djangojs.mo").exists()
    assert not list(locale.rglob(".tmp-*"))


def test_up_to_date_catalogues_are_skipped_unless_forced(locale):
    run()
    mo = locale / "en" / "LC_MESSAGES" / "django.mo"
    os.utime(mo, (mo.stat().st_atime, mo.stat().st_mtime + 10))
    stamp = mo.stat().st_mtime_ns
    assert "Compiled 0 catalogue(s); 2 already up to date." in run()
    assert mo.stat().st_mtime_ns == stamp
    assert "Compiled 2 catalogue(s)" in run("--force")


def test_only_the_chosen_languages(locale):
    assert "Compiled 1 catalogue(s)" in run("-l", "ja")
    assert not (locale / "en" / "LC_MESSAGES" / "django.mo").exists()


def test_django_uses_the_compiled_catalogue(locale):
    run()
    with override_settings(LOCALE_PATHS=[str(locale)]), translation.override("en"):
        assert translation.gettext("会员") == "Member"
        assert translation.gettext("会员 %(name)s 已登记") % {"name": "王丽"} == "Member 王丽 registered"


def test_translation_with_a_wrong_placeholder_is_an_error_and_nothing_is_written(locale):
    bad = write_po(
        locale / "fr" / "LC_MESSAGES" / "django.po",
        [
            polib.POEntry(msgid="会员 %(name)s", msgstr="Membre %(nom)s", flags=["python-format"]),
            polib.POEntry(msgid="共 {count} 位", msgstr="{total} au total", flags=["python-brace-format"]),
        ],
    )
    with pytest.raises(CommandError) as exc:
        run("-l", "fr")
    message = str(exc.value)
    assert f"{bad}:" in message
    assert "unknown placeholder(s) ['nom']" in message
    assert "unknown placeholder(s) ['total']" in message
    assert not bad.with_suffix(".mo").exists()


def test_malformed_po_file_is_named(locale):
    broken = locale / "de" / "LC_MESSAGES" / "django.po"
    broken.parent.mkdir(parents=True)
    broken.write_text('msgid "a"\nmsgstr "b\n\nthis is not gettext\n', encoding="utf-8")
    with pytest.raises(CommandError, match=str(broken)):
        run("-l", "de")


def test_locale_dirs_come_from_locale_paths(tmp_path):
    with override_settings(LOCALE_PATHS=[str(tmp_path), str(tmp_path)]):
        dirs = locale_dirs()
    assert dirs[0] == tmp_path.resolve()
    assert dirs.count(tmp_path.resolve()) == 1
    assert all(d.is_relative_to(Path(settings.BASE_DIR).resolve()) for d in dirs[1:])  # only the project's apps


def test_placeholder_parsing():
    assert percent_placeholders("%(name)s 有 %d 条，100%% 完成，%.2f 元") == ({"name"}, ["d", "f"])
    assert brace_placeholders("{count} 位，{{literal}}，{amount:.2f} 元，{0!r}") == {"count", "amount", "0"}


def test_plural_translation_may_leave_out_the_count(locale):
    entry = polib.POEntry(
        msgid="%(count)d member",
        msgid_plural="%(count)d members",
        msgstr_plural={0: "一位会员", 1: "%(count)d 位会员"},
        flags=["python-format"],
    )
    write_po(locale / "zh_Hans" / "LC_MESSAGES" / "django.po", [entry])
    assert "Compiled 1 catalogue(s)" in run("-l", "zh_Hans")
