"""Token endpoint (RFC 6749 §3.2): every grant goes through Authlib."""

from __future__ import annotations

from flask import Blueprint, request

from ...extensions import authorization_server
from .. import dpop

bp = Blueprint("token", __name__)


@bp.post("/token")
def token():
    response = authorization_server().create_token_response()
    if dpop.nonce_required() and "DPoP" in request.headers:
        # the nonce the next proof must carry (RFC 9449 §8), on errors and successes alike
        response.headers["DPoP-Nonce"] = dpop.current_nonce()
    return response
