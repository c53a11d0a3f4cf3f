"""Token introspection (RFC 7662), for opaque tokens or to catch revoked JWTs early.

The service authenticates with its own client credentials (client_secret_basic); the provider
answers ``active: true`` only for tokens issued to that client. So that a stream of junk bearer
strings is not relayed to the provider:

- a string that cannot be a token (not RFC 6750 ``b64token`` syntax, shorter than
  ``MIN_TOKEN_LENGTH`` or longer than ``MAX_TOKEN_LENGTH``) is refused here;
- answers are remembered, keyed by the token's SHA-256 (never the token itself): an active token
  for ``cache_ttl`` seconds but never past its ``exp``, an inactive or unacceptable one for
  ``negative_ttl``; at most ``cache_size`` answers, the oldest dropped first;
- calls to the provider are throttled to ``rate_limit`` a second (bursts of as many); beyond
  that the request gets 503 with Retry-After.

A revoked token is therefore refused within ``cache_ttl`` seconds, not at once.
An answer that is not an RFC 7662 object (``active`` not a boolean, ``exp`` not a number …) is
the provider's failure (503), not the token's.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from urllib.parse import quote

from .errors import ConfigurationError, InvalidToken, ProviderUnavailable
from .http import Fetch, call_provider, check_url, fetch_json
from .tokens import MAX_TOKEN_LENGTH, AccessToken, audiences_of, check_audience, check_time_claims, is_number

log = logging.getLogger(__name__)
MIN_TOKEN_LENGTH = 16  # 96 bits in base64url; any real provider's tokens are longer (ours: 43)
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 §2.1
_STRING_MEMBERS = ("token_type", "iss", "sub", "client_id", "scope", "jti")
_TIME_MEMBERS = ("exp", "iat", "nbf")


def plausible_token(token: object) -> bool:
    return (isinstance(token, str) and MIN_TOKEN_LENGTH <= len(token) <= MAX_TOKEN_LENGTH
            and _B64TOKEN.fullmatch(token) is not None)


class Introspector:
    def __init__(self, endpoint: str | Callable[[], str], client_id: str, client_secret: str, *,
                 issuer: str, audience: str | Iterable[str], leeway: float = 30.0,
                 fetch: Fetch = fetch_json, timeout: float = 5.0, cache_ttl: float = 10.0,
                 negative_ttl: float = 5.0, cache_size: int = 4096, rate_limit: float = 20.0,
                 now: Callable[[], float] = time.time, clock: Callable[[], float] = time.monotonic) -> None:
        if not rate_limit > 0:
            raise ConfigurationError("bad_introspection", "the introspection rate limit must be positive")
        self._endpoint = endpoint
        # RFC 6749 §2.3.1: form-encode both parts before base64
        raw = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}".encode()
        self._auth = "Basic " + base64.b64encode(raw).decode()
        self.issuer = issuer
        self.audiences = audiences_of(audience)
        self.leeway = leeway
        self._fetch, self._timeout, self._now, self._clock = fetch, timeout, now, clock
        self.cache_ttl, self.negative_ttl = cache_ttl, negative_ttl
        self._answers = _AnswerCache(cache_size, clock)
        self._throttle = _TokenBucket(rate_limit, clock)
        #: how many times the provider was asked (for tests and metrics)
        self.calls = 0

    def introspect(self, token: str) -> dict:
        """The provider's raw answer (``active`` may be false), checked for shape; not cached."""
        endpoint = check_url(self._endpoint() if callable(self._endpoint) else self._endpoint,
                             "introspection_endpoint")
        self.calls += 1
        answer = call_provider(self._fetch, endpoint, {"token": token, "token_type_hint": "access_token"},
                               {"Authorization": self._auth}, self._timeout)
        if answer.status != 200 or not _well_formed(answer.data):
            log.warning("examboard_rp: %s answered HTTP %s, not an introspection answer", endpoint, answer.status)
            raise ProviderUnavailable("introspection_failed",
                                      f"{endpoint}: HTTP {answer.status}, not an introspection answer")
        return answer.data

    def validate(self, token: str) -> AccessToken:
        if not plausible_token(token):
            raise InvalidToken("malformed", "the token is not a usable access token string")
        key = hashlib.sha256(token.encode()).digest()
        remembered = self._answers.get(key)
        if isinstance(remembered, AccessToken):
            return remembered
        if remembered is not None:
            raise InvalidToken(*remembered)
        if not self._throttle.take():
            raise ProviderUnavailable("introspection_throttled", "too many introspection requests; try again shortly")
        data = self.introspect(token)
        try:
            access = self._accept(data)
        except InvalidToken as exc:
            self._answers.put(key, (exc.reason, exc.description), self.negative_ttl)
            raise
        ttl = self.cache_ttl if access.exp is None else min(self.cache_ttl, access.exp - self._now())
        self._answers.put(key, access, ttl)
        return access

    def _accept(self, data: dict) -> AccessToken:
        if data["active"] is not True:
            raise InvalidToken("inactive", "the provider reports the token as not active")
        if data.get("token_type", "Bearer").lower() not in ("bearer", "access_token"):
            raise InvalidToken("not_access_token", "the token is not an access token")
        if "iss" in data and data["iss"] != self.issuer:
            raise InvalidToken("wrong_issuer", "the token was issued by another provider (iss)")
        if "aud" in data:
            check_audience(data, self.audiences)
        elif data.get("client_id") not in self.audiences:
            raise InvalidToken("wrong_audience", "the token is not meant for this service")
        if "exp" in data or "iat" in data:
            check_time_claims({"iat": data.get("iat", 0), **data}, self._now(), self.leeway, require_exp=False)
        if not isinstance(data.get("sub"), str):
            raise InvalidToken("missing_claim", "the introspection answer has no sub")
        return AccessToken.from_claims(data)


