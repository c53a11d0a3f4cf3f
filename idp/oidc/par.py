"""Pushed authorization requests (RFC 9126): a client sends its authorization request straight to
the provider, authenticated as at the token endpoint, and gets a ``request_uri`` to send the
browser with instead of the parameters. The browser then carries nothing a person or a network
could change, and a client registered with ``require_pushed_authorization_requests`` can be
started no other way.

A pushed request is one store record, keyed by the SHA-256 of its reference (the reference is a
bearer secret: it is never stored as it is). It is used once, by the client that pushed it, and
only for ``[tokens] pushed_request_lifetime`` seconds: the record carries its own expiry, checked
against the clock, besides the store's TTL.
"""

from __future__ import annotations

import hashlib
import time

from .. import secrets
from ..extensions import settings
from ..records import Record

PUSHED = Record("par", ttl=60)  # lifetime from [tokens] pushed_request_lifetime
#: RFC 9126 §2.2: the form of the request_uri this provider hands out
URN_PREFIX = "urn:ietf:params:oauth:request_uri:"
#: the most a pushed request's parameters may add up to (names and values, in characters): as much
#: as a browser would carry in a URL, and a bound on what a client can park in the store
MAX_PARAMETER_CHARACTERS = 8 * 1024


class Refused(Exception):
    """A request_uri that cannot be used: unknown, used, expired, or pushed by another client."""


def is_reference(value) -> bool:
    return isinstance(value, str) and value.startswith(URN_PREFIX)


def _key(request_uri: str) -> str | None:
    reference = request_uri[len(URN_PREFIX):]
    if not reference or len(reference) > 100:
        return None
    return hashlib.sha256(reference.encode()).hexdigest()


def push(client_id: str, params: dict) -> tuple[str, int]:
    """Keep a validated request; returns (request_uri, seconds it may be used for)."""
    lifetime = settings().tokens.pushed_request_lifetime
    request_uri = URN_PREFIX + secrets.token(32)
    PUSHED.put_json(_key(request_uri), {"client_id": client_id, "params": params,
                                        "expires_at": time.time() + lifetime}, lifetime)
    return request_uri, lifetime


def redeem(client_id: str | None, request_uri: str) -> dict:
    """The parameters pushed under ``request_uri``, once, to the client that pushed them; else
    Refused. Another client's attempt does not use the request up."""
    key = _key(request_uri)
    record = PUSHED.get_json(key) if key else None
    if record is None:
        raise Refused("The request_uri is unknown, has expired or has been used.")
    if not client_id or record["client_id"] != client_id:
        raise Refused("The request_uri was not pushed by this client.")
    if record["expires_at"] <= time.time():
        PUSHED.delete(key)
        raise Refused("The request_uri is unknown, has expired or has been used.")
    taken = PUSHED.take_json(key)
    if taken is None:  # another browser or process used it between the read and now
        raise Refused("The request_uri is unknown, has expired or has been used.")
    return taken["params"]


def oversized(params) -> bool:
    return sum(len(k) + len(v) for k, values in params.lists() for v in values) > MAX_PARAMETER_CHARACTERS
