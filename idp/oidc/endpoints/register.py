"""Client registration endpoints: POST /register (RFC 7591), GET/PUT/DELETE /register/<id> (RFC 7592)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from ... import inputs, protocol
from ...extensions import pepper
from ...i18n import english
from .. import bearer, clients, registration

bp = Blueprint("register", __name__)


def _json_error(status: int, error: str, description: str):
    """An RFC 7591 error: for programs, in English (``english``) whatever the caller's language."""
    response = jsonify(error=error, error_description=description)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = bearer.challenge("register", error)
    return response


def _bearer() -> str | None:
    """The initial or registration access token; one sent any other way counts as none."""
    try:
        presented = bearer.read(schemes=(protocol.TOKEN_TYPE_BEARER,))
    except bearer.BearerProblem:
        return None
    return presented.token if presented else None


def _metadata():
    try:
        data = inputs.loads(request.get_data(cache=True)) if request.mimetype == "application/json" else None
    except inputs.BadJson as exc:
        raise clients.ClientMetadataError(f"the body could not be read: {exc}") from None
    if not isinstance(data, dict):
        raise clients.ClientMetadataError("send the client metadata as a JSON object")
    return data


def _done(body: dict, status: int = 200):
    response = jsonify(body)
    response.status_code = status
    return response


@bp.post("/register")
def register():
    initial = registration.consume_initial_token(_bearer())
    if initial is None:
        return _json_error(401, "invalid_token", "A valid initial access token is required to register.")
    try:
        row, secret, token = registration.register(_metadata(), initial)
    except clients.ClientMetadataError as exc:
        return _json_error(400, exc.error, english(exc.description))
    return _done(registration.response(row, secret=secret, registration_token=token), 201)


def _token_refused():
    # RFC 7592 §2: the same answer for an unknown client, a bad token and a disabled client
    return _json_error(401, "invalid_token", "The registration access token is not valid for this client.")


@bp.route("/register/<client_id>", methods=["GET", "PUT", "DELETE"])
def manage(client_id):
    row = registration.client_for_registration_token(client_id, _bearer())
    if row is None:
        return _token_refused()
    if request.method == "GET":
        return _done(registration.response(row))
    if request.method == "DELETE":
        clients.delete(client_id, actor=f"registration:{client_id}")
        response = current_app.response_class(status=204)
        return response
    try:
        meta = _metadata()
        if meta.get("client_id") != client_id:
            raise clients.ClientMetadataError("client_id must be the registered client's id")
        given_secret = meta.pop("client_secret", None)
        if given_secret is not None and not row.secret_hash:
            raise clients.ClientMetadataError("this client has no secret")
        for key in ("client_id", "registration_access_token", "registration_client_uri",
                    "client_secret_expires_at", "client_id_issued_at"):
            meta.pop(key, None)
        updated = clients.update(client_id, meta, actor=f"registration:{client_id}",
                                 pepper=pepper(), self_registered=True)
    except clients.RegistrationEnded:
        return _token_refused()
    except clients.ClientMetadataError as exc:
        return _json_error(400, exc.error, english(exc.description))
    return _done(registration.response(updated.client, secret=updated.client_secret))
