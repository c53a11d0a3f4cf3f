"""Which language a page is shown in: ui_locales, then the account's language, then the browser's."""

from __future__ import annotations

from flask import g, request

SUPPORTED = ("en", "cy")


def select_locale() -> str:
    for tag in request.values.get("ui_locales", "").split():
        lang = tag.split("-")[0].lower()
        if lang in SUPPORTED:
            return lang
    account_language = g.get("account_language")
    if account_language in SUPPORTED:
        return account_language
    return request.accept_languages.best_match(SUPPORTED) or "en"
