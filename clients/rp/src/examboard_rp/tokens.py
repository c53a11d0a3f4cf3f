"""Validation of JWT access tokens (RFC 9068) signed by the provider.

Checked, in order: size and shape (the header's size and JSON nesting bounded before it is
parsed); ``alg`` against an allow-list of asymmetric algorithms
(never ``none``, never HMAC: a provider's public key can never serve as a shared secret);
``typ`` is ``at+jwt``; the ``kid`` is a published signing key of a type that fits ``alg``;
the signature; ``iss``; ``aud``; ``exp``/``nbf``/``iat`` with a small leeway; the claims RFC 9068
makes mandatory (``sub``, ``client_id``, ``jti``).
"""

from __future__ import annotations

import base64
import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from . import bounded_json
from .errors import ConfigurationError, InsufficientProfile, InvalidToken
from .jwks import JWKSCache
from .signatures import prepare

DEFAULT_ALGORITHMS = ("ES256", "RS256", "EdDSA")
#: algorithms this kit will verify at all; anything else in an allow-list is a configuration error
SUPPORTED_ALGORITHMS = ("ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                        "EdDSA", "Ed25519")
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
MAX_TOKEN_LENGTH = 8192
MAX_HEADER_LENGTH = 2048  # base64url characters; the provider's headers are ~120


_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")  # an empty signature: alg none


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _b64json(segment: str) -> object:
    return bounded_json.parse(_b64(segment))


def looks_like_jwt(token: str) -> bool:
    return isinstance(token, str) and token.count(".") == 2


def is_number(value) -> bool:
    """A JSON number usable as a time: finite, and an int small enough for float arithmetic
    (math.isfinite, or subtracting a float, overflows on 10**400)."""
    if isinstance(value, int):
        return not isinstance(value, bool) and abs(value) <= 2**53
    return isinstance(value, float) and math.isfinite(value)


class JWTVerifier:
    """Signature checks shared by access tokens and logout tokens: header, algorithm, key.
    The compact serialization is read once, here; the signature is checked by signatures.py."""

    def __init__(self, keys: JWKSCache, algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
                 max_length: int = MAX_TOKEN_LENGTH) -> None:
        self.algorithms = tuple(algorithms)
        bad = [a for a in self.algorithms if a not in SUPPORTED_ALGORITHMS]
        if bad or not self.algorithms:
            raise ConfigurationError("bad_algorithms", f"unsupported or unsafe algorithms {bad!r}: allow only "
                                     f"{', '.join(SUPPORTED_ALGORITHMS)}")
        self.keys = keys
        self.max_length = max_length

    def header(self, token: object) -> dict:
        if not isinstance(token, str) or not token:
            raise InvalidToken("malformed", "the token is not a string")
        if len(token) > self.max_length:
            raise InvalidToken("too_large", f"the token is longer than {self.max_length} characters")
        if not _COMPACT_JWS.fullmatch(token):
            raise InvalidToken("malformed", "the token is not a signed JWT (three base64url parts)")
        end = token.index(".")
        if end > MAX_HEADER_LENGTH:
            raise InvalidToken("malformed", "the token header is too large")
        try:
            header = _b64json(token[:end])
        except ValueError:  # bad base64, UTF-8 or JSON, or nested too deep
            raise InvalidToken("malformed", "the token header is not base64url JSON") from None
        if not isinstance(header, dict):
            raise InvalidToken("malformed", "the token header is not a JSON object")
        return header

    def verify(self, token: str, header: dict | None = None) -> dict:
        """The claims of a JWT whose signature checks out against a published key."""
        header = self.header(token) if header is None else header
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise InvalidToken("alg_not_allowed", "the token's algorithm (alg) is not accepted")
        if "crit" in header or "b64" in header:
            raise InvalidToken("malformed", "critical header extensions are not supported")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("missing_kid", "the token header names no key (kid)")
        public = self.keys.get(kid)
        verify = public.verifiers.get(alg)
        if verify is None:
            if public.alg is not None and public.alg != alg:
                raise InvalidToken("alg_mismatch", "the token's key is published for another algorithm")
            verify = prepare(alg, public.key)
            if verify is None:
                raise InvalidToken("alg_mismatch", "the token's key does not fit its algorithm (alg)")
            public.verifiers[alg] = verify
        signing_input, _, signature = token.rpartition(".")
        try:
            valid = verify(signing_input.encode("ascii"), _b64(signature))
        except ValueError:
            valid = False
        if not valid:
            raise InvalidToken("bad_signature", "the token signature does not verify")
        try:
            claims = _b64json(signing_input[signing_input.index(".") + 1:])
        except ValueError:
            raise InvalidToken("malformed", "the token payload is not base64url JSON") from None
        if not isinstance(claims, dict):
            raise InvalidToken("malformed", "the token payload is not a JSON object")
        return claims


@dataclass(frozen=True)
class AccessToken:
    """A validated access token: who, for which client, with which access profiles."""

    claims: dict = field(repr=False)
    sub: str
    client_id: str
    scopes: frozenset[str]
    profiles: frozenset[str]
    role: str | None
    centre: str | None
    jti: str | None
    exp: float | None
    #: the thumbprint of the key the token is bound to (DPoP, ``cnf.jkt``), None for a bearer token
    jkt: str | None = None

    @classmethod
    def from_claims(cls, claims: dict) -> AccessToken:
        profiles = claims.get("profiles")
        scope = claims.get("scope")
        return cls(claims=claims, sub=claims.get("sub"), client_id=claims.get("client_id"),
                   scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
                   profiles=frozenset(p for p in profiles if isinstance(p, str))
                   if isinstance(profiles, list) else frozenset(),
                   role=claims.get("role") if isinstance(claims.get("role"), str) else None,
                   centre=claims.get("centre") if isinstance(claims.get("centre"), str) else None,
                   jti=claims.get("jti"), exp=claims.get("exp"), jkt=bound_key(claims))

    def has_profile(self, profile: str) -> bool:
        return profile in self.profiles

    def require(self, *profiles: str) -> AccessToken:
        """This token, or InsufficientProfile naming the first profile it lacks."""
        for profile in profiles:
            if profile not in self.profiles:
                if "profiles" not in self.claims:
                    raise InsufficientProfile(profile, f"access profile {profile!r} is required; the token "
                                                       f"carries no profiles (request the 'access' scope)")
                raise InsufficientProfile(profile)
        return self


def bound_key(claims: dict) -> str | None:
    """The thumbprint of the key a token is bound to (DPoP ``cnf.jkt``), or None for a bearer token."""
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    return jkt if isinstance(jkt, str) and jkt else None


def audiences_of(audience: str | Iterable[str]) -> frozenset[str]:
    values = frozenset([audience] if isinstance(audience, str) else audience)
    if not values or not all(isinstance(a, str) and a for a in values):
        raise ConfigurationError("bad_audience", "audience must be the client_id (or several) tokens are for")
    return values


def check_time_claims(claims: dict, now: float, leeway: float, *, require_exp: bool = True) -> None:
    exp = claims.get("exp")
    if exp is None and not require_exp:
        pass
    elif not is_number(exp):
        raise InvalidToken("missing_claim", "the token has no valid exp claim")
    elif exp <= now - leeway:
        raise InvalidToken("expired", "the token has expired")
    nbf = claims.get("nbf")
    if nbf is not None and (not is_number(nbf) or nbf > now + leeway):
        raise InvalidToken("not_yet_valid", "the token is not valid yet (nbf)")
    iat = claims.get("iat")
    if not is_number(iat):
        raise InvalidToken("missing_claim", "the token has no valid iat claim")
    if iat > now + leeway:
        raise InvalidToken("issued_in_future", "the token was issued in the future (iat)")


def check_audience(claims: dict, audiences: frozenset[str]) -> None:
    aud = claims.get("aud")
    values = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if not any(isinstance(a, str) and a in audiences for a in values):
        raise InvalidToken("wrong_audience", "the token is not meant for this service (aud)")


class AccessTokenValidator:
    """Validates access tokens; thread-safe.

    ``cache_size`` tokens that passed are remembered (a person's token is presented on every call
    for its lifetime): a repeat skips the signature and static checks, but its key must still be
    published and its exp/nbf are checked again each time. 0 turns the cache off.
    """

    def __init__(self, issuer: str, audience: str | Iterable[str], keys: JWKSCache, *,
                 algorithms: Iterable[str] = DEFAULT_ALGORITHMS, leeway: float = 30.0,
                 cache_size: int = 4096, now: Callable[[], float] = time.time) -> None:
        self.issuer = issuer
        self.audiences = audiences_of(audience)
        self.verifier = JWTVerifier(keys, algorithms)
        self.leeway = leeway
        self.cache_size = cache_size
        self._cache: dict[str, tuple[str, AccessToken]] = {}
        self._now = now

    def validate(self, token: str) -> AccessToken:
        hit = self._cache.get(token) if self.cache_size else None
        if hit is not None:
            kid, access = hit
            self.verifier.keys.get(kid)  # still published: a withdrawn key's tokens stop at once
            check_time_claims(access.claims, self._now(), self.leeway)
            return access
        header = self.verifier.header(token)
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
            raise InvalidToken("wrong_typ", "the token is not an access token (typ at+jwt)")
        claims = self.verifier.verify(token, header)
        if claims.get("iss") != self.issuer:
            raise InvalidToken("wrong_issuer", "the token was issued by another provider (iss)")
        check_audience(claims, self.audiences)
        check_time_claims(claims, self._now(), self.leeway)
        for name in ("sub", "client_id", "jti"):
            if not isinstance(claims.get(name), str) or not claims[name]:
                raise InvalidToken("missing_claim", f"the token has no {name} claim")
        access = AccessToken.from_claims(claims)
        if self.cache_size:
            self._remember(token, header["kid"], access)
        return access

    def _remember(self, token: str, kid: str, access: AccessToken) -> None:
        cache = self._cache
        while len(cache) >= self.cache_size:  # first in, first out
            try:
                cache.pop(next(iter(cache)), None)
            except (StopIteration, RuntimeError):  # emptied or changed by another thread
                break
        cache[token] = (kid, access)
