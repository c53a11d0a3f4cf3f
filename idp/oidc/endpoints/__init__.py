"""One module per protocol endpoint."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

FORM = "application/x-www-form-urlencoded"


def refuse_unreadable_forms(bp: Blueprint) -> None:
    """A form body that is not UTF-8 (RFC 6749 appendix B) is refused as such. Werkzeug drops such
    a body whole, so the endpoint would otherwise answer about a missing parameter (``grant_type
    'None'``, an empty response_type) instead of the body."""

    @bp.before_request
    def _readable():
        if request.mimetype != FORM or not request.content_length:
            return None
        try:
            request.get_data(cache=True).decode("utf-8")
        except UnicodeDecodeError:
            response = jsonify(error="invalid_request", error_description="The form body is not UTF-8.")
            response.status_code = 400
            response.headers["Cache-Control"] = "no-store"
            return response
        return None
