"""The SSO session cookie: ``__Host-`` prefixed, HttpOnly, Secure (unless a localhost http issuer).
Only a random id travels in it; the session itself is a database row (idp.accounts.sessions)."""

from __future__ import annotations

from flask import request

from .extensions import settings as app_settings


def name() -> str:
    settings = app_settings()
    configured = settings.session.cookie_name
    if settings.issuer_is_local_http and configured.startswith("__Host-"):
        return configured[len("__Host-"):]  # browsers refuse __Host- cookies without https
    return configured


def read() -> str | None:
    return request.cookies.get(name())


def attach(response, value: str) -> None:
    settings = app_settings()
    response.set_cookie(name(), value, httponly=True, secure=not settings.issuer_is_local_http,
                        samesite=settings.session.same_site, path="/")


def clear(response) -> None:
    settings = app_settings()
    response.delete_cookie(name(), path="/", secure=not settings.issuer_is_local_http,
                           samesite=settings.session.same_site, httponly=True)