def _well_formed(data: object) -> bool:
    """An RFC 7662 §2.2 answer: an object, ``active`` a boolean, the members we read of their type."""
    if not isinstance(data, dict) or not isinstance(data.get("active"), bool):
        return False
    if any(name in data and not isinstance(data[name], str) for name in _STRING_MEMBERS):
        return False
    if any(name in data and not is_number(data[name]) for name in _TIME_MEMBERS):
        return False
    aud = data.get("aud", "")
    if not isinstance(aud, str) and not (isinstance(aud, list) and all(isinstance(a, str) for a in aud)):
        return False
    profiles = data.get("profiles", [])
    return isinstance(profiles, list) and all(isinstance(p, str) for p in profiles)


class _AnswerCache:
    """token hash -> (expiry on ``clock``, answer), bounded; ``size`` 0 remembers nothing."""

    def __init__(self, size: int, clock: Callable[[], float]) -> None:
        self._entries: OrderedDict[bytes, tuple[float, object]] = OrderedDict()
        self._size, self._clock = size, clock
        self._lock = threading.Lock()

    def get(self, key: bytes) -> object | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if self._clock() >= entry[0]:
                del self._entries[key]
                return None
            return entry[1]

    def put(self, key: bytes, answer: object, ttl: float) -> None:
        if self._size <= 0 or ttl <= 0:
            return
        with self._lock:
            self._entries.pop(key, None)
            while len(self._entries) >= self._size:
                self._entries.popitem(last=False)  # the oldest answer
            self._entries[key] = (self._clock() + ttl, answer)


class _TokenBucket:
    """``rate`` calls a second on average, bursts of up to ``rate`` (at least one)."""

    def __init__(self, rate: float, clock: Callable[[], float]) -> None:
        self._rate, self._capacity, self._clock = rate, max(1.0, rate), clock
        self._tokens, self._updated = self._capacity, clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
            self._updated = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True
