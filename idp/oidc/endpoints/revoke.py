"""Token revocation (RFC 7009)."""

from __future__ import annotations

from flask import Blueprint

from ...extensions import authorization_server
from . import refuse_unreadable_forms

bp = Blueprint("revoke", __name__)
refuse_unreadable_forms(bp)


@bp.post("/revoke")
def revoke():
    response = authorization_server().create_endpoint_response("revocation")
    return response
