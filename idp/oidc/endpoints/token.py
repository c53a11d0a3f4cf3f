"""Token endpoint (RFC 6749 §3.2): every grant goes through Authlib."""

from __future__ import annotations

from flask import Blueprint, request

from ...extensions import authorization_server
from .. import dpop
from . import refuse_unreadable_forms

bp = Blueprint("token", __name__)
refuse_unreadable_forms(bp)


@bp.post("/token")
def token():
    response = authorization_server().create_token_response()
    # the nonce the next proof must carry, on errors and successes alike
    response.headers.update(dpop.nonce_header("DPoP" in request.headers))
    return response
