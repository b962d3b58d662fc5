"""Volunteer pages in the volunteer's language (Flask-Babel).

Every volunteer-facing string of the pages (templates, and the pages' own
JavaScript through `js_catalogue`) goes through gettext; the catalogues live
in web/translations/<lang>/LC_MESSAGES/messages.po, compiled to .mo beside
them (`pybabel compile -d web/translations`; tests/test_translations.py fails
when a .mo is older than its .po or a message is untranslated).

The language is the one the volunteer chose with the switch on every
volunteer page (a cookie), else the best match of the browser's
Accept-Language, else English; `<html lang>` follows. The console and the API
stay English: staff tools are not translated yet, so their pages say lang="en".
"""
from __future__ import annotations

from flask import Flask, redirect, request, url_for
from flask_babel import Babel, get_locale, gettext

from web.i18n_messages import JS_MESSAGES

LANGUAGES = {"en": "English", "fr": "Français"}  # code -> the language's own name
DEFAULT = "en"
COOKIE = "bitesize_lang"
COOKIE_SECONDS = 365 * 24 * 3600
# The endpoints whose pages are translated; every other page is English.
VOLUNTEER_PAGES = ("index", "project_page", "my_volunteering", "set_language", "unsubscribe")


def select_locale() -> str:
    """The cookie's language, else the browser's best, else English; English
    outside the volunteer pages."""
    if request.path.startswith("/console") or (
            request.endpoint is not None and request.endpoint not in VOLUNTEER_PAGES):
        return DEFAULT  # a missing page (no endpoint) outside the console is a volunteer's
    return chosen_language()


def chosen_language() -> str:
    """The volunteer's language for a call of the volunteer pages' scripts (the
    API itself speaks English): the switch's cookie, else Accept-Language."""
    chosen = request.cookies.get(COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES, default=DEFAULT)


def page_lang() -> str:
    """The language of the page being rendered, for `<html lang>`."""
    return str(get_locale() or DEFAULT)


def set_language(code: str):
    """The language switch: remember the choice, back to the page it was made on."""
    back = request.args.get("next", "")
    # only back to this site: browsers read "/\\host" and "//host" as another host
    if not back.startswith("/") or back[1:2] in ("/", "\\") or any(
            ord(c) < 32 for c in back):
        back = url_for("index")
    response = redirect(back)
    if code in LANGUAGES:
        response.set_cookie(COOKIE, code, max_age=COOKIE_SECONDS, samesite="Lax",
                            secure=request.is_secure, httponly=True)
    return response


# The pages' JavaScript strings (static/volunteer.js, static/me.js, the task
# types' scripts) are web.i18n_messages.JS_MESSAGES, by their English text;
# `{name}` marks a value filled in by the script. A page gets them translated
# in a JSON data block (not script, so the strict CSP holds).
def js_messages() -> dict[str, str]:
    """The scripts' messages in the page's language, only those translated
    (the scripts show the English text of any other)."""
    out = {}
    for english in JS_MESSAGES:
        said = gettext(english)
        if said != english:
            out[english] = said
    return out


def js_catalogue() -> dict:
    """What the page's scripts need to speak the page's language."""
    return {"lang": page_lang(), "messages": js_messages()}


def init_app(app: Flask) -> None:
    Babel(app, locale_selector=select_locale, default_translation_directories="translations")
    app.add_template_global(page_lang, "page_lang")
    app.add_template_global(js_catalogue, "js_catalogue")
    app.add_template_global(LANGUAGES, "LANGUAGES")
    app.add_url_rule("/language/<code>", "set_language", set_language)
