"""AES-256-GCM for secrets at rest (TOTP seeds), with key rotation.

Ciphertext layout: key id (4 bytes: first bytes of SHA-256 of the key) | nonce (12) | ciphertext+tag.
The first configured key encrypts; any configured key decrypts, found by its id.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app

from .. import secrets
from ..extensions import settings as app_settings


class SecretBox:
    def __init__(self, keys: list[bytes]) -> None:
        if not keys or any(len(k) != 32 for k in keys):
            raise ValueError("[mfa] encryption_keys: expected base64 of 32 random bytes each")
        self._keys = {hashlib.sha256(k).digest()[:4]: AESGCM(k) for k in keys}
        self._current = hashlib.sha256(keys[0]).digest()[:4]

    def encrypt(self, plaintext: bytes, context: bytes = b"") -> bytes:
        nonce = os.urandom(12)
        return self._current + nonce + self._keys[self._current].encrypt(nonce, plaintext, context)

    def decrypt(self, blob: bytes, context: bytes = b"") -> bytes:
        key = self._keys.get(bytes(blob[:4]))
        if key is None:
            raise ValueError("encrypted with a key that is no longer configured")
        return key.decrypt(bytes(blob[4:16]), bytes(blob[16:]), context)

    def needs_rekey(self, blob: bytes) -> bool:
        return bytes(blob[:4]) != self._current


def box() -> SecretBox:
    cached = current_app.extensions.get("idp.secretbox")
    if cached is None:
        settings = app_settings()
        raw = settings.mfa.encryption_keys or secrets.load_or_create(settings, "mfa_keys", nbytes_b64=32)
        cached = SecretBox([base64.b64decode(k.strip()) for k in raw.split(",") if k.strip()])
        current_app.extensions["idp.secretbox"] = cached
    return cached
