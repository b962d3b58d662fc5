"""Volunteer pages in other languages (web.i18n): the catalogues cover every string
the pages and their scripts show, the compiled catalogues match their sources,
and a page speaks the language the volunteer chose or their browser asks for."""
from __future__ import annotations

import gettext
import json
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from engine.quality.reports import REASONS
from web.i18n import COOKIE, LANGUAGES
from web.i18n_messages import JS_MESSAGES, REPORT_REASONS

ROOT = Path(__file__).resolve().parents[1]
TRANSLATIONS = ROOT / "web" / "translations"
# every page script: a new one's strings are then checked without being listed here
SCRIPTS = [*sorted((ROOT / "web" / "static").glob("*.js")),
           *sorted((ROOT / "task_types" / "templates").glob("*.js"))]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "_l": None}
# babel.cfg's sources: the volunteer pages' templates and the modules with marked strings
SOURCES = [(ROOT / "web" / "templates", [("*.html", "jinja2")]),
           (ROOT / "task_types" / "templates", [("*.html", "jinja2")]),
           (ROOT / "web", [("i18n_messages.py", "python"), ("errors.py", "python")])]


def _source_messages() -> set:
    found = set()
    for folder, method_map in SOURCES:
        for _, _, message, _, _ in extract_from_dir(str(folder), method_map, keywords=KEYWORDS):
            found.add(message)
    return found


def _catalogue(lang: str):
    with open(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po", "rb") as po:
        return read_po(po, locale=lang)


def _script_strings() -> list[str]:
    literal = r'"((?:[^"\\]|\\.)*)"'
    found = []
    for script in SCRIPTS:
        for match in re.finditer(r"\btn?\(\s*" + literal + r"(?:\s*,\s*" + literal + r")?",
                                 script.read_text()):
            found += [g for g in match.groups() if g is not None]
    return found


@pytest.mark.parametrize("lang", [code for code in LANGUAGES if code != "en"])
def test_every_page_string_is_translated(lang):
    catalogue = _catalogue(lang)
    translated = {m.id: m.string for m in catalogue if m.id}
    assert len(_source_messages()) > 150  # the extraction still finds the pages' words
    missing = [m for m in _source_messages() if m not in translated]
    assert not missing, f"not in {lang}'s messages.po: {missing[:5]}"
    empty = [m.id for m in catalogue if m.id and (
        "fuzzy" in m.flags or not all(m.string if isinstance(m.string, tuple) else [m.string]))]
    assert not empty, f"untranslated or fuzzy in {lang}: {empty[:5]}"


@pytest.mark.parametrize("lang", [code for code in LANGUAGES if code != "en"])
def test_the_compiled_catalogue_matches_its_source(lang):
    # a .po edited without `pybabel compile -d web/translations` fails here
    folder = TRANSLATIONS / lang / "LC_MESSAGES"
    with open(folder / "messages.mo", "rb") as mo:
        compiled = gettext.GNUTranslations(mo)
    for message in _catalogue(lang):
        if not message.id:
            continue
        if isinstance(message.id, tuple):
            assert compiled.ngettext(*message.id, 1) == message.string[0], message.id
            assert compiled.ngettext(*message.id, 5) == message.string[1], message.id
        else:
            assert compiled.gettext(message.id) == message.string, message.id


def test_every_script_string_is_in_the_catalogue_and_none_is_stale():
    used = _script_strings()
    assert used, "the scan found no t() call: the pattern no longer matches the scripts"
    assert set(used) - set(JS_MESSAGES) == set()
    assert set(JS_MESSAGES) - set(used) == set()


def test_the_report_reasons_are_the_engines():
    assert REPORT_REASONS == tuple(REASONS.values())


def test_a_french_browser_gets_french_pages(client):
    r = client.get("/", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert '<html lang="fr">' in html and "Donnez quelques minutes" in html
    assert 'aria-current="true">Français</a>' in html
    english = client.get("/", headers={"Accept-Language": "de, en;q=0.5"}).get_data(as_text=True)
    assert '<html lang="en">' in english and "Give a few minutes" in english


def test_the_switch_remembers_the_choice_over_the_browsers(client):
    r = client.get("/language/fr?next=/me", headers={"Accept-Language": "en"})
    assert r.status_code == 302 and r.headers["Location"] == "/me"
    assert f"{COOKIE}=fr" in r.headers["Set-Cookie"]
    page = client.get("/me", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="fr">' in page and "Votre bénévolat" in page
    # the page's scripts get their words in the page's language, as data
    block = re.search(r'<script type="application/json" id="i18n">(.*?)</script>', page, re.S)
    catalogue = json.loads(block[1])
    assert catalogue["lang"] == "fr"
    assert catalogue["messages"]["Saved, thank you!"] == "Enregistré, merci !"


def test_the_switch_refuses_unknown_languages_and_other_sites(client):
    r = client.get("/language/xx?next=//evil.example/")
    assert r.status_code == 302 and r.headers["Location"] == "/"
    assert "Set-Cookie" not in r.headers
    for elsewhere in ("/\\evil.example/", "https://evil.example/", "/\r\n//evil.example"):
        r = client.get("/language/fr", query_string={"next": elsewhere})
        assert r.headers["Location"] == "/", elsewhere


def test_missing_pages_speak_french_and_the_console_stays_english(client):
    r = client.get("/projects/999999", headers={"Accept-Language": "fr"})
    assert r.status_code == 404
    assert "Page introuvable" in r.get_data(as_text=True)
    console = client.get("/console/login", headers={"Accept-Language": "fr"})
    assert '<html lang="en">' in console.get_data(as_text=True)
