"""A software WebAuthn authenticator for tests: makes real attestation ("none") and assertion data,
signed with a real P-256 key, exactly as a browser would pass them on (PublicKeyCredential JSON).

The provider verifies them with py_webauthn; the browser tests cross-check with Chromium's own
virtual authenticator.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SoftAuthenticator:
    def __init__(self, origin: str = "http://localhost", rp_id: str = "localhost", *, single_device: bool = True):
        self.origin, self.rp_id = origin, rp_id
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(32)
        self.sign_count = 0
        self.single_device = single_device
        self.user_handle = b""

    def _client_data(self, kind: str, challenge: str, origin: str | None = None) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin or self.origin,
                           "crossOrigin": False}).encode()

    def _flags(self, attested: bool) -> int:
        flags = 0x01 | 0x04  # user present, user verified
        if not self.single_device:
            flags |= 0x08 | 0x10  # backup eligible, backed up (a synced passkey)
        return flags | (0x40 if attested else 0)

    def create(self, options: str | dict, *, origin: str | None = None, rp_id: str | None = None) -> str:
        options = json.loads(options) if isinstance(options, str) else options
        self.user_handle = base64.urlsafe_b64decode(options["user"]["id"] + "==")
        numbers = self.key.public_key().public_numbers()
        cose = cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})
        attested = bytes(16) + len(self.credential_id).to_bytes(2, "big") + self.credential_id + cose
        auth_data = (hashlib.sha256((rp_id or self.rp_id).encode()).digest() + bytes([self._flags(True)])
                     + self.sign_count.to_bytes(4, "big") + attested)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return json.dumps({
            "id": b64url(self.credential_id), "rawId": b64url(self.credential_id), "type": "public-key",
            "response": {"clientDataJSON": b64url(self._client_data("webauthn.create", options["challenge"], origin)),
                         "attestationObject": b64url(attestation), "transports": ["internal"]},
            "clientExtensionResults": {}, "authenticatorAttachment": "platform"})

    def get(self, options: str | dict, *, origin: str | None = None, rp_id: str | None = None,
            sign_count: int | None = None, tamper: bool = False) -> str:
        options = json.loads(options) if isinstance(options, str) else options
        self.sign_count = self.sign_count + 1 if sign_count is None else sign_count
        auth_data = (hashlib.sha256((rp_id or self.rp_id).encode()).digest() + bytes([self._flags(False)])
                     + self.sign_count.to_bytes(4, "big"))
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        if tamper:
            signature = signature[:-1] + bytes([signature[-1] ^ 1])
        return json.dumps({
            "id": b64url(self.credential_id), "rawId": b64url(self.credential_id), "type": "public-key",
            "response": {"clientDataJSON": b64url(client_data), "authenticatorData": b64url(auth_data),
                         "signature": b64url(signature), "userHandle": b64url(self.user_handle)},
            "clientExtensionResults": {}, "authenticatorAttachment": "platform"})
