"""The three calls services make all the time, answered ahead of Flask's request handling and
Authlib's generic endpoint machinery when they come in the plain form services send: a secret in a
Basic header and a short form body, or a person's bearer token and no body.

- ``POST /token`` with ``grant_type=client_credentials`` (and perhaps ``scope``): a service's own
  token;
- ``POST /introspect`` with ``token`` (and perhaps ``token_type_hint=access_token``): a resource
  server asking about a live access token issued to it;
- ``GET /userinfo`` with ``Authorization: Bearer``: a relying party asking about the person a live
  access token of theirs speaks for.

Why: a profile of each (tests/perf/README.md) put about two thirds of its CPU in building Flask's
request context and Authlib's request object, merging the query and the form, and finding the grant
or endpoint, around the work that matters (a signature, the revocation markers).

No rule is decided here. The same checks as the endpoints', by the same functions: the client as
this process's cache holds it (kept exact by the change notices), its way of authenticating and its
grant types (RegisteredClient), its secret (``check_client_secret``: the current one, or the
previous one while a rotation's grace lasts), the scope (``grants.service_scope``), the token
(``grants.issue_tokens``, counted like every issued token), the token introspected
(``tokens.verify_access_token``: signature, issuer, type, expiry, revocation) and what is said of
it (``server.access_token_introspection``), the person and what is said of them
(``tokens.person_and_profiles``, ``claims.user_claims``). Everything else goes to the endpoint untouched and is
answered there exactly as before: a query string, a DPoP proof, a parameter the handler does not
take or one given twice, credentials in the body, a body over 8 KiB, plain http to anything but
this machine (Authlib's transport rule), a client this process has not cached yet, a client that
must bind its tokens with DPoP, a refresh token, and every refusal or "not active". So an error is
the endpoint's error whichever way a request came in; a request that fails here costs the
endpoint's price once more, never a different answer.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

from authlib.common.security import is_secure_transport
from authlib.oauth2.rfc6749.errors import InvalidScopeError
from flask import Flask, current_app
from sqlalchemy.exc import DBAPIError
from werkzeug.wsgi import get_host

from .. import metrics, protocol
from ..extensions import server_gone
from ..store import StoreUnavailable
from . import claims, tokens
from .grants import issue_tokens, service_scope
from .server import access_token_introspection

log = logging.getLogger(__name__)

#: a plain request's form (``grant_type=client_credentials&scope=...``, ``token=<JWT>``) fits
MAX_BODY = 1024 * 8
FORM = "application/x-www-form-urlencoded"
JSON_HEADERS = (("Content-Type", "application/json"), ("Cache-Control", "no-store"), ("Pragma", "no-cache"))
USERINFO_HEADERS = (("Content-Type", "application/json"),)


def service_token(client, form: dict) -> dict | None:
    """The token endpoint's answer to a service asking for its own token, or None."""
    if form.get("grant_type") != protocol.CLIENT_CREDENTIALS or client.dpop_bound_access_tokens \
            or not client.check_endpoint_auth_method(protocol.CLIENT_SECRET_BASIC, "token") \
            or not client.check_grant_type(protocol.CLIENT_CREDENTIALS):
        return None
    try:
        scope = service_scope(client, form.get("scope"))
    except InvalidScopeError:
        return None
    token = issue_tokens(protocol.CLIENT_CREDENTIALS, client, None, scope, include_refresh_token=False)
    metrics.token_issued(protocol.CLIENT_CREDENTIALS, client.client_id)
    return token


def introspection(client, form: dict) -> dict | None:
    """The introspection endpoint's answer about a live access token of this client's, or None."""
    if form.get("token_type_hint", protocol.ACCESS_TOKEN_HINT) != protocol.ACCESS_TOKEN_HINT \
            or not client.check_endpoint_auth_method(protocol.CLIENT_SECRET_BASIC, "introspection"):
        return None
    claims = tokens.verify_access_token(form.get("token", ""))
    if claims is None or claims.get("client_id") != client.client_id:
        return None
    return access_token_introspection(claims)


def userinfo(token: str) -> dict | None:
    """UserInfo's answer for a live bearer access token with scope ``openid``, or None."""
    checked = tokens.check_access_token(token, tokens.subject_keys)
    if checked is None:
        return None
    data, copy_values = checked
    if data.get("cnf") is not None or "openid" not in str(data.get("scope", "")).split():
        return None
    client = current_app.extensions["idp.clients"].cached(data["client_id"])
    if client is None:
        return None
    person, profiles = tokens.person_and_profiles(data, copy_values)
    if person is None:
        return None
    return claims.user_claims(person, data["scope"], client, profiles=profiles)


@dataclass(frozen=True)
class Handler:
    #: Flask's name for the endpoint, for the request metrics
    endpoint: str
    #: the form parameters a plain request may hold, and the one it must (a service's POST)
    parameters: frozenset[str]
    required: str
    #: (the authenticated client, the form), or (a bearer token) -> the endpoint's answer, or None
    #: to leave it to the endpoint
    answer: Callable[..., dict | None]
    #: the caller is a person's access token (GET, no body), not a service's secret (POST, a form)
    bearer: bool = False


HANDLERS = {
    ("POST", "/token"): Handler("token.token", frozenset({"grant_type", "scope"}), "grant_type", service_token),
    ("POST", "/introspect"): Handler("introspect.introspect", frozenset({"token", "token_type_hint"}), "token",
                                     introspection),
    ("GET", "/userinfo"): Handler("userinfo.userinfo", frozenset(), "", userinfo, bearer=True),
}


