"""Every language we offer is complete: each string the code and templates mark has a
translation, none is fuzzy, placeholders match, and the compiled .mo the service reads
says what its .po says."""

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from babel.support import Translations

from newsletter.core import i18n
from tests.helpers import PROJECT_ROOT

TRANSLATED = [language for language in i18n.LANGUAGES if language != i18n.SOURCE_LOCALE]
# As scripts/translations.sh extracts them.
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None}


def catalog_of(language):
    with open(i18n.TRANSLATIONS_DIR / language / "LC_MESSAGES" / "messages.po", "rb") as po:
        return read_po(po)


@pytest.fixture(scope="module")
def marked_strings():
    """Every message the code and templates mark, extracted as babel.cfg says."""
    with open(PROJECT_ROOT / "babel.cfg") as config:
        method_map, options_map = parse_mapping_cfg(config)
    return {
        message
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(PROJECT_ROOT), method_map, options_map, keywords=KEYWORDS
        )
    }


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_string_has_a_translation_that_is_not_fuzzy(language):
    catalog = catalog_of(language)
    messages = [message for message in catalog if message.id]
    assert messages
    untranslated = [
        message.id
        for message in messages
        if not all(message.string if message.pluralizable else [message.string])
    ]
    assert untranslated == []
    assert [message.id for message in messages if message.fuzzy] == []
    assert not catalog.fuzzy
    # Babel's checks: the same %(placeholders)s in the translation as in the English.
    problems = [(message.id, errors) for message, errors in catalog.check() if errors]
    assert problems == []


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_marked_string_is_in_the_catalog(language, marked_strings):
    # Found in Python (lazily translated, marked for later) and in templates.
    assert {"Please enter your email address.", "Welcome aboard", "Unsubscribe"} < marked_strings
    in_catalog = {message.id for message in catalog_of(language) if message.id}
    missing = {
        (message if isinstance(message, str) else message[0])
        for message in marked_strings
        if message not in in_catalog
    }
    assert missing == set(), "run scripts/translations.sh update, translate, then compile"


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_compiled_catalog_says_what_the_po_says(language):
    with open(i18n.TRANSLATIONS_DIR / language / "LC_MESSAGES" / "messages.mo", "rb") as mo:
        compiled = Translations(mo)
    stale = []
    for message in catalog_of(language):
        if not message.id:
            continue
        if message.pluralizable:
            singular, plural = message.id
            said = tuple(compiled.ngettext(singular, plural, count) for count in (1, 2))
        else:
            said = compiled.gettext(message.id)
        if said != message.string:
            stale.append(message.id)
    assert stale == [], "run scripts/translations.sh compile"
