"""A service's own token (``client_credentials``) answered ahead of Flask's request handling and
Authlib's generic token-endpoint dispatch, when the request is the plain form services send:
``POST /token`` with the client's secret in a Basic header and ``grant_type`` (and perhaps
``scope``) in a short form body.

Why: services call this grant all the time, and a profile of it (tests/perf/README.md) put about
two thirds of its CPU in building Flask's request context and Authlib's request object, merging the
query and the form, and looking for the grant, around a ~30 µs signature.

No rule is decided here. The same checks as the token endpoint's, by the same functions: the
client as this process's cache holds it (kept exact by the change notices), its way of
authenticating and its grant types (RegisteredClient), its secret (``check_client_secret``: the
current one, or the previous one while a rotation's grace lasts), DPoP (a client that must bind
its tokens never comes this way), the scope (``grants.service_scope``) and the token
(``grants.issue_tokens``), counted like every issued token. Everything else goes to the token
endpoint untouched and is answered there exactly as before: another grant, a query string, a DPoP
proof, any parameter but ``grant_type`` and ``scope`` or either of them twice, credentials in
the body, a body over 1 KiB, plain http to anything but this machine (Authlib's transport rule),
a client this process has not cached yet, and every refusal. So an error is the token endpoint's
error whichever way the request came in, and a request that fails here costs the endpoint's
price once more, never a different answer.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
from urllib.parse import parse_qsl, unquote

from authlib.oauth2.rfc6749.errors import InvalidScopeError
from flask import Flask

from .. import metrics, protocol
from .grants import issue_tokens, service_scope

log = logging.getLogger(__name__)

PATH = "/token"
#: the Flask endpoint name of the token endpoint, for the request metrics
ENDPOINT = "token.token"
#: a plain request's form is ``grant_type=client_credentials&scope=...``: far below this
MAX_BODY = 1024
PARAMETERS = frozenset({"grant_type", "scope"})
FORM = "application/x-www-form-urlencoded"
HEADERS = (("Content-Type", "application/json"), ("Cache-Control", "no-store"), ("Pragma", "no-cache"))
#: hosts Authlib lets a token request reach over plain http (RFC 8252 §7.3 loopback)
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})


class ServiceTokens:
    """WSGI middleware: ``POST /token`` in the plain client_credentials form, answered here."""

    def __init__(self, wsgi_app, app: Flask) -> None:
        self.wsgi_app, self.app = wsgi_app, app

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST":
            return self.wsgi_app(environ, start_response)
        body = self.answer(environ)
        if body is None:
            return self.wsgi_app(environ, start_response)
        environ[metrics.ENDPOINT_ENV] = ENDPOINT
        start_response("200 OK", [*HEADERS, ("Content-Length", str(len(body)))])
        return [body]

    def answer(self, environ) -> bytes | None:
        """The token response's bytes, or None: the token endpoint answers this request."""
        plain = plain_request(environ)
        if plain is None:
            return None
        client_id, secret, requested_scope = plain
        try:
            with self.app.app_context():
                client = self.app.extensions["idp.clients"].cached(client_id)
                if client is None or client.dpop_bound_access_tokens \
                        or not client.check_endpoint_auth_method(protocol.CLIENT_SECRET_BASIC, "token") \
                        or not client.check_grant_type(protocol.CLIENT_CREDENTIALS) \
                        or not client.check_client_secret(secret):
                    return None
                try:
                    scope = service_scope(client, requested_scope)
                except InvalidScopeError:
                    return None
                token = issue_tokens(protocol.CLIENT_CREDENTIALS, client, None, scope, include_refresh_token=False)
        except Exception:  # the token endpoint answers instead, with its own error handling
            log.exception("service token not issued ahead of the token endpoint")
            return None
        metrics.token_issued(protocol.CLIENT_CREDENTIALS, client.client_id)
        return json.dumps(token).encode()


def plain_request(environ) -> tuple[str, str, str | None] | None:
    """(client_id, secret, scope) of a request in the plain form, or None. Reads the body if it may
    be one, and leaves a copy in its place for the token endpoint."""
    if environ.get("QUERY_STRING") or "HTTP_DPOP" in environ or not _secure_enough(environ):
        return None
    media_type, _, parameters = environ.get("CONTENT_TYPE", "").partition(";")
    if media_type.strip().lower() != FORM or parameters.replace(" ", "").lower() not in ("", "charset=utf-8"):
        return None
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    if not authorization.startswith("Basic "):
        return None
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    if not 0 < length <= MAX_BODY:
        return None
    raw = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(raw)
    if len(raw) != length:
        return None
    try:
        fields = parse_qsl(raw.decode("ascii"), keep_blank_values=True, strict_parsing=True,
                           encoding="utf-8", errors="strict", max_num_fields=len(PARAMETERS))
        credentials = base64.b64decode(authorization[len("Basic "):], validate=True).decode("utf-8")
    except (ValueError, UnicodeError, binascii.Error):
        return None
    form = dict(fields)
    if len(form) != len(fields) or not form.keys() <= PARAMETERS \
            or form.get("grant_type") != protocol.CLIENT_CREDENTIALS:
        return None
    client_id, colon, secret = credentials.partition(":")
    if not colon:
        return None
    # as RFC 6749 §2.3.1 and Authlib: each part form-urlencoded before it was joined
    return unquote(client_id), unquote(secret), form.get("scope")


def _secure_enough(environ) -> bool:
    """https, or plain http to this machine: where Authlib's transport check would let the request
    through; anything else is left for it to decide."""
    if environ.get("wsgi.url_scheme") == "https":
        return True
    host = environ.get("HTTP_HOST", "")
    name, colon, port = host.rpartition(":")
    if not colon or not port.isdigit():
        name = host
    return name in LOOPBACK_HOSTS
