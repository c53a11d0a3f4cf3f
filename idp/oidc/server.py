"""The one place grants and endpoints are registered with Authlib."""

from __future__ import annotations

import logging
import time

from authlib.integrations.flask_oauth2 import AuthorizationServer as FlaskAuthorizationServer
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import (
    InsecureTransportError,
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    UnsupportedGrantTypeError,
)
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint
from authlib.oauth2.rfc9207 import IssuerParameter as _IssuerParameter
from flask import Flask

from .. import inputs, protocol
from ..accounts import sessions
from ..extensions import client_cache, db, pepper
from . import client_jwks, clients, grants, tokens
from .clients import ClientCache

log = logging.getLogger(__name__)
#: the one answer to every failed client authentication (RFC 6749 §5.2's own words)
CLIENT_AUTH_FAILED = "Client authentication failed."


class AuthorizationServer(FlaskAuthorizationServer):
    def query_client(self, client_id):
        return client_cache().get(client_id)

    def create_oauth2_request(self, request):
        # An authorization request made of given parameters (idp.oidc.authorization) is used as
        # it is; Authlib's Flask server would otherwise always read the HTTP request.
        if isinstance(request, OAuth2Request):
            return request
        return super().create_oauth2_request(request)

    def authenticate_client(self, request, methods, endpoint="token"):
        """Authlib's client authentication (/token, /par, /introspect, /revoke), with one answer
        whatever failed: Authlib says "does not exist" of an unknown client_id and something else
        of a wrong secret or assertion, which would tell anyone which client_ids exist. Always 401,
        with Authlib's Basic challenge."""
        try:
            return super().authenticate_client(request, methods, endpoint)
        except InvalidClientError as refused:
            log.info("client authentication refused", extra={"reason": refused.description})
            raise InvalidClientError(status_code=401, description=CLIENT_AUTH_FAILED) from None

    def save_token(self, token, request):
        principal = request.user
        if principal is None:
            return  # a service's token (client_credentials): nothing is stored
        if "refresh_token" in token:  # the first of a grant (a refresh's successor: RefreshTokenGrant.save_token)
            tokens.save_refresh_token(token["refresh_token"], request.client, principal, token.get("scope", ""),
                                      jkt=grants.refresh_binding(request))
        if principal is not None and principal.sid and request.payload.grant_type == "authorization_code":
            entry = sessions.by_sid(principal.sid, hold=True)  # held to its commit, just below
            if entry is None or entry.ended_at is not None:
                # the sign-in the code was issued in has ended (signed out everywhere, a password or
                # MFA reset, access ended) since: the code lived on in the store, but gives nothing.
                # Held, so an ending at this moment waits for this commit, then revokes what it made
                raise InvalidGrantError("The sign-in this code was issued in has ended.")
            sessions.note_client(entry, request.client.client_id)
        # Always: the session lookup above autoflushes, so "nothing new" can still mean "unsaved".
        # With nothing pending (client_credentials) this costs no round trip.
        db.session.commit()
        if request.payload.grant_type == "authorization_code" and tokens.grant_revoked(principal.grant_id):
            # the code was sent again while this redemption committed: the replay revoked what it
            # could see, not yet this refresh token (tokens.revoke_grant); it ends with the grant
            tokens.revoke_grant(principal.grant_id, reason="authorization code reused",
                                client_id=request.client.client_id)
            raise InvalidGrantError("The authorization code has been used.")

    def create_token_response(self, request=None):
        request = self.create_oauth2_request(request)
        try:
            refuse_repeated(request, protocol.TOKEN_PARAMETERS)
        except InvalidRequestError as error:
            return self.handle_error_response(request, error)
        return super().create_token_response(request)

    def get_token_grant(self, request):
        try:
            return super().get_token_grant(request)
        except UnsupportedGrantTypeError as error:
            error.description = f"grant_type {inputs.echo(request.payload.grant_type)!r} is not supported here."
            raise


class IssuedToken:
    """An access or refresh token as introspection and revocation see it."""

    def __init__(self, kind: str, *, claims: dict | None = None, row=None) -> None:
        self.kind, self.claims, self.row = kind, claims, row

    @property
    def client_id(self) -> str:
        return self.claims["client_id"] if self.kind == "access_token" else self.row.client_id

    def check_client(self, client) -> bool:
        return client.client_id == self.client_id

    def is_expired(self) -> bool:
        if self.kind == "access_token":
            return self.claims["exp"] <= time.time()
        return self.row.expires_at <= time.time()

    def is_revoked(self) -> bool:
        if self.kind == "access_token":
            return False  # verify_access_token already refused revoked ones
        return not self.row.usable or self.row.rotated_at is not None


def _find_token(token_string: str, hint: str | None) -> IssuedToken | None:
    order = ["refresh_token", "access_token"] if hint == protocol.REFRESH_TOKEN else ["access_token", "refresh_token"]
    for kind in order:
        if kind == "access_token":
            data = tokens.verify_access_token(token_string)
            if data is not None:
                return IssuedToken(kind, claims=data)
        else:
            row = tokens.find_refresh_token(token_string)
            if row is not None:
                return IssuedToken(kind, row=row)
    return None


def refuse_repeated(request, names) -> None:
    """RFC 6749 §3.2, §5.2: a request that repeats a parameter is ``invalid_request``; refused
    before the client authenticates or anything is looked up (the first value would otherwise be
    taken silently). A parameter in the query and the body is given twice too."""
    if repeated := inputs.repeated(request.payload.data, names):
        raise InvalidRequestError(f"{repeated} is given more than once.")


