"""Validating an authorization request: one pipeline for the authorization endpoint and the
pushed authorization request endpoint (RFC 9126), so a request pushed in advance is held to
exactly the rules of one sent through the browser.

First ``SHAPE_CHECKS`` on the parameters alone, then no parameter given twice, then Authlib's
checks, through the grants registered in ``idp.oidc.server`` (client, redirect URI character for
character, response type, scope, PKCE, nonce, prompt), then ``CHECKS``: this provider's own
rules, each with a name, in order. A failure is an ``OAuth2Error``; once the redirect URI is
known to be registered it carries it, so the caller may send the error there.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request
from flask import request as flask_request
from werkzeug.datastructures import MultiDict

from .. import inputs, protocol
from . import dpop, par


class _Payload(OAuth2Payload):
    def __init__(self, params: MultiDict) -> None:
        self._params = params

    @property
    def data(self):
        return self._params

    @property
    def datalist(self):
        return {key: self._params.getlist(key) for key in self._params}


class ParamsRequest(OAuth2Request):
    """An authorization request made of given parameters (the browser's query, or what a client
    pushed) rather than read from the HTTP request Authlib would otherwise look at."""

    def __init__(self, params: MultiDict) -> None:
        super().__init__("GET", flask_request.url, headers=flask_request.headers)
        self.payload = _Payload(params)

    @property
    def args(self):
        return self.payload.data

    @property
    def form(self):
        return MultiDict()


class _NobodyYet:
    """The person at push time: not known until the request is used at /authorize. Authlib's
    prompt checks then judge only the request's shape (``none`` with other values is refused);
    whether ``prompt=none`` can be honoured is decided when it is used."""


PUSH_TIME = _NobodyYet()


def _no_request_object(grant, params: MultiDict, pushed: bool):
    if "request" in params:
        return "request_not_supported", "Request objects are not supported."


def _no_foreign_request_uri(grant, params: MultiDict, pushed: bool):
    # A pushed request's own request_uri was resolved before validation; any left is a
    # request object by reference (RFC 9101), or an attempt to push a reference.
    if "request_uri" in params:
        return "request_uri_not_supported", "request_uri is not supported."


def _openid_scope(grant, params: MultiDict, pushed: bool):
    if "openid" not in (grant.request.scope or "").split():
        return "invalid_scope", "The openid scope is required."


def _pushed_when_required(grant, params: MultiDict, pushed: bool):
    if grant.request.client.require_pushed_authorization_requests and not pushed:
        return "invalid_request", "This client must push its authorization requests (RFC 9126)."


def _response_mode_supported(grant, params: MultiDict, pushed: bool):
    # a client that asked for fragment or form_post would not find a code sent in the query (sent
    # empty, it is as if not sent: RFC 6749 section 3.1)
    if params.get("response_mode") and params["response_mode"] not in protocol.RESPONSE_MODES:
        return "invalid_request", "response_mode is not one this provider supports (query)."


def _dpop_jkt_shape(grant, params: MultiDict, pushed: bool):
    if "dpop_jkt" in params and not dpop.is_thumbprint(params["dpop_jkt"]):
        return "invalid_request", "dpop_jkt must be the base64url SHA-256 thumbprint of a key (RFC 9449 section 10)."


#: this provider's rules, after Authlib's, in order: (name, check). A check answers
#: (error, description) to refuse, or None.
CHECKS: tuple[tuple[str, Callable], ...] = (
    ("no_request_object", _no_request_object),
    ("no_foreign_request_uri", _no_foreign_request_uri),
    ("openid_scope", _openid_scope),
    ("pushed_when_required", _pushed_when_required),
    ("response_mode_supported", _response_mode_supported),
    ("dpop_jkt_shape", _dpop_jkt_shape),
)


#: a repeat of these gets an error page: while they are in doubt no redirect URI is known to be the
#: client's (RFC 6749 §4.1.2.1), and request_uri says whether the request was pushed
_SHOWN_AS_A_PAGE = ("client_id", "redirect_uri", "request_uri")


def _given_twice(name: str) -> tuple[str, str]:
    return "invalid_request", f"{name} is given more than once."


def _no_repeated_client_or_redirect_uri(params: MultiDict):
    if repeated := inputs.repeated(params, _SHOWN_AS_A_PAGE):
        return _given_twice(repeated)


def _no_control_characters(params: MultiDict):
    if any(inputs.has_control_characters(key) or inputs.has_control_characters(value)
           for key, value in params.items(multi=True)):
        return "invalid_request", "A parameter holds a control character."


#: what a URI may be made of (RFC 3986 section 2): a redirect_uri with anything else cannot be
#: one registered
_URI_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")
#: response-name = 1*response-char, response-char = "_" / DIGIT / ALPHA (RFC 6749 Appendix A.3)
_RESPONSE_TYPE = re.compile(r"[A-Za-z0-9_]+( [A-Za-z0-9_]+)*")


def _redirect_uri_syntax(params: MultiDict):
    if "redirect_uri" in params and not _URI_CHARACTERS.fullmatch(params["redirect_uri"]):
        return "invalid_request", "redirect_uri is not a URI."


def _response_type_syntax(params: MultiDict):
    if "response_type" in params and not _RESPONSE_TYPE.fullmatch(params["response_type"]):
        return "unsupported_response_type", "response_type is not one this provider supports."


#: checked before Authlib's, on the parameters alone: malformed values that no registration can
#: match (Authlib would quote some of them in an error description, where RFC 6749 allows only
#: printable ASCII). Refused without a redirect, since no redirect URI is known good yet.
SHAPE_CHECKS: tuple[tuple[str, Callable], ...] = (
    ("no_repeated_client_or_redirect_uri", _no_repeated_client_or_redirect_uri),
    ("no_control_characters", _no_control_characters),
    ("redirect_uri_syntax", _redirect_uri_syntax),
    ("response_type_syntax", _response_type_syntax),
)


def validate(server, params: MultiDict, *, end_user, pushed: bool):
    """The Authlib grant for a valid request, or an OAuth2Error (with ``redirect_uri`` once that is
    known to be registered, and ``state``)."""
    for name, check in SHAPE_CHECKS:
        if refused := check(params):
            raise _refusal(name, refused)
    if repeated := inputs.repeated(params, protocol.AUTHORIZATION_PARAMETERS):
        # RFC 6749 §3.1: refused before anything reads the first value (prompt=none&prompt=login
        # would get a code from the session); Authlib checks only a few names, and too late
        raise _refusal("no_repeated_parameters", _given_twice(repeated),
                       redirect_uri=_registered_redirect_uri(server, params),
                       state=None if repeated == "state" else params.get("state"))
    grant = server.get_consent_grant(request=ParamsRequest(params), end_user=end_user)
    for name, check in CHECKS:
        if refused := check(grant, params, pushed):
            raise _refusal(name, refused, redirect_uri=grant.redirect_uri, state=params.get("state"))
    return grant


def pushed_reference(params: MultiDict) -> str | None:
    """The ``request_uri`` of a request pushed in advance (RFC 9126), or None; an OAuth2Error
    (shown as a page) if it or the ``client_id`` it is redeemed with is given twice."""
    if refused := _no_repeated_client_or_redirect_uri(params):
        raise _refusal("no_repeated_client_or_redirect_uri", refused)
    request_uri = params.get("request_uri")
    return request_uri if par.is_reference(request_uri) else None


def _registered_redirect_uri(server, params: MultiDict) -> str | None:
    """The request's redirect URI if it is registered for its client (exactly one of each, as the
    shape checks have made sure): where an error may go before Authlib has looked at the request."""
    client = server.query_client(params.get("client_id"))
    uri = params.get("redirect_uri")
    return uri if client is not None and uri and client.check_redirect_uri(uri) else None


def _refusal(check: str, refused: tuple[str, str], **where) -> OAuth2Error:
    """The OAuth error for a check's (error, description), named by the check that refused."""
    error = OAuth2Error(error=refused[0], description=refused[1], **where)
    error.check = check
    return error


def first_values(params: MultiDict) -> dict:
    """The request as one value per parameter (what is remembered while the person signs in)."""
    return params.to_dict(flat=True)

