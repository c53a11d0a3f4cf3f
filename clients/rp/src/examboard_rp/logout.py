"""Receiving OpenID Connect Back-Channel Logout 1.0: validate the logout token, refuse replays,
call the service's hook.

A logout token is a JWT signed by the provider (``typ`` ``logout+jwt``, or ``JWT``, or none)
with ``iss``, ``aud`` (this service's client_id), ``iat``, ``jti``, ``events`` holding exactly
``{"http://schemas.openid.net/event/backchannel-logout": {}}``, ``sid`` and/or ``sub``, and never
``nonce`` (so an ID token cannot be replayed as one). Each ``jti`` is accepted once within the
replay window; keep that memory shared (``RedisReplayCache``) when the service runs as several
processes.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from .errors import InvalidToken, LogoutTokenError, RPError
from .jwks import JWKSCache
from .tokens import DEFAULT_ALGORITHMS, JWTVerifier, audiences_of, check_audience, check_time_claims

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TYPES = frozenset({"logout+jwt", "application/logout+jwt", "jwt"})
log = logging.getLogger(__name__)


class ReplayCache(Protocol):
    def add(self, jti: str, ttl: float) -> bool:
        """Remember ``jti`` for ``ttl`` seconds; False if it was already remembered (atomically)."""

    def discard(self, jti: str) -> None:
        """Forget ``jti`` (the hook failed, so the provider may retry)."""


class MemoryReplayCache:
    """One process's memory of recent jti values, bounded in size."""

    def __init__(self, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        self._max, self._clock = max_entries, clock

    def add(self, jti: str, ttl: float) -> bool:
        now = self._clock()
        with self._lock:
            while self._seen and next(iter(self._seen.values())) <= now:
                self._seen.popitem(last=False)
            expiry = self._seen.get(jti)
            if expiry is not None and expiry > now:
                return False
            while len(self._seen) >= self._max:
                self._seen.popitem(last=False)
            self._seen[jti] = now + ttl
            self._seen.move_to_end(jti)
            return True

    def discard(self, jti: str) -> None:
        with self._lock:
            self._seen.pop(jti, None)


class RedisReplayCache:
    """Shared by every process of the service: one ``SET NX EX`` per logout token."""

    def __init__(self, redis_client, prefix: str = "examboard-rp:logout-jti:") -> None:
        self._redis, self._prefix = redis_client, prefix

    def add(self, jti: str, ttl: float) -> bool:
        return bool(self._redis.set(self._prefix + jti, "1", nx=True, ex=max(1, math.ceil(ttl))))

    def discard(self, jti: str) -> None:
        self._redis.delete(self._prefix + jti)


@dataclass(frozen=True)
class LogoutRequest:
    """What to end: the provider session ``sid`` and/or every session of ``sub``."""

    sub: str | None
    sid: str | None
    jti: str
    claims: dict = field(repr=False)


class LogoutTokenValidator:
    def __init__(self, issuer: str, audience: str | Iterable[str], keys: JWKSCache, *,
                 algorithms: Iterable[str] = DEFAULT_ALGORITHMS, leeway: float = 30.0,
                 max_age: float = 300.0, replay_cache: ReplayCache | None = None,
                 now: Callable[[], float] = time.time) -> None:
        self.issuer = issuer
        self.audiences = audiences_of(audience)
        self.verifier = JWTVerifier(keys, algorithms)
        self.leeway, self.max_age = leeway, max_age
        self.replay_cache = replay_cache if replay_cache is not None else MemoryReplayCache()
        self._now = now

    def validate(self, token: object) -> LogoutRequest:
        """Check the token (not its jti's novelty); LogoutTokenError with a ``reason`` if bad."""
        try:
            return self._validate(token)
        except InvalidToken as exc:
            raise LogoutTokenError(exc.reason, exc.description) from None

    def _validate(self, token: object) -> LogoutRequest:
        header = self.verifier.header(token)
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.lower() not in LOGOUT_TOKEN_TYPES):
            raise InvalidToken("wrong_typ", "the token is not a logout token (typ)")
        claims = self.verifier.verify(token, header)
        if claims.get("iss") != self.issuer:
            raise InvalidToken("wrong_issuer", "the logout token was issued by another provider (iss)")
        check_audience(claims, self.audiences)
        now = self._now()
        check_time_claims(claims, now, self.leeway, require_exp=False)
        if claims["iat"] < now - self.max_age - self.leeway:
            raise InvalidToken("too_old", "the logout token was issued too long ago (iat)")
        if not isinstance(claims.get("jti"), str) or not claims["jti"]:
            raise InvalidToken("missing_claim", "the logout token has no jti")
        events = claims.get("events")
        if (not isinstance(events, dict) or set(events) != {BACKCHANNEL_LOGOUT_EVENT}
                or events[BACKCHANNEL_LOGOUT_EVENT] != {}):
            raise InvalidToken("bad_events", f"events must be exactly {{{BACKCHANNEL_LOGOUT_EVENT!r}: {{}}}}")
        if "nonce" in claims:
            raise InvalidToken("nonce_present", "a logout token must not contain a nonce")
        sub, sid = claims.get("sub"), claims.get("sid")
        if sub is not None and (not isinstance(sub, str) or not sub):
            raise InvalidToken("missing_claim", "sub is not a string")
        if sid is not None and (not isinstance(sid, str) or not sid):
            raise InvalidToken("missing_claim", "sid is not a string")
        if sub is None and sid is None:
            raise InvalidToken("missing_sub_and_sid", "the logout token names neither sub nor sid")
        return LogoutRequest(sub=sub, sid=sid, jti=claims["jti"], claims=claims)

    def accept(self, token: object) -> LogoutRequest:
        """Validate and record the jti: a second delivery of the same token is refused (``replayed``)."""
        request = self.validate(token)
        ttl = request.claims["iat"] + self.max_age + 2 * self.leeway - self._now()
        if not self.replay_cache.add(request.jti, max(ttl, 1.0)):
            raise LogoutTokenError("replayed", "this logout token was already used (jti)")
        return request

    def handle(self, token: object, on_logout: Callable[[LogoutRequest], object]) -> LogoutRequest:
        """accept() then the hook; if the hook raises, the jti is forgotten so a retry can succeed."""
        request = self.accept(token)
        try:
            on_logout(request)
        except Exception:
            self.replay_cache.discard(request.jti)
            raise
        return request


def logout_response(validator: LogoutTokenValidator, logout_token: object,
                    on_logout: Callable[[LogoutRequest], object]) -> tuple[int, dict[str, str], dict | None]:
    """For any web framework: (status, headers, JSON body or None) answering one back-channel
    logout POST whose form field ``logout_token`` is given (None when it is missing)."""
    headers = {"Cache-Control": "no-store"}
    if logout_token is None or logout_token == "":
        return 400, headers, {"error": "invalid_request", "error_description": "logout_token is missing"}
    try:
        validator.handle(logout_token, on_logout)
    except RPError as exc:  # a bad token, a replay, or the provider's keys out of reach
        return 400, headers, {"error": "invalid_request", "error_description": exc.public_description,
                              "reason": exc.reason}
    except Exception:  # the hook failed: the provider may retry (the jti was forgotten)
        log.exception("examboard_rp: the back-channel logout hook failed")
        return 400, headers, {"error": "logout_failed", "error_description": "the session could not be ended",
                              "reason": "hook_failed"}
    return 200, headers, None
