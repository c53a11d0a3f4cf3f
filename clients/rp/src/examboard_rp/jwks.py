"""The provider's signing keys (JWKS), cached by ``kid``.

- Fetched on first use; re-fetched when the copy is older than the provider's Cache-Control
  max-age (bounded by ``min_ttl`` / ``max_ttl``). One thread re-fetches; the others go on
  validating with the cached keys meanwhile (single_flight.py).
- A token signed with an unknown ``kid`` (a key rotation, or a key withdrawn at once and replaced)
  triggers a prompt re-fetch, at most one per ``refresh_interval`` seconds however many such
  tokens arrive, so forged kids cannot turn this service into a flood against the provider. Such
  a request waits for the fetch (at most ``timeout``); no other request does.
- If re-fetching fails (the provider is down, blocked, or answers something that is not a key
  set) the cached keys keep working for ``max_stale`` seconds past their max-age, and no longer:
  after that every request is refused (503) until the provider answers, so a withdrawn key cannot
  stay trusted for long just because the provider is out of reach.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from joserfc.jwk import ECKey, OKPKey, RSAKey

from .errors import InvalidToken, ProviderUnavailable
from .http import Fetch, call_provider, check_url, fetch_json
from .single_flight import SingleFlight

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
        if not isinstance(item, dict) or not isinstance(item.get("kid"), str) or not item["kid"]:
            continue
        if item.get("use", "sig") != "sig" or any(p in item for p in _PRIVATE):
            continue
        kty = item.get("kty")
        importer = _IMPORTERS.get(kty) if isinstance(kty, str) else None
        if importer is None:
            continue
        try:
            key = importer.import_key(item)
        except Exception:  # noqa: BLE001 - joserfc raises many types for a malformed key: skip it
            log.warning("examboard_rp: a JWKS key could not be imported; skipped")
            continue
        alg = item.get("alg") if isinstance(item.get("alg"), str) else None
        out[item["kid"]] = PublicKey(item["kid"], alg, key)
    if not out:  # the provider always publishes its signing keys: this is not its key set
        raise ProviderUnavailable("jwks_invalid", "JWKS holds no usable signing key")
    return out


@dataclass(frozen=True)
class _KeySet:
    keys: dict[str, PublicKey]
    fresh_until: float    # the provider's max-age: then re-fetch
    trusted_until: float  # fresh_until + max_stale: then never used again


class JWKSCache:
    def __init__(self, jwks_uri: str | Callable[[], str], *, fetch: Fetch = fetch_json,
                 timeout: float = 5.0, refresh_interval: float = 10.0, default_ttl: float = 300.0,
                 min_ttl: float = 60.0, max_ttl: float = 86400.0, max_stale: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._uri = jwks_uri if callable(jwks_uri) else check_url(jwks_uri, "jwks_uri")
        self._fetch, self._timeout = fetch, timeout
        self._default_ttl, self._min_ttl, self._max_ttl, self.max_stale = default_ttl, min_ttl, max_ttl, max_stale
        self._clock = clock
        self._flight = SingleFlight(refresh_interval, timeout, clock)
        self._keys: _KeySet | None = None
        self._last_error: ProviderUnavailable | None = None
        #: how many times the JWKS was requested (for tests and metrics)
        self.fetches = 0

    @property
    def refresh_interval(self) -> float:
        return self._flight.interval

    # ------------------------------------------------------------------ lookups
    def get(self, kid: str) -> PublicKey:
        """The key with this kid; InvalidToken("unknown_kid") if the provider does not publish it,
        ProviderUnavailable if the keys cannot be fetched and the cached ones are too old."""
        current = self._keys
        if current is None or self._clock() >= current.fresh_until:
            current = self._refreshed(current)
        found = current.keys.get(kid)
        if found is None:
            self._flight.run(self._refresh, wait=True)  # a rotation? ask now (rate-limited)
            current = self._usable()
            found = current.keys.get(kid)
            if found is None:
                raise InvalidToken("unknown_kid", "the token is signed with a key the provider does not publish")
        return found

    def keys(self) -> dict[str, PublicKey]:
        current = self._keys
        if current is None or self._clock() >= current.fresh_until:
            current = self._refreshed(current)
        return dict(current.keys)

    # ------------------------------------------------------------------ fetching
    def _refreshed(self, current: _KeySet | None) -> _KeySet:
        """Past max-age: one thread re-fetches. Meanwhile the others go on at once if the cached
        keys are still trusted, else wait for that fetch (bounded)."""
        trusted = current is not None and self._clock() < current.trusted_until
        self._flight.run(self._refresh, wait=not trusted)
        return self._usable()

    def _usable(self) -> _KeySet:
        current = self._keys
        if current is None or self._clock() >= current.trusted_until:
            error = self._last_error
            if error is not None:
                raise ProviderUnavailable(error.reason, error.description)
            raise ProviderUnavailable("jwks_unavailable", "the provider's keys could not be fetched in time")
        return current

    def _refresh(self) -> None:
        try:
            keys, ttl = self._load()
        except ProviderUnavailable as exc:
            self._last_error = exc
            log.warning("examboard_rp: JWKS fetch failed (%s); %s", exc.description,
                        "keeping the cached keys" if self._keys is not None else "no keys cached")
            return
        now = self._clock()
        self._keys = _KeySet(keys, now + ttl, now + ttl + self.max_stale)
        self._last_error = None

    def _load(self) -> tuple[dict[str, PublicKey], float]:
        uri = self._uri() if callable(self._uri) else self._uri
        self.fetches += 1
        answer = call_provider(self._fetch, uri, None, {}, self._timeout)
        if answer.status != 200:
            raise ProviderUnavailable("jwks_unavailable", f"{uri}: HTTP {answer.status}")
        keys = parse_jwks(answer.data)
        ttl = self._default_ttl if answer.max_age is None else answer.max_age
        return keys, min(max(ttl, self._min_ttl), self._max_ttl)
