"""OpenID Connect: the only package that touches Authlib's server classes."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from .endpoints import jwks

    app.register_blueprint(jwks.bp)
