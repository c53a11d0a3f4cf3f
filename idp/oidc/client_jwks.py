"""Fetch a client's JWK Set from its jwks_uri (private_key_jwt), cached per process."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

from authlib.oauth2.rfc6749.errors import InvalidClientError
from joserfc.jwk import KeySet

CACHE_SECONDS = 300
MAX_BYTES = 64 * 1024

_cache: dict[str, tuple[KeySet, float]] = {}
_lock = threading.Lock()


def fetch(uri: str) -> KeySet:
    now = time.time()
    cached = _cache.get(uri)
    if cached and now - cached[1] < CACHE_SECONDS:
        return cached[0]
    try:
        request = urllib.request.Request(uri, headers={"Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - https/loopback checked at registration
            body = response.read(MAX_BYTES + 1)
        if len(body) > MAX_BYTES:
            raise ValueError("JWK Set too large")
        keyset = KeySet.import_key_set(json.loads(body))
    except Exception as exc:  # any failure to obtain keys is the client's authentication failing
        raise InvalidClientError(description=f"Could not load the client's jwks_uri ({exc.__class__.__name__})")
    with _lock:
        _cache[uri] = (keyset, now)
    return keyset
