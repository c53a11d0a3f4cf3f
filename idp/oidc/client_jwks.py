"""Fetch a client's JWK Set from its jwks_uri (private_key_jwt), cached per process.

The request goes through the guarded fetcher (idp/outbound.py). Any failure is the client's
authentication failing, which gets the one answer every such failure gets (``server.CLIENT_AUTH_FAILED``):
the reason is in the log."""

from __future__ import annotations

import json
import logging
import threading
import time

from authlib.oauth2.rfc6749.errors import InvalidClientError
from flask import current_app
from joserfc.jwk import KeySet

from .. import outbound

log = logging.getLogger(__name__)
CACHE_SECONDS = 300
FAILED = "Could not load the client's keys from its jwks_uri."

_cache: dict[str, tuple[KeySet, float]] = {}
_lock = threading.Lock()


def fetch(uri: str) -> KeySet:
    now = time.time()
    cached = _cache.get(uri)
    if cached and now - cached[1] < CACHE_SECONDS:
        return cached[0]
    try:
        response = outbound.for_app(current_app).fetch(uri, headers={"Accept": "application/json"},
                                                        purpose="jwks_uri")
    except outbound.OutboundError:
        raise InvalidClientError(description=FAILED) from None
    try:
        keyset = KeySet.import_key_set(json.loads(response.body))
    except Exception:  # whatever the document holds, it is not a usable JWK Set
        log.warning("jwks_uri did not return a JWK Set", extra={"outbound_url": outbound.loggable(uri)})
        raise InvalidClientError(description=FAILED) from None
    with _lock:
        _cache[uri] = (keyset, now)
    return keyset