class PlainRequests:
    """WSGI middleware: the handlers above, for requests in the plain form."""

    def __init__(self, wsgi_app, app: Flask) -> None:
        self.wsgi_app, self.app = wsgi_app, app

    def __call__(self, environ, start_response):
        handler = HANDLERS.get((environ.get("REQUEST_METHOD"), environ.get("PATH_INFO", "")))
        if handler is None:
            return self.wsgi_app(environ, start_response)
        body = self.answer(handler, environ)
        if body is None:
            return self.wsgi_app(environ, start_response)
        environ[metrics.ENDPOINT_ENV] = handler.endpoint
        headers = USERINFO_HEADERS if handler.bearer else JSON_HEADERS
        start_response("200 OK", [*headers, ("Content-Length", str(len(body)))])
        return [body]

    def answer(self, handler: Handler, environ) -> bytes | None:
        """The response's bytes, or None: the endpoint answers this request."""
        plain = plain_bearer(environ) if handler.bearer else \
            plain_request(environ, handler.parameters, handler.required)
        if plain is None:
            return None
        try:
            with self.app.app_context():
                answer = self._answer(handler, plain)
        except StoreUnavailable:
            return None  # the endpoint answers as it does when the store is down
        except DBAPIError as error:
            # a connection found dead (the server restarted) is the endpoint's to retry with a new
            # one (the pool was discarded with it) or to call unavailable; anything else is logged
            if not server_gone(error):
                log.exception("not answered ahead of the endpoint", extra={"path": environ.get("PATH_INFO")})
            return None
        except Exception:  # the endpoint answers instead, with its own error handling
            log.exception("not answered ahead of the endpoint", extra={"path": environ.get("PATH_INFO")})
            return None
        if answer is None:
            return None
        # as the endpoints' answers are written: keys sorted, ASCII; Authlib's with json.dumps'
        # spacing, Flask's (jsonify: UserInfo) compact and with a line break
        if handler.bearer:
            return (json.dumps(answer, sort_keys=True, separators=(",", ":")) + "\n").encode()
        return json.dumps(answer, sort_keys=True).encode()

    def _answer(self, handler: Handler, plain) -> dict | None:
        if handler.bearer:
            return handler.answer(plain)
        client_id, secret, form = plain
        client = self.app.extensions["idp.clients"].cached(client_id)
        if client is None or not client.check_client_secret(secret):
            return None
        return handler.answer(client, form)


def plain_bearer(environ) -> str | None:
    """The access token of a GET in the plain form: ``Authorization: Bearer <token>`` and nothing
    else (no query, no body, no DPoP proof), or None."""
    if environ.get("QUERY_STRING") or "HTTP_DPOP" in environ or "HTTP_TRANSFER_ENCODING" in environ \
            or environ.get("CONTENT_LENGTH", "") not in ("", "0"):
        return None
    scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme != "Bearer" or not token or token != token.strip():
        return None
    return token


def plain_request(environ, parameters: frozenset[str], required: str) -> tuple[str, str, dict] | None:
    """(client_id, secret, form) of a request in the plain form, or None. Reads the body if it may
    be one, and leaves a copy in its place for the endpoint."""
    if environ.get("QUERY_STRING") or "HTTP_DPOP" in environ or not _secure_enough(environ):
        return None
    media_type, _, media_parameters = environ.get("CONTENT_TYPE", "").partition(";")
    if media_type.strip().lower() != FORM or media_parameters.replace(" ", "").lower() not in ("", "charset=utf-8"):
        return None
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    if not authorization.startswith("Basic "):
        return None
    declared = environ.get("CONTENT_LENGTH", "")
    if "HTTP_TRANSFER_ENCODING" in environ or not (declared.isascii() and declared.isdigit()):
        return None  # werkzeug reads a length like "+29" as none at all: the endpoint decides
    length = int(declared)
    if not 0 < length <= MAX_BODY:
        return None
    raw = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(raw)
    if len(raw) != length:
        return None
    try:
        fields = parse_qsl(raw.decode("ascii"), keep_blank_values=True, strict_parsing=True,
                           encoding="utf-8", errors="strict", max_num_fields=len(parameters))
        credentials = base64.b64decode(authorization[len("Basic "):], validate=True).decode("utf-8")
    except (ValueError, UnicodeError, binascii.Error):
        return None
    form = dict(fields)
    if len(form) != len(fields) or not form.keys() <= parameters or required not in form:
        return None
    client_id, colon, secret = credentials.partition(":")
    if not colon:
        return None
    # as RFC 6749 §2.3.1 and Authlib: each part form-urlencoded before it was joined
    return unquote(client_id), unquote(secret), form


#: Authlib's transport rule's answer per scheme and host (it reads nothing else but an environment
#: variable set before the process starts), bounded because the Host header is the caller's.
#: Asking the rule on every request cost ~10 µs of a ~160 µs request under load.
_TRANSPORT_ANSWERS: dict[str, bool] = {}
_TRANSPORT_ANSWERS_LIMIT = 256


def _secure_enough(environ) -> bool:
    """Authlib's transport rule on the URL werkzeug makes of this request, as the endpoints apply it
    (https, or plain http to this machine; a Host werkzeug finds invalid makes a URL without one)."""
    # the host is what decides (the path cannot reach the authority): werkzeug's validated one
    origin = f"{environ.get('wsgi.url_scheme')}://{get_host(environ)}/"
    answer = _TRANSPORT_ANSWERS.get(origin)
    if answer is None:
        if len(_TRANSPORT_ANSWERS) >= _TRANSPORT_ANSWERS_LIMIT:
            _TRANSPORT_ANSWERS.clear()
        answer = _TRANSPORT_ANSWERS[origin] = is_secure_transport(origin)
    return answer
