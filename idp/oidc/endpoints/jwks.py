"""JWKS: the public half of every published signing key."""

from __future__ import annotations

import json

from flask import Blueprint, Response

from ...extensions import keys
from ...extensions import settings as app_settings

bp = Blueprint("jwks", __name__)


_serialised: dict = {}  # id(doc) -> (doc, bytes): the document changes at most once a second


@bp.get("/jwks.json")
def jwks():
    settings = app_settings()
    doc = keys().jwks(settings.max_jwt_lifetime)
    cached = _serialised.get(id(doc))
    if cached is None or cached[0] is not doc:
        _serialised.clear()
        cached = _serialised[id(doc)] = (doc, json.dumps(doc, separators=(",", ":")).encode())
    response = Response(cached[1], mimetype="application/json")
    response.headers["Cache-Control"] = f"public, max-age={settings.keys.jwks_max_age}"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
