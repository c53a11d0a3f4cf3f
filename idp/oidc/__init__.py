"""OpenID Connect: the only package that touches Authlib's server classes."""

from __future__ import annotations

from flask import Flask

from ..extensions import csrf


def _revoke_tokens_when_access_ends(account, keep_sid=None, **_):
    from . import tokens

    tokens.revoke_account_tokens(account, keep_sid=keep_sid)


def _when_a_session_ends(entry, **_):
    from . import backchannel, tokens

    tokens.end_session_grants(entry.sid, joined=bool(entry.clients), subject=entry.account.sub,
                              centre=entry.account.centre_number)
    backchannel.session_ended(entry)


def init_app(app: Flask) -> None:
    from .. import events
    from .endpoints import (
        authorize,
        end_session,
        introspect,
        par,
        register,
        revoke,
        token,
        userinfo,
    )
    from .server import create_server

    # what ending a session or someone's access means for the tokens this package issued
    events.access_ended.connect(_revoke_tokens_when_access_ends, weak=False)
    events.session_ended.connect(_when_a_session_ends, weak=False)
    server = create_server(app)
    end_session.register(server)
    for module in (authorize, par, token, userinfo, introspect, revoke, end_session, register):
        app.register_blueprint(module.bp)
    # Machine-to-machine endpoints and cross-site protocol POSTs carry no CSRF token by design;
    # the logout confirmation form checks its own.
    for module in (token, par, userinfo, introspect, revoke, authorize, end_session, register):
        csrf.exempt(module.bp)
