"""Which language a page is shown in: ui_locales (remembered for the rest of the visit), then the
account's language, then the browser's."""

from __future__ import annotations

from flask import request, session

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
    if _signed_in_language() in SUPPORTED:
        return _signed_in_language()
    return request.accept_languages.best_match(SUPPORTED) or "en"


def _signed_in_language() -> str | None:
    """The signed-in person's language preference (only looked up when a session cookie is sent)."""
    from .accounts import cookies, sessions

    if not cookies.read():
        return None
    entry = sessions.find(cookies.read())
    return entry.account.language if entry else None
