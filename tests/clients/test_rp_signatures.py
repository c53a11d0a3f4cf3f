"""examboard_rp.signatures against joserfc: every supported algorithm verifies what joserfc signs,
and refuses tampering, other keys, keys of the wrong type or curve, and short RSA keys."""

from __future__ import annotations

import base64
import warnings

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from examboard_rp.signatures import prepare
from joserfc import jws
from joserfc.jwk import ECKey, OKPKey, RSAKey

KEYS = {
    "ES256": lambda: ECKey.generate_key("P-256"), "ES384": lambda: ECKey.generate_key("P-384"),
    "ES512": lambda: ECKey.generate_key("P-521"), "RS256": lambda: RSAKey.generate_key(2048),
    "RS384": lambda: RSAKey.generate_key(2048), "RS512": lambda: RSAKey.generate_key(2048),
    "PS256": lambda: RSAKey.generate_key(2048), "PS384": lambda: RSAKey.generate_key(2048),
    "PS512": lambda: RSAKey.generate_key(2048), "EdDSA": lambda: OKPKey.generate_key("Ed25519"),
    "Ed25519": lambda: OKPKey.generate_key("Ed25519"),
}


def public(key):
    return type(key).import_key(key.as_dict(private=False))


@pytest.mark.parametrize("alg", sorted(KEYS))
def test_verifies_what_joserfc_signs(alg):
    key = KEYS[alg]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc: "EdDSA" is deprecated by RFC 9864
        token = jws.serialize_compact({"alg": alg}, b'{"sub":"x"}', key, algorithms=[alg])
    signing_input, _, signature = token.rpartition(".")
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    verify = prepare(alg, public(key))
    assert verify(signing_input.encode(), raw)
    assert not verify(signing_input.encode() + b"x", raw)
    assert not verify(signing_input.encode(), raw[:-1])
    assert not verify(signing_input.encode(), bytes(len(raw)))
    assert not prepare(alg, public(KEYS[alg]()))(signing_input.encode(), raw)  # another key of the kind


def test_keys_must_fit_the_algorithm():
    p256, p384 = public(ECKey.generate_key("P-256")), public(ECKey.generate_key("P-384"))
    rsa_key, ed = public(RSAKey.generate_key(2048)), public(OKPKey.generate_key("Ed25519"))
    assert prepare("ES256", p384) is None and prepare("ES384", p256) is None
    assert prepare("ES256", rsa_key) is None and prepare("RS256", p256) is None
    assert prepare("EdDSA", p256) is None and prepare("ES256", ed) is None
    assert prepare("HS256", rsa_key) is None and prepare("none", p256) is None
    assert prepare("EdDSA", public(OKPKey.generate_key("X25519"))) is None  # an encryption key


def test_short_rsa_keys_are_refused():
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = short.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc warns about the short key as it imports it
        short_key = RSAKey.import_key(pem)
    assert prepare("RS256", short_key) is None