class _HintOnly:
    """``token_type_hint`` is a hint (RFC 7009 §2.1, RFC 7662 §2.1: the server may ignore it):
    one of no kind found here (``id_token``) is as none, and the token is looked up as usual.
    Authlib would refuse it with a 401 ``unsupported_token_type`` and no challenge. And no
    parameter may be given twice."""

    def create_endpoint_response(self, request):
        refuse_repeated(request, protocol.TOKEN_INFO_PARAMETERS)
        return super().create_endpoint_response(request)

    def check_params(self, request, client):
        if "token" not in request.form:
            raise InvalidRequestError()


class IntrospectionEndpoint(_HintOnly, _IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = list(protocol.CONFIDENTIAL_AUTH_METHODS)

    def query_token(self, token_string, token_type_hint):
        return _find_token(token_string, token_type_hint)

    def check_permission(self, token, client, request) -> bool:
        # A client sees only its own tokens; anything else is simply "not active".
        return token.check_client(client)

    def introspect_token(self, token: IssuedToken) -> dict:
        if token.kind == "access_token":
            return access_token_introspection(token.claims)
        row = token.row
        return {"active": True, "token_type": "refresh_token", "scope": row.scope, "client_id": row.client_id,
                "sub": row.person.sub, "iss": tokens.issuer(), "exp": row.expires_at, "iat": row.issued_at}


def access_token_introspection(c: dict) -> dict:
    """What introspection says of a live access token (RFC 7662 §2.2), from its verified claims."""
    out = {k: c[k] for k in ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti") if k in c}
    for extra in ("role", "centre", "profiles", "acr", "amr", "auth_time", "sid"):
        if extra in c:
            out[extra] = c[extra]
    out.update(active=True, token_type=protocol.TOKEN_TYPE_DPOP if "cnf" in c else protocol.TOKEN_TYPE_BEARER)
    if "cnf" in c:  # the key the token is bound to (RFC 9449 §6.2)
        out["cnf"] = c["cnf"]
    return out


class RevocationEndpoint(_HintOnly, _RevocationEndpoint):
    CLIENT_AUTH_METHODS = list(protocol.AUTH_METHODS)

    def query_token(self, token_string, token_type_hint):
        return _find_token(token_string, token_type_hint)

    def revoke_token(self, token: IssuedToken, request) -> None:
        if token.kind == "access_token":
            tokens.revoke_access_token(token.claims)
        else:
            # Revoking a refresh token ends its whole grant, access tokens included (RFC 7009 §2.1).
            tokens.revoke_grant(token.row.grant_id, reason="revoked by client", client_id=token.row.client_id)


class IssuerParameter(_IssuerParameter):
    def get_issuer(self) -> str:
        return tokens.issuer()


def _token_endpoint_audiences() -> list[str]:
    # the pushed authorization request endpoint authenticates clients as /token does (RFC 9126 §2)
    issuer = tokens.issuer()
    return [issuer + "/token", issuer, issuer + "/par"]


def _insecure_transport(_error):
    """Authlib refuses plain http but to this machine (RFC 6749 §3.1, §3.2: TLS is required) by
    raising as it reads the request: the protocol's error, not a server error."""
    body = {"error": "invalid_request", "error_description": "Send OAuth requests over https."}
    return body, 400, {"Cache-Control": "no-store"}


def _client_by_secret(query_client, client_id: str | None, client_secret: str | None):
    """The client a client_id and secret authenticate, or None. Unlike Authlib's, an unknown
    client_id goes through a secret check too (``clients.check_secret_of_no_client``)."""
    if not client_id or not client_secret:
        return None
    client = query_client(client_id)
    if client is None:
        clients.check_secret_of_no_client(client_secret, pepper())
        return None
    return client if client.check_client_secret(client_secret) else None


def _client_secret_basic(query_client, request):
    """client_secret_basic; credentials that are not UTF-8 are no credentials (401 invalid_client):
    Authlib's own decoding lets the error out, a 500."""
    try:
        client_id, client_secret = extract_basic_authorization(request.headers)
    except UnicodeDecodeError:
        return None
    return _client_by_secret(query_client, client_id, client_secret)


def _client_secret_post(query_client, request):
    return _client_by_secret(query_client, request.form.get("client_id"), request.form.get("client_secret"))


def create_server(app: Flask) -> AuthorizationServer:
    settings = app.config["IDP_SETTINGS"]
    app.extensions["idp.clients"] = ClientCache(app.extensions["idp.store"],
                                                settings.tokens.client_cache_seconds,
                                                app.extensions["idp.pepper"])
    server = AuthorizationServer()
    server.init_app(app)
    server.register_token_generator("default", grants.issue_tokens)
    server.register_client_auth_method(protocol.CLIENT_SECRET_BASIC, _client_secret_basic)
    server.register_client_auth_method(protocol.CLIENT_SECRET_POST, _client_secret_post)
    server.register_client_auth_method("private_key_jwt",
                                       grants.PrivateKeyJWT(_token_endpoint_audiences, client_jwks.fetch))
    server.register_grant(grants.AuthorizationCodeGrant,
                          [grants.S256CodeChallenge(required=True), grants.OpenIDConnect(require_nonce=False)])
    server.register_grant(grants.RefreshTokenGrant)
    server.register_grant(grants.ClientCredentialsGrant)
    server.register_endpoint(IntrospectionEndpoint)
    server.register_endpoint(RevocationEndpoint)
    server.register_extension(IssuerParameter())
    app.register_error_handler(InsecureTransportError, _insecure_transport)
    app.extensions["idp.oauth"] = server
    return server
