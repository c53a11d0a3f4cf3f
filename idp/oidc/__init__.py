"""OpenID Connect: the only package that touches Authlib's server classes."""

from __future__ import annotations

from flask import Flask

from ..extensions import csrf


def init_app(app: Flask) -> None:
    from .endpoints import authorize, discovery, end_session, introspect, jwks, register, revoke, token, userinfo
    from .server import create_server

    server = create_server(app)
    end_session.register(server)
    for module in (discovery, jwks, authorize, token, userinfo, introspect, revoke, end_session, register):
        app.register_blueprint(module.bp)
    # Machine-to-machine endpoints and cross-site protocol POSTs carry no CSRF token by design;
    # the logout confirmation form checks its own.
    for module in (token, userinfo, introspect, revoke, authorize, end_session, register):
        csrf.exempt(module.bp)
