"""Which language a page is shown in: ui_locales (remembered for the rest of the visit), then the
signed-in person's language, then the browser's.

The person's language is remembered in the (signed) state cookie when they sign in or change it
(``remember_account_language``), so choosing a language never touches the database: a page can be
rendered even while PostgreSQL is down (the 503 page itself)."""

from __future__ import annotations

from flask import request, session

SUPPORTED = ("en", "cy")
ACCOUNT_LANGUAGE = "account_lang"


def _from_ui_locales(value: str) -> str | None:
    for tag in value.split()[:10]:
        lang = tag.split("-")[0].lower()
        if lang in SUPPORTED:
            return lang
    return None


def select_locale() -> str:
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
