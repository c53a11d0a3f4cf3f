"""Pushed authorization request endpoint (RFC 9126 §2): the client authenticates as at the token
endpoint; its request is validated exactly as /authorize would validate it (one pipeline,
``idp.oidc.authorization``) and kept for a short while under a single-use ``request_uri``."""

from __future__ import annotations

from authlib.oauth2 import OAuth2Error
from flask import Blueprint, current_app, jsonify, request
from limits import parse
from werkzeug.datastructures import MultiDict

from ... import policy, protocol
from ...extensions import authorization_server, client_ip
from .. import authorization, dpop, par, tokens
from ..server import refuse_repeated
from . import refuse_unreadable_forms

bp = Blueprint("par", __name__)
refuse_unreadable_forms(bp)

#: parameters that authenticate the client, not part of the authorization request
_CLIENT_AUTH_PARAMS = ("client_secret", "client_assertion", "client_assertion_type")


def _error(error: str, description: str, status: int = 400, headers: dict | None = None):
    response = jsonify(error=error, error_description=description)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    response.headers.update(headers or {})
    return response


def _within_budget(client) -> bool:
    """One push counted against the client's ``par_per_client`` limit (policies/security.toml), in
    the rate limiter's shared storage: atomic across processes. Counted only once the client has
    authenticated, so nobody can spend another client's budget. A public client authenticates with
    nothing (its client_id is no secret), so its budget is per caller's address as well: anyone's
    pushes in its name would otherwise stop every sign-in to it."""
    limit = parse(policy.current().sec("rate_limits").par_per_client)
    who = (client.client_id, client_ip() or "") if client.is_public else (client.client_id,)
    return current_app.extensions["idp.limiter"].limiter.hit(limit, "par", *who)


@bp.post("/par")
def pushed_authorization_request():
    server = authorization_server()
    if request.mimetype != "application/x-www-form-urlencoded":
        return _error("invalid_request", "Send the request as application/x-www-form-urlencoded.")
    oauth_request = server.create_oauth2_request(None)
    try:
        # the authorization request's own parameters are checked by its pipeline, as at /authorize
        refuse_repeated(oauth_request, protocol.CLIENT_AUTH_PARAMETERS)
        client = server.authenticate_client(oauth_request, list(protocol.AUTH_METHODS), endpoint="par")
    except OAuth2Error as error:
        return server.handle_error_response(oauth_request, error)
    if not _within_budget(client):  # RFC 9126 §2.3: 429 Too Many Requests
        return _error("invalid_request", "Too many pushed requests from this client; try again shortly.", 429)

    params = MultiDict([(k, v) for k, v in request.form.items(multi=True) if k not in _CLIENT_AUTH_PARAMS])
    if params.getlist("client_id") not in ([], [client.client_id]):
        return _error("invalid_request", "client_id does not match the authenticated client.")
    params.setlist("client_id", [client.client_id])
    if "request_uri" in params:
        return _error("invalid_request", "request_uri cannot be pushed (RFC 9126 §2.1).")
    if par.oversized(params):
        return _error("invalid_request", "The request's parameters are too long.")
    if "DPoP" in request.headers:
        # the code will be redeemable only with a proof by this key (RFC 9449 §10.1)
        try:
            jkt = dpop.check_proof(request.headers.getlist("DPoP"), method="POST",
                                   url=tokens.issuer() + "/par")
        except dpop.ProofRefused as refused:
            return _error(refused.error, refused.description, headers=dpop.nonce_header(True, refused.error))
        if params.getlist("dpop_jkt") not in ([], [jkt]):
            return _error(dpop.INVALID_PROOF, "dpop_jkt is not the thumbprint of the proof's key.")
        params.setlist("dpop_jkt", [jkt])
    try:
        authorization.validate(server, params, end_user=authorization.PUSH_TIME, pushed=True)
    except OAuth2Error as error:
        return _error(error.error, error.description or "")

    request_uri, expires_in = par.push(client.client_id, authorization.first_values(params))
    response = jsonify(request_uri=request_uri, expires_in=expires_in)
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    response.headers.update(dpop.nonce_header("DPoP" in request.headers))
    return response
