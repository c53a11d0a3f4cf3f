"""Token endpoint (RFC 6749 §3.2): every grant goes through Authlib."""

from __future__ import annotations

from flask import Blueprint

from ...extensions import authorization_server

bp = Blueprint("token", __name__)


@bp.post("/token")
def token():
    return authorization_server().create_token_response()
