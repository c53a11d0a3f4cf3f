"""The SSO session cookie: ``__Host-`` prefixed, HttpOnly, Secure (unless a localhost http issuer).
Only a random id travels in it; the session itself is a database row (idp.accounts.sessions).

The remembered-device cookie (idp.accounts.remembered) is a second one, alike but long-lived and
signed: a random token, of which the database keeps only the hash."""

from __future__ import annotations

from flask import current_app, g, request, session
from itsdangerous import BadSignature, Signer

from .extensions import settings as app_settings

DEVICE_COOKIE = "__Host-idp_device"


def name() -> str:
    settings = app_settings()
    configured = settings.session.cookie_name
    if settings.issuer_is_local_http and configured.startswith("__Host-"):
        return configured[len("__Host-"):]  # browsers refuse __Host- cookies without https
    return configured


def read() -> str | None:
    return request.cookies.get(name())


def attach(response, value: str) -> None:
    """A session starts in this browser (a sign-in)."""
    settings = app_settings()
    response.set_cookie(name(), value, httponly=True, secure=not settings.issuer_is_local_http,
                        samesite=settings.session.same_site, path="/")
    _new_csrf_token()


def clear(response) -> None:
    """The session in this browser ends (a sign-out)."""
    _new_csrf_token()
    settings = app_settings()
    response.delete_cookie(name(), path="/", secure=not settings.issuer_is_local_http,
                           samesite=settings.session.same_site, httponly=True)


# ------------------------------------------------------------------ the remembered device
def _device_name() -> str:
    if app_settings().issuer_is_local_http:
        return DEVICE_COOKIE[len("__Host-"):]
    return DEVICE_COOKIE


def _signer() -> Signer:
    # Signed so that a made-up value is refused without a database lookup.
    return Signer(current_app.secret_key, salt="remembered-device")


def read_device() -> str | None:
    """The remembered-device token this browser holds, if its signature is good."""
    raw = request.cookies.get(_device_name())
    if not raw or len(raw) > 200:
        return None
    try:
        return _signer().unsign(raw).decode()
    except (BadSignature, UnicodeDecodeError):
        return None


def attach_device(response, token: str, days: int) -> None:
    settings = app_settings()
    response.set_cookie(_device_name(), _signer().sign(token).decode(), max_age=days * 86400, httponly=True,
                        secure=not settings.issuer_is_local_http, samesite="Lax", path="/")


def clear_device(response) -> None:
    settings = app_settings()
    response.delete_cookie(_device_name(), path="/", secure=not settings.issuer_is_local_http, samesite="Lax",
                           httponly=True)


def _new_csrf_token() -> None:
    """Forget the browser's CSRF token (Flask-WTF keeps it in the state cookie, for as long as the
    browser lives): the next page makes a new one. So a token read before a sign-in, or by the
    person who used this browser before, posts nothing in the session that follows."""
    key = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    session.pop(key, None)
    g.pop(key, None)
