"""ResourceServer: everything a service needs, built from the issuer URL and its client_id.

    rs = ResourceServer("https://idp.example.org", audience="<client_id>")
    token = rs.authorize(request_authorization_header, "results.view")   # or raises RPError
"""

from __future__ import annotations

import functools
import ssl
import time
from collections.abc import Callable, Iterable

from .discovery import Discovery
from .dpop import ProofVerifier
from .errors import ConfigurationError, InvalidDPoPProof, InvalidToken
from .http import Fetch, fetch_json
from .introspection import Introspector
from .jwks import JWKSCache
from .logout import LogoutTokenValidator, ReplayCache
from .tokens import DEFAULT_ALGORITHMS, AccessToken, AccessTokenValidator, audiences_of, looks_like_jwt

INTROSPECTION_MODES = ("never", "opaque", "always")


def presented_token(authorization: str | None) -> tuple[str, str]:
    """(scheme, token) of an ``Authorization: Bearer <token>`` (RFC 6750 §2.1) or
    ``Authorization: DPoP <token>`` (RFC 9449 §7.1) header."""
    if not authorization or not authorization.strip():
        raise InvalidToken("missing_token", "an access token is required (Authorization: Bearer or DPoP)")
    parts = authorization.split()
    scheme = {"bearer": "Bearer", "dpop": "DPoP"}.get(parts[0].lower()) if len(parts) == 2 else None
    if scheme is None:
        raise InvalidToken("malformed", "the Authorization header is not 'Bearer <token>' or 'DPoP <token>'")
    return scheme, parts[1]


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header (RFC 6750 §2.1)."""
    scheme, token = presented_token(authorization)
    if scheme != "Bearer":
        raise InvalidToken("malformed", "the Authorization header is not 'Bearer <token>'")
    return token


class ResourceServer:
    """Discovery + JWKS cache + access-token validation (+ optional introspection) for one
    provider and one audience. Thread-safe; build one per process and keep it."""

    def __init__(self, issuer: str, audience: str | Iterable[str], *,
                 algorithms: Iterable[str] = DEFAULT_ALGORITHMS, leeway: float = 30.0,
                 client_id: str | None = None, client_secret: str | None = None,
                 introspection: str | None = None, jwks_refresh_interval: float = 10.0,
                 jwks_max_stale: float = 300.0, token_cache_size: int = 4096,
                 introspection_cache_ttl: float = 10.0, introspection_negative_ttl: float = 5.0,
                 introspection_cache_size: int = 4096, introspection_rate_limit: float = 20.0,
                 timeout: float = 5.0, ssl_context: ssl.SSLContext | None = None, fetch: Fetch | None = None,
                 realm: str = "examboard", dpop_max_age: float = 300.0,
                 dpop_replay_cache: ReplayCache | None = None,
                 clock: Callable[[], float] = time.monotonic, now: Callable[[], float] = time.time) -> None:
        self.issuer = issuer
        self.audiences = audiences_of(audience)
        self.algorithms = tuple(algorithms)
        self.leeway = leeway
        self.realm = realm
        self._now = now
        if fetch is None:
            fetch = functools.partial(fetch_json, ssl_context=ssl_context)
        elif ssl_context is not None:
            raise ConfigurationError("bad_fetch", "give ssl_context or your own fetch, not both")
        self.discovery = Discovery(issuer, fetch=fetch, timeout=timeout, clock=clock)
        self.jwks = JWKSCache(lambda: self.discovery.endpoint("jwks_uri"), fetch=fetch, timeout=timeout,
                              refresh_interval=jwks_refresh_interval, max_stale=jwks_max_stale, clock=clock)
        self.proofs = ProofVerifier(max_age=dpop_max_age, leeway=leeway, now=now, replay_cache=dpop_replay_cache)
        self.access_tokens = AccessTokenValidator(issuer, self.audiences, self.jwks, algorithms=self.algorithms,
                                                  leeway=leeway, cache_size=token_cache_size, now=now)
        mode = introspection or ("opaque" if client_secret else "never")
        if mode not in INTROSPECTION_MODES:
            raise ConfigurationError("bad_introspection", f"introspection must be one of {INTROSPECTION_MODES}")
        if mode != "never" and not client_secret:
            raise ConfigurationError("bad_introspection", "introspection needs the service's client_secret")
        self.introspection_mode = mode
        self.introspector = None
        if mode != "never":
            if client_id is None:
                if len(self.audiences) != 1:
                    raise ConfigurationError("bad_introspection", "give client_id for introspection")
                client_id = next(iter(self.audiences))
            self.introspector = Introspector(lambda: self.discovery.endpoint("introspection_endpoint"),
                                             client_id, client_secret, issuer=issuer, audience=self.audiences,
                                             leeway=leeway, fetch=fetch, timeout=timeout,
                                             cache_ttl=introspection_cache_ttl,
                                             negative_ttl=introspection_negative_ttl,
                                             cache_size=introspection_cache_size,
                                             rate_limit=introspection_rate_limit, now=now, clock=clock)

    # ------------------------------------------------------------------ access tokens
    def validate(self, token: str) -> AccessToken:
        """A validated access token, or InvalidToken (401) / ProviderUnavailable (503)."""
        if self.introspector is not None and not looks_like_jwt(token):
            return self.introspector.validate(token)
        access = self.access_tokens.validate(token)
        if self.introspection_mode == "always":
            return self.introspector.validate(token)  # also catches revoked tokens
        return access

    def authenticate(self, authorization: str | None, *, dpop: list[str] | None = None, method: str | None = None,
                     url: str | None = None) -> AccessToken:
        """Validate the token in an ``Authorization`` header value. A token bound to a key (DPoP)
        needs the request's ``DPoP`` header values, its method and its URL as the client sent
        it (scheme, host, path); a bearer token ignores them."""
        scheme, token = presented_token(authorization)
        access = self.validate(token)
        if access.jkt is None:
            if scheme == "DPoP":
                raise InvalidToken("not_dpop_bound", "the token is not bound to a key: send it as a Bearer token",
                                   scheme="DPoP")
            return access
        if scheme != "DPoP":  # RFC 9449 §7.2: a bound token is no bearer token
            raise InvalidToken("dpop_bound", "the token is bound to a key: send it with the DPoP scheme and a proof",
                               scheme="DPoP")
        if not dpop:
            raise InvalidDPoPProof("proof_missing", "a DPoP proof is required with this token")
        if method is None or url is None:
            raise ConfigurationError("dpop_request", "pass the request's method and url to check a DPoP proof")
        self.proofs.verify(list(dpop), method=method, url=url, access_token=token, jkt=access.jkt)
        return access

    def authorize(self, authorization: str | None, *profiles: str, dpop: list[str] | None = None,
                  method: str | None = None, url: str | None = None) -> AccessToken:
        """Validate the header's token (and its DPoP proof) and require every one of ``profiles``
        (InsufficientProfile, 403, names the first one missing)."""
        return self.authenticate(authorization, dpop=dpop, method=method, url=url).require(*profiles)

    # ------------------------------------------------------------------ logout
    def logout_validator(self, *, max_age: float = 300.0,
                         replay_cache: ReplayCache | None = None) -> LogoutTokenValidator:
        """A back-channel logout token validator sharing this server's JWKS cache."""
        return LogoutTokenValidator(self.issuer, self.audiences, self.jwks, algorithms=self.algorithms,
                                    leeway=self.leeway, max_age=max_age, replay_cache=replay_cache,
                                    now=self._now)
