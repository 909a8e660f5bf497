"""Every UI string of the shop has a French translation.

The strings are extracted from the code and the templates with Babel (the mapping in
storefront/translations/babel.cfg, the keywords the code uses), and looked up in the
union of every area's French catalogue (storefront/translations/*/fr/LC_MESSAGES/
messages.po), which is what Flask-Babel serves. A string added without its French fails
here, whichever area it belongs to.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
TRANSLATIONS = ROOT / "storefront" / "translations"
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None, "lazy_ngettext": (1, 2)}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def extracted() -> dict:
    """msgid (a string, or a (singular, plural) tuple) -> "file:line" of its first use."""
    with (TRANSLATIONS / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    found = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=KEYWORDS, strip_comment_tags=True):
        if isinstance(message, tuple):
            message = message[:2] if message[1] else message[0]
        found.setdefault(message, f"{filename}:{lineno}")
    return found


def french_catalogues() -> list[Path]:
    return sorted(TRANSLATIONS.glob("*/fr/LC_MESSAGES/messages.po"))


def merged_french() -> dict:
    """The union of the area catalogues: msgid -> translation (str, or tuple for plurals)."""
    merged = {}
    for po in french_catalogues():
        with po.open("rb") as f:
            catalog = read_po(f, locale="fr")
        for message in catalog:
            if message.id and not message.fuzzy:
                merged[message.id[0] if isinstance(message.id, tuple) else message.id] = (message.id, message.string)
    return merged


def test_the_extraction_finds_the_foundation_strings():
    messages = extracted()
    assert "My training credits" in messages  # templates
    assert "Invalid email or password." in messages  # gettext in views
    assert "Display name" in messages  # lazy_gettext in forms
    assert ("credit", "credits") in messages  # ngettext in templates


def test_every_ui_string_has_a_french_translation():
    french = merged_french()
    missing, empty, placeholders = [], [], []
    for msgid, where in extracted().items():
        key = msgid[0] if isinstance(msgid, tuple) else msgid
        if key not in french:
            missing.append(f"{where}: {msgid!r}")
            continue
        _id, translation = french[key]
        forms = translation if isinstance(translation, (tuple, list)) else (translation,)
        if isinstance(msgid, tuple) and not isinstance(translation, (tuple, list)):
            empty.append(f"{where}: {msgid!r} needs plural forms")
        elif not all(form and form.strip() for form in forms):
            empty.append(f"{where}: {msgid!r}")
        sources = msgid if isinstance(msgid, tuple) else (msgid,)
        wanted = set().union(*(PLACEHOLDER.findall(s) for s in sources))
        used = [set(PLACEHOLDER.findall(form or "")) for form in forms]
        # A translation may drop %(num)d ("un crédit") but never invent or lose another.
        if any(u - wanted for u in used) or not (wanted - {"num"}) <= set().union(*used):
            placeholders.append(f"{where}: {msgid!r} -> {translation!r}")
    assert missing == [], "no French for:\n" + "\n".join(missing)
    assert empty == [], "empty French for:\n" + "\n".join(empty)
    assert placeholders == [], "placeholders differ:\n" + "\n".join(placeholders)


@pytest.mark.parametrize("po", french_catalogues(), ids=lambda p: p.parts[-4])
def test_catalogue_headers(po):
    text = po.read_text(encoding="utf-8")
    assert '"Content-Type: text/plain; charset=UTF-8\\n"' in text
    assert '"Plural-Forms: nplurals=2; plural=(n > 1);\\n"' in text


@pytest.mark.parametrize("po", french_catalogues(), ids=lambda p: p.parts[-4])
def test_plural_messages_have_exactly_the_french_forms(po):
    """French has two plural forms; a third (empty) one made Babel warn and drop it."""
    lines = po.read_text(encoding="utf-8").splitlines()
    assert not [n for n, line in enumerate(lines, 1) if line.startswith("msgstr[2]")]
    with po.open("rb") as f:
        catalog = read_po(f, locale="fr")
    for message in catalog:
        if message.pluralizable and message.id:
            assert len(message.string) == 2 and all(message.string), message.id
