"""Which language a page is shown in: ui_locales (remembered for the rest of the visit), then the
account's language, then the browser's."""

from __future__ import annotations

from flask import g, request, session

SUPPORTED = ("en", "cy")


def _from_ui_locales(value: str) -> str | None:
    for tag in value.split()[:10]:
        lang = tag.split("-")[0].lower()
        if lang in SUPPORTED:
            return lang
    return None


def select_locale() -> str:
    chosen = _from_ui_locales(request.values.get("ui_locales", "")[:200])
    if chosen:
        session["lang"] = chosen
        return chosen
    if session.get("lang") in SUPPORTED:
        return session["lang"]
    account_language = g.get("account_language")
    if account_language in SUPPORTED:
        return account_language
    return request.accept_languages.best_match(SUPPORTED) or "en"
