"""The provider's signing keys (JWKS), cached by ``kid``.

- Fetched on first use; re-fetched when the copy is older than the provider's Cache-Control
  max-age (bounded by ``min_ttl`` / ``max_ttl``).
- A token signed with an unknown ``kid`` (a key rotation) triggers a re-fetch, at most one per
  ``refresh_interval`` seconds however many such tokens arrive, so forged kids cannot turn this
  service into a flood against the provider.
- If a re-fetch fails the old keys keep working for ``max_stale`` seconds past their expiry.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey

from .errors import InvalidToken, ProviderUnavailable
from .http import Fetch, check_url, urllib_fetch

log = logging.getLogger(__name__)
_IMPORTERS = {"RSA": RSAKey, "EC": ECKey, "OKP": OKPKey}  # never "oct": no shared secrets in a JWKS
_PRIVATE = ("d", "p", "q", "dp", "dq", "qi", "k")


@dataclass(frozen=True)
class PublicKey:
    kid: str
    alg: str | None  # the JWK's "alg", when it names one
    key: object      # a joserfc key
    #: alg -> prepared verify function (signatures.prepare), filled on first use
    verifiers: dict = field(default_factory=dict, compare=False, repr=False)


def parse_jwks(doc: object) -> dict[str, PublicKey]:
    """kid -> key for every usable signing key; keys that are not (enc, private, oct, no kid,
    unknown type) are skipped."""
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise ProviderUnavailable("jwks_invalid", "JWKS is not a JSON object with a keys list")
    out: dict[str, PublicKey] = {}
    for item in doc["keys"]:
        if not isinstance(item, dict) or not isinstance(item.get("kid"), str):
            continue
        if item.get("use", "sig") != "sig" or any(p in item for p in _PRIVATE):
            continue
        importer = _IMPORTERS.get(item.get("kty"))
        if importer is None:
            continue
        try:
            key = importer.import_key(item)
        except (JoseError, ValueError, TypeError, KeyError):
            log.warning("examboard_rp: JWKS key %r could not be imported; skipped", item.get("kid"))
            continue
        alg = item.get("alg") if isinstance(item.get("alg"), str) else None
        out[item["kid"]] = PublicKey(item["kid"], alg, key)
    return out


class JWKSCache:
    def __init__(self, jwks_uri: str | Callable[[], str], *, fetch: Fetch = urllib_fetch,
                 timeout: float = 5.0, refresh_interval: float = 30.0, default_ttl: float = 300.0,
                 min_ttl: float = 60.0, max_ttl: float = 86400.0, max_stale: float = 86400.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._uri = jwks_uri if callable(jwks_uri) else check_url(jwks_uri, "jwks_uri")
        self._fetch, self._timeout = fetch, timeout
        self.refresh_interval = refresh_interval
        self._default_ttl, self._min_ttl, self._max_ttl, self._max_stale = default_ttl, min_ttl, max_ttl, max_stale
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, PublicKey] | None = None
        self._expires_at = float("-inf")
        self._last_attempt = float("-inf")
        #: how many times the JWKS was requested (for tests and metrics)
        self.fetches = 0

    # ------------------------------------------------------------------ lookups
    def get(self, kid: str) -> PublicKey:
        """The key with this kid; InvalidToken("unknown_kid") if the provider does not publish it."""
        keys = self._keys
        if keys is None or self._clock() >= self._expires_at:
            keys = self._refresh(wanted=None)
        found = keys.get(kid)
        if found is None:
            found = self._refresh(wanted=kid).get(kid)
            if found is None:
                raise InvalidToken("unknown_kid", "the token is signed with a key the provider does not publish")
        return found

    def keys(self) -> dict[str, PublicKey]:
        keys = self._keys
        if keys is None or self._clock() >= self._expires_at:
            keys = self._refresh(wanted=None)
        return dict(keys)

    # ------------------------------------------------------------------ fetching
    def _refresh(self, wanted: str | None) -> dict[str, PublicKey]:
        with self._lock:
            now = self._clock()
            keys = self._keys
            if keys is not None:
                if wanted is not None and wanted in keys:
                    return keys  # another thread fetched it meanwhile
                if wanted is None and now < self._expires_at:
                    return keys
                if now - self._last_attempt < self.refresh_interval:
                    # rate limit: an unknown kid waits for the next interval; stale keys stay in use
                    return self._usable_stale(keys, now)
            elif now - self._last_attempt < self.refresh_interval and self._last_attempt > float("-inf"):
                raise ProviderUnavailable("jwks_unavailable", "the provider's JWKS could not be fetched recently")
            self._last_attempt = now
            try:
                keys, ttl = self._load()
            except ProviderUnavailable as exc:
                if self._keys is None:
                    raise
                log.warning("examboard_rp: JWKS refresh failed (%s); keeping the cached keys", exc.description)
                return self._usable_stale(self._keys, now)
            self._keys = keys
            self._expires_at = now + ttl
            return keys

    def _usable_stale(self, keys: dict[str, PublicKey], now: float) -> dict[str, PublicKey]:
        if now >= self._expires_at + self._max_stale:
            raise ProviderUnavailable("jwks_unavailable", "the cached JWKS is too old and cannot be refreshed")
        return keys

    def _load(self) -> tuple[dict[str, PublicKey], float]:
        uri = self._uri() if callable(self._uri) else self._uri
        self.fetches += 1
        answer = self._fetch(uri, None, {}, self._timeout)
        if answer.status != 200:
            raise ProviderUnavailable("jwks_unavailable", f"{uri}: HTTP {answer.status}")
        keys = parse_jwks(answer.data)
        ttl = self._default_ttl if answer.max_age is None else answer.max_age
        return keys, min(max(ttl, self._min_ttl), self._max_ttl)
