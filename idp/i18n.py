"""Which language a page is shown in: ui_locales (remembered for the rest of the visit), then the
signed-in person's language, then the browser's.

The person's language is remembered in the (signed) state cookie when they sign in or change it
(``remember_account_language``), so choosing a language never touches the database: a page can be
rendered even while PostgreSQL is down (the 503 page itself).

Messages that services build (a policy's refusal, an administrative error) are lazy strings
(``lazy_gettext`` with named placeholders), so they are translated only when shown: in the page's
language on a page, in English where machines and operators read them (``english``: the admin
API, the audit trail, the command line)."""

from __future__ import annotations

from flask import has_request_context, request, session
from flask_babel import LazyString, force_locale, get_locale, gettext

SUPPORTED = ("en", "cy")
ACCOUNT_LANGUAGE = "account_lang"

#: a message as services hand it on: translated now (``gettext``) or when shown (``lazy_gettext``)
Text = str | LazyString


class LazyText(LazyString):
    """A lazy message that Jinja escapes like any text. flask_babel's LazyString says it is HTML
    (``__html__``), so what someone typed, put into one of its placeholders, would reach the page
    unescaped."""

    @property
    def __html__(self):
        raise AttributeError("__html__")


def lazy_gettext(string: str, **variables) -> LazyText:
    """``flask_babel.lazy_gettext`` for messages with placeholders: translated (and filled) when
    shown, escaped on a page."""
    return LazyText(gettext, string, **variables)


def N_(message: str) -> str:  # noqa: N802 - the name Babel's extractor knows
    """Mark a message for extraction where it is only named, to be translated (with its
    placeholders filled) where it is used."""
    return message


def english(text: Text) -> str:
    """The English of a message, whatever the page's language: for the admin API, the audit trail
    and the logs, which are read by machines and operators."""
    with force_locale("en"):
        return str(text)


class Bilingual:
    """A name from the policy files with its Welsh form (``name``, ``name_cy``), put into a lazy
    message: it reads in the language the message is shown in."""

    __slots__ = ("english", "welsh")

    def __init__(self, english: str, welsh: str = "") -> None:
        self.english, self.welsh = english, welsh

    def __str__(self) -> str:
        locale = get_locale()
        return self.welsh if self.welsh and locale is not None and locale.language == "cy" else self.english

    def __repr__(self) -> str:
        return f"Bilingual({self.english!r}, {self.welsh!r})"


def _from_ui_locales(value: str) -> str | None:
    for tag in value.split()[:10]:
        lang = tag.split("-")[0].lower()
        if lang in SUPPORTED:
            return lang
    return None


def select_locale() -> str:
    if not has_request_context():
        return "en"  # the command line and background work: messages for operators, in English
    # the query string only: reading a form here would parse (and size-check) every body on every page
    chosen = _from_ui_locales(request.args.get("ui_locales", "")[:200])
    if chosen:
        session["lang"] = chosen
        return chosen
    for remembered in (session.get("lang"), session.get(ACCOUNT_LANGUAGE)):
        if remembered in SUPPORTED:
            return remembered
    return request.accept_languages.best_match(SUPPORTED) or "en"


def remember_account_language(language: str | None) -> None:
    """The signed-in person's own language, for the pages that follow (set at sign-in and when
    they change it)."""
    if language in SUPPORTED:
        session[ACCOUNT_LANGUAGE] = language
