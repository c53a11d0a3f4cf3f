"""Token introspection (RFC 7662): authenticated clients, their own tokens only."""

from __future__ import annotations

from flask import Blueprint

from ...extensions import authorization_server
from . import refuse_unreadable_forms

bp = Blueprint("introspect", __name__)
refuse_unreadable_forms(bp)


@bp.post("/introspect")
def introspect():
    response = authorization_server().create_endpoint_response("introspection")
    return response
