"""Secrets the provider makes for itself, and the one way it hashes high-entropy secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets as _secrets
from pathlib import Path

from flask.sessions import SecureCookieSessionInterface


def load_or_create(settings, name: str, nbytes_b64: int | None = None) -> str:
    """A generated secret kept in the data folder (mode 0600), made on first use.
    ``nbytes_b64``: make it standard base64 of that many random bytes (a raw key)."""
    path = Path(settings.data_dir) / name
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = (base64.b64encode(os.urandom(nbytes_b64)).decode() if nbytes_b64 else _secrets.token_urlsafe(48))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its key
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def token(nbytes: int = 32) -> str:
    """A random URL-safe secret (32 bytes = 256 bits)."""
    return _secrets.token_urlsafe(nbytes)


def fast_hash(secret: str, pepper: str) -> str:
    """Keyed hash for high-entropy secrets (client secrets, refresh tokens, codes).

    These are random 256-bit values, so a slow password hash adds nothing but
    latency on the token endpoint; HMAC-SHA256 with a server-side pepper means a
    leaked database alone cannot be used to test guesses.
    """
    return hmac.new(pepper.encode(), secret.encode(), hashlib.sha256).hexdigest()


def email_digest(email: str, pepper: str) -> str:
    """What stands for an email address where it must not appear in clear (store keys, counters,
    rate-limit keys, log lines): a keyed hash of its lower-cased, trimmed form."""
    return fast_hash("email:" + email.strip().lower(), pepper)


def same(a: str, b: str) -> bool:
    """Constant-time comparison of two strings."""
    return hmac.compare_digest(a.encode(), b.encode())


class LazyCookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie session, without building the signing serializer for requests that
    carry no session cookie (every machine-to-machine call): it is only needed to read or write one."""

    def open_session(self, app, request):
        name = self.get_cookie_name(app)
        # the raw header first: most machine-to-machine calls send no cookies at all
        if name not in request.environ.get("HTTP_COOKIE", "") or not request.cookies.get(name):
            return self.session_class()
        return super().open_session(app, request)
