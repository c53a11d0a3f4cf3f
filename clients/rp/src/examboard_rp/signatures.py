"""JWS signature verification (RFC 7515/7518/8037) for one algorithm and one published key.

Keys come from the JWKS through joserfc (parsing, key-type checks); the verification itself is one
call into ``cryptography``, prepared once per key and algorithm (the public key object, hash and
padding built up front). Going through joserfc's generic ``jwt.decode`` costs as much again as an
ES256 verification; a resource server does this on every request.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

Verify = Callable[[bytes, bytes], bool]  # (signing input, signature) -> valid?

_HASH = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_CURVES = {"ES256": ("secp256r1", 32), "ES384": ("secp384r1", 48), "ES512": ("secp521r1", 66)}
MIN_RSA_BITS = 2048


def prepare(alg: str, key) -> Verify | None:
    """A verify function for ``alg`` with this joserfc public key; None when they do not fit
    (an RSA key for ES256, a P-384 key for ES256, a short RSA key …)."""
    try:
        public = key.get_op_key("verify")
    except Exception:  # noqa: BLE001 - a key joserfc will not verify with does not fit any alg
        return None
    if alg in _CURVES:
        curve, size = _CURVES[alg]
        if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != curve:
            return None
        algorithm = ec.ECDSA(_HASH[alg[2:]]())

        def verify_ecdsa(data: bytes, signature: bytes) -> bool:
            if len(signature) != 2 * size:  # JWS ECDSA signatures are r || s, fixed width
                return False
            der = encode_dss_signature(int.from_bytes(signature[:size], "big"),
                                       int.from_bytes(signature[size:], "big"))
            try:
                public.verify(der, data, algorithm)
                return True
            except InvalidSignature:
                return False

        return verify_ecdsa
    if alg[:2] in ("RS", "PS") and alg[2:] in _HASH:
        if not isinstance(public, rsa.RSAPublicKey) or public.key_size < MIN_RSA_BITS:
            return None
        digest = _HASH[alg[2:]]()
        pad = padding.PKCS1v15() if alg[:2] == "RS" else padding.PSS(padding.MGF1(digest), digest.digest_size)

        def verify_rsa(data: bytes, signature: bytes) -> bool:
            try:
                public.verify(signature, data, pad, digest)
                return True
            except InvalidSignature:
                return False

        return verify_rsa
    if alg in ("EdDSA", "Ed25519"):
        allowed = (ed25519.Ed25519PublicKey,) if alg == "Ed25519" else (ed25519.Ed25519PublicKey,
                                                                         ed448.Ed448PublicKey)
        if not isinstance(public, allowed):
            return None

        def verify_eddsa(data: bytes, signature: bytes) -> bool:
            try:
                public.verify(signature, data)
                return True
            except InvalidSignature:
                return False

        return verify_eddsa
    return None
