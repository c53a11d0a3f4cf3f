"""Token endpoint (RFC 6749 §3.2): every grant goes through Authlib."""

from __future__ import annotations

from flask import Blueprint, current_app

bp = Blueprint("token", __name__)


@bp.post("/token")
def token():
    return current_app.extensions["idp.oauth"].create_token_response()
