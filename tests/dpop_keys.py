"""A DPoP client's key and the proofs it makes (RFC 9449 §4), for tests: every field of a proof
can be changed or left out, so each rule of the provider and the relying-party kit can be attacked."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time

from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey

_OMIT = object()


def ath_of(access_token: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(access_token.encode()).digest()).rstrip(b"=").decode()


class DPoPKey:
    def __init__(self, kind: str = "EC") -> None:
        if kind == "EC":
            self.key, self.alg = ECKey.generate_key("P-256"), "ES256"
        elif kind == "RSA":
            self.key, self.alg = RSAKey.generate_key(2048), "PS256"
        else:
            self.key, self.alg = OKPKey.generate_key("Ed25519"), "EdDSA"

    @property
    def jkt(self) -> str:
        return self.key.thumbprint()

    def proof(self, method: str, url: str, *, access_token: str | None = None, nonce: str | None = None,
              iat=None, jti=None, htm=None, htu=None, ath=None, typ="dpop+jwt", alg=None, jwk=None,
              sign_with=None) -> str:
        """A proof for ``method`` ``url``; keywords change (or with ``_OMIT`` leave out) one field."""
        header = {"typ": typ, "alg": alg or self.alg, "jwk": jwk if jwk is not None else self.key.as_dict(private=False)}
        claims = {"jti": secrets.token_urlsafe(16) if jti is None else jti, "htm": htm or method,
                  "htu": htu or url, "iat": int(time.time()) if iat is None else iat}
        if access_token is not None or ath is not None:
            claims["ath"] = ath if ath is not None else ath_of(access_token)
        if nonce is not None:
            claims["nonce"] = nonce
        header = {k: v for k, v in header.items() if v is not _OMIT}
        claims = {k: v for k, v in claims.items() if v is not _OMIT}
        signer = sign_with or self.key
        return jwt.encode(header, claims, signer, algorithms=[header.get("alg", self.alg)])


OMIT = _OMIT
