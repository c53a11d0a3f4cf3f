"""Strict security headers on every response."""

from __future__ import annotations

from flask import Flask

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "form-action 'self' https: http://localhost:* http://127.0.0.1:*; frame-ancestors 'none'; "
       "base-uri 'none'")


def init_app(app: Flask) -> None:
    settings = app.config["IDP_SETTINGS"]
    hsts = not settings.issuer_is_local_http

    @app.after_request
    def _security_headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "no-referrer")
        if hsts:
            headers.setdefault("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
        return response
