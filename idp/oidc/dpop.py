"""DPoP (RFC 9449): access and refresh tokens bound to a key the client holds.

A client that sends a ``DPoP`` header with a token request proves it holds a private key: the
header is a JWT (``typ: dpop+jwt``) signed with that key, carrying the public half (``jwk``), the
HTTP method and URL it is for (``htm``, ``htu``), when it was made (``iat``) and a unique ``jti``.
The access token issued then carries the key's thumbprint (``cnf.jkt``, RFC 7638) and is of type
``DPoP``: a resource accepts it only with a fresh proof by the same key that also names the token
(``ath``). A stolen token alone is useless.

Everything about one proof is checked here, for the token endpoint, the pushed request endpoint
and the resources alike: ``check_proof`` answers the key's thumbprint or raises ``ProofRefused``.
Its ``jti`` is remembered in the shared store for as long as the proof is accepted, so a proof is
used once across every process. Nonces (§8) are stateless: an HMAC of the current time window
under the provider's pepper, so every process hands out and accepts the same ones, the current
window's and the one before.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import warnings
from urllib.parse import urlsplit

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry
from joserfc.jws import JWSRegistry

from .. import inputs, protocol
from ..extensions import pepper, settings
from ..records import Record, made_before_the_store_forgot

#: proofs seen, by key thumbprint and jti, for as long as a proof is accepted
PROOF_IDS = Record("dpop-jti", ttl=300)  # lifetime from [tokens] dpop_proof_max_age
#: how far ahead of our clock a proof's iat may be (a client's clock running a little fast)
CLOCK_SKEW = 30
#: a proof is small (a JWT with one public key); anything much longer is not one
MAX_PROOF_LENGTH = 8192
MIN_RSA_BITS = 2048
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_KEY_TYPES = frozenset({"EC", "RSA", "OKP"})
INVALID_PROOF, USE_NONCE = "invalid_dpop_proof", "use_dpop_nonce"

#: a proof's header carries its public key: an RSA one does not fit joserfc's default 512 bytes
_PROOF_REGISTRY = JWSRegistry(algorithms=list(protocol.DPOP_ALGORITHMS))
_PROOF_REGISTRY.max_header_length = _PROOF_REGISTRY.max_payload_length = MAX_PROOF_LENGTH // 2


class ProofRefused(Exception):
    """The request's DPoP proof cannot be accepted. ``error`` is ``invalid_dpop_proof`` or
    ``use_dpop_nonce`` (then send the current nonce with the answer)."""

    def __init__(self, description: str, error: str = INVALID_PROOF) -> None:
        super().__init__(description)
        self.error, self.description = error, description


def access_token_hash(access_token: str) -> str:
    """``ath``: the base64url SHA-256 of the access token a proof is sent with (§4.2)."""
    return inputs.b64url_encode(hashlib.sha256(access_token.encode("ascii", "replace")).digest())


def is_thumbprint(value) -> bool:
    """A base64url SHA-256 JWK thumbprint (``dpop_jkt``, ``cnf.jkt``): 43 characters."""
    return isinstance(value, str) and len(value) == 43 and \
        all(c.isalnum() or c in "-_" for c in value) and value.isascii()


# ------------------------------------------------------------------ nonces (§8)
def _window(offset: int = 0) -> int:
    return int(time.time()) // settings().tokens.dpop_proof_max_age - offset


def _nonce_for(window: int) -> str:
    mac = hmac.new(pepper().encode(), f"dpop-nonce:{window}".encode(), hashlib.sha256).digest()
    return inputs.b64url_encode(mac[:24])


def current_nonce() -> str:
    return _nonce_for(_window())


def nonce_required() -> bool:
    return settings().tokens.dpop_nonce_required


def nonce_header(sent_proof: bool, error: str | None = None) -> dict:
    """``DPoP-Nonce`` for the answer to a request (RFC 9449 §8, §9): to any request that sent a proof
    while nonces are required, and with a ``use_dpop_nonce`` refusal."""
    if (sent_proof and nonce_required()) or error == USE_NONCE:
        return {"DPoP-Nonce": current_nonce()}
    return {}


def _nonce_is_fresh(nonce) -> bool:
    if not isinstance(nonce, str) or len(nonce) > 64 or not nonce.isascii():  # compare_digest: ASCII only
        return False
    return any(hmac.compare_digest(nonce, _nonce_for(_window(back))) for back in (0, 1))


# ------------------------------------------------------------------ proofs (§4.3)
def _same_resource(htu, url: str) -> bool:
    """``htu`` names the URL the proof was sent to; query and fragment are ignored (§4.3 9)."""
    if not isinstance(htu, str) or len(htu) > 2000:
        return False
    try:
        got, want = urlsplit(htu), urlsplit(url)
        return (got.scheme.lower(), got.hostname, got.port, got.path) == \
            (want.scheme.lower(), want.hostname, want.port, want.path)
    except ValueError:
        return False


def _public_key(header: dict):
    jwk = header.get("jwk")
    # kty is looked up in a set before the key is imported: a list or an object there is unhashable
    if not isinstance(jwk, dict) or not isinstance(jwk.get("kty"), str) or jwk["kty"] not in _KEY_TYPES:
        raise ProofRefused("The proof's header has no public key (jwk) of a supported type.")
    if _PRIVATE_MEMBERS & jwk.keys():
        raise ProofRefused("The proof's jwk must be a public key.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            key = JWKRegistry.import_key(jwk)
    except (JoseError, ValueError, TypeError, KeyError):
        raise ProofRefused("The proof's jwk is not a valid public key.") from None
    if jwk["kty"] == "RSA" and key.raw_value.key_size < MIN_RSA_BITS:
        raise ProofRefused("The proof's RSA key is too short.")
    return key


def check_proof(proofs: list[str], *, method: str, url: str, access_token: str | None = None) -> str:
    """Check the ``DPoP`` header values of one request and use the proof up; its key's thumbprint.

    ``url`` is the URL the request was sent to, as the provider publishes it; ``access_token``
    the token a resource request presents (the proof must name it, ``ath``)."""
    if len(proofs) != 1:
        raise ProofRefused("Send exactly one DPoP header.")
    proof = proofs[0]
    if not isinstance(proof, str) or len(proof) > MAX_PROOF_LENGTH or proof.count(".") != 2:
        raise ProofRefused("The DPoP header is not a signed JWT.")
    header_part, payload_part, _signature = proof.split(".")
    try:
        header = inputs.json_segment(header_part)
        # read as the header is (nesting bounded, text only) before joserfc parses it after the
        # signature: the signer is whoever made the key, and deep brackets would exhaust the stack
        inputs.json_segment(payload_part)
    except ValueError:
        raise ProofRefused("The DPoP header is not a signed JWT.") from None
    if not isinstance(header, dict):
        raise ProofRefused("The DPoP header is not a signed JWT.")
    if str(header.get("typ", "")).lower() != protocol.DPOP_PROOF_TYP:
        raise ProofRefused(f"The proof's typ must be {protocol.DPOP_PROOF_TYP}.")
    alg = header.get("alg")
    if alg not in protocol.DPOP_ALGORITHMS:
        raise ProofRefused("The proof's algorithm is not supported.")
    key = _public_key(header)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            claims = jwt.decode(proof, key, algorithms=[alg], registry=_PROOF_REGISTRY).claims
    except (JoseError, ValueError, TypeError):
        raise ProofRefused("The proof's signature does not verify with its jwk.") from None

    jti = claims.get("jti")
    if not isinstance(jti, str) or not 1 <= len(jti) <= 256:
        raise ProofRefused("The proof has no jti.")
    if claims.get("htm") != method:
        raise ProofRefused("The proof was made for another HTTP method (htm).")
    if not _same_resource(claims.get("htu"), url):
        raise ProofRefused("The proof was made for another URL (htu).")
    iat, now, max_age = claims.get("iat"), time.time(), settings().tokens.dpop_proof_max_age
    if not isinstance(iat, (int, float)) or isinstance(iat, bool) or not now - max_age <= iat <= now + CLOCK_SKEW:
        raise ProofRefused("The proof is too old or made in the future (iat).",
                           USE_NONCE if nonce_required() else INVALID_PROOF)
    if access_token is not None:
        ath = claims.get("ath")
        valid = isinstance(ath, str) and ath.isascii()  # compare_digest: ASCII only
        if not valid or not hmac.compare_digest(ath, access_token_hash(access_token)):
            raise ProofRefused("The proof does not name the access token it is sent with (ath).")
    if nonce_required():  # otherwise no nonce was handed out, and one in the proof means nothing
        if not _nonce_is_fresh(claims.get("nonce")):
            raise ProofRefused("Make the proof with the nonce in the DPoP-Nonce header.", USE_NONCE)
    thumbprint = key.thumbprint()
    # last: only a proof that passed every other check may take up room in the store
    replay_key = hashlib.sha256(f"{thumbprint}:{jti}".encode()).hexdigest()
    if not PROOF_IDS.add(replay_key, ttl=max_age + CLOCK_SKEW):
        raise ProofRefused("The proof has been used before (jti).")
    if made_before_the_store_forgot(iat):  # its use may have been forgotten with everything else
        raise ProofRefused("The proof was made before the server's memory of used proofs began (iat).",
                           USE_NONCE if nonce_required() else INVALID_PROOF)
    return thumbprint
