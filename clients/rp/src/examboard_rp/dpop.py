"""DPoP (RFC 9449) at a resource server: a token bound to a client's key (``cnf.jkt``) is accepted
only with ``Authorization: DPoP <token>`` and a fresh proof, signed by that key, for this request's
method and URL, naming the token (``ath``). A token copied out of a log or a browser is useless
without the private key.

Checked, in order: one ``DPoP`` header; its size; header ``typ: dpop+jwt``; ``alg`` on the allow-list
(asymmetric only); ``jwk`` a public key of a type that fits ``alg``; the signature; ``jti``; ``htm``;
``htu`` (query and fragment ignored); ``iat`` within ``max_age`` (and ``leeway`` ahead); ``ath``;
then the key's thumbprint against the token's ``cnf.jkt``; then, last, ``jti`` not seen before
(``replay_cache``: one process's memory by default, ``RedisReplayCache`` to share it between
processes).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import warnings
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from joserfc.jwk import JWKRegistry

from . import bounded_json
from .errors import ConfigurationError, InvalidDPoPProof, InvalidToken
from .signatures import prepare

if TYPE_CHECKING:
    from .logout import ReplayCache

PROOF_TYP = "dpop+jwt"
#: what a proof may be signed with: never ``none``, never HMAC (a proof carries a public key)
PROOF_ALGORITHMS = ("ES256", "ES384", "ES512", "RS256", "PS256", "PS384", "PS512", "EdDSA")
MAX_PROOF_LENGTH = 8192
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_KEY_TYPES = frozenset({"EC", "RSA", "OKP"})


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def access_token_hash(access_token: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(access_token.encode("ascii", "replace")).digest()) \
        .rstrip(b"=").decode()


def same_resource(htu, url: str) -> bool:
    if not isinstance(htu, str) or len(htu) > 2000:
        return False
    try:
        got, want = urlsplit(htu), urlsplit(url)
        return (got.scheme.lower(), got.hostname, got.port, got.path) == \
            (want.scheme.lower(), want.hostname, want.port, want.path)
    except ValueError:
        return False


class ProofVerifier:
    """Checks DPoP proofs for one resource server; thread-safe."""

    def __init__(self, *, algorithms: Iterable[str] = PROOF_ALGORITHMS, max_age: float = 300.0,
                 leeway: float = 30.0, replay_cache: ReplayCache | None = None,
                 now: Callable[[], float] = time.time) -> None:
        self.algorithms = tuple(algorithms)
        bad = [a for a in self.algorithms if a not in PROOF_ALGORITHMS]
        if bad or not self.algorithms:
            raise ConfigurationError("bad_algorithms", f"DPoP proofs can use only {', '.join(PROOF_ALGORITHMS)}")
        self.max_age, self.leeway, self._now = max_age, leeway, now
        if replay_cache is None:
            from .logout import MemoryReplayCache

            replay_cache = MemoryReplayCache()
        self.replay_cache = replay_cache

    def verify(self, proofs: list[str], *, method: str, url: str, access_token: str, jkt: str) -> None:
        """Accept the request's ``DPoP`` header values for ``access_token`` bound to ``jkt``, or
        raise InvalidDPoPProof (a bad proof) / InvalidToken (a good proof by another key)."""
        if len(proofs) != 1:
            raise InvalidDPoPProof("proof_count", "send exactly one DPoP header")
        proof = proofs[0]
        if not isinstance(proof, str) or len(proof) > MAX_PROOF_LENGTH or proof.count(".") != 2:
            raise InvalidDPoPProof("proof_malformed", "the DPoP header is not a signed JWT")
        header_part, payload_part, signature_part = proof.split(".")
        try:
            header = bounded_json.parse(_b64(header_part))
            claims = bounded_json.parse(_b64(payload_part))
            signature = _b64(signature_part)
        except ValueError:
            raise InvalidDPoPProof("proof_malformed", "the DPoP header is not a signed JWT") from None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise InvalidDPoPProof("proof_malformed", "the DPoP header is not a signed JWT")
        if not isinstance(header.get("typ"), str) or header["typ"].lower() != PROOF_TYP:
            raise InvalidDPoPProof("proof_typ", "the proof's typ is not dpop+jwt")
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise InvalidDPoPProof("proof_alg", "the proof's algorithm is not accepted")
        if "crit" in header or "b64" in header:
            raise InvalidDPoPProof("proof_malformed", "critical header extensions are not supported")
        jwk = header.get("jwk")
        if not isinstance(jwk, dict) or jwk.get("kty") not in _KEY_TYPES or _PRIVATE_MEMBERS & jwk.keys():
            raise InvalidDPoPProof("proof_key", "the proof carries no public key (jwk)")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                key = JWKRegistry.import_key(jwk)
        except Exception:  # noqa: BLE001 - any key joserfc cannot read is not one
            raise InvalidDPoPProof("proof_key", "the proof's jwk is not a valid public key") from None
        verify = prepare(alg, key)
        if verify is None:
            raise InvalidDPoPProof("proof_key", "the proof's key does not fit its algorithm")
        if not verify(f"{header_part}.{payload_part}".encode("ascii"), signature):
            raise InvalidDPoPProof("proof_signature", "the proof's signature does not verify")

        jti = claims.get("jti")
        if not isinstance(jti, str) or not 1 <= len(jti) <= 256:
            raise InvalidDPoPProof("proof_jti", "the proof has no jti")
        if claims.get("htm") != method:
            raise InvalidDPoPProof("proof_htm", "the proof was made for another HTTP method")
        if not same_resource(claims.get("htu"), url):
            raise InvalidDPoPProof("proof_htu", "the proof was made for another URL")
        iat, now = claims.get("iat"), self._now()
        if not isinstance(iat, (int, float)) or isinstance(iat, bool) or \
                not now - self.max_age <= iat <= now + self.leeway:
            raise InvalidDPoPProof("proof_iat", "the proof is too old or made in the future")
        ath = claims.get("ath")
        if not isinstance(ath, str) or not hmac.compare_digest(ath, access_token_hash(access_token)):
            raise InvalidDPoPProof("proof_ath", "the proof does not name the access token it is sent with")
        if not hmac.compare_digest(key.thumbprint(), jkt):
            raise InvalidToken("dpop_key_mismatch", "the DPoP proof is made with another key than the token is "
                                                    "bound to", scheme="DPoP")
        replay_id = hashlib.sha256(f"{jkt}:{jti}".encode()).hexdigest()
        if not self.replay_cache.add(f"dpop:{replay_id}", self.max_age + self.leeway):
            raise InvalidDPoPProof("proof_replayed", "the proof has been used before")
