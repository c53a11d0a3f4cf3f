"""The provider's Flask app served over real HTTP by a background thread, for relying-party tests
and the kit benchmark (not a test module).

The socket is bound first (port 0), so the issuer ``http://127.0.0.1:<port>`` is known before the
app is built from it. People, clients and tokens are made through tests.support inside the app's
context and over the Flask test client of the same app: its tokens validate against the JWKS the
thread serves. Requests are counted by path (``requests``; ``jwks_requests`` for /jwks.json).
"""

from __future__ import annotations

import re
import shutil
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from werkzeug.serving import WSGIRequestHandler, make_server

from idp import policy
from tests.background import Served


def cheap_hashing_policies(tmp_path: Path) -> Path:
    """The shipped policies with argon2 at its cheapest: these tests are about tokens, and at the
    policy's OWASP cost every account and sign-in costs ~0.1 s of CPU."""
    target = tmp_path / "policies-fast-hash"
    if not target.exists():
        shutil.copytree(policy.default_dir(), target)
        security = target / "security.toml"
        text = re.sub(r"(?m)^argon2_memory_kib\s*=.*$", "argon2_memory_kib = 1024", security.read_text())
        security.write_text(re.sub(r"(?m)^argon2_time_cost\s*=.*$", "argon2_time_cost = 1", text))
    return target


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:  # no access log lines in test output
        pass


class ServedApp:
    """Any WSGI app served on a free loopback port by a background thread (a relying party's
    back-channel logout endpoint, say)."""

    def __init__(self, wsgi_app) -> None:
        self._server = make_server("127.0.0.1", 0, wsgi_app, threaded=True, request_handler=_QuietHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._served = Served(self._server, "rp-live")

    def close(self) -> None:
        self._served.stop()


class ThreadedProvider:
    def __init__(self, build_app: Callable[[str], object], keys_dir: Path | None = None) -> None:
        self._server = make_server("127.0.0.1", 0, self._dispatch, threaded=True,
                                   request_handler=_QuietHandler)
        self.port = self._server.server_port
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.keys_dir = keys_dir
        self.requests: Counter[str] = Counter()
        self._count_lock = threading.Lock()
        try:
            self.app = build_app(self.issuer)
        except BaseException:
            self._server.server_close()
            raise
        self._served = Served(self._server, "idp-live")
        self._running = True

    def _dispatch(self, environ, start_response):
        with self._count_lock:
            self.requests[environ.get("PATH_INFO", "")] += 1
        return self.app(environ, start_response)

    @property
    def jwks_requests(self) -> int:
        return self.requests["/jwks.json"]

    def stop(self) -> None:
        """Stop serving (the app stays usable in-process)."""
        if self._running:
            self._served.stop()
            self._running = False

    def close(self) -> None:
        self.stop()
        self.app.extensions["idp.db"].dispose()
        self.app.extensions["idp.store"].close()

    # -------------------------------------------------------------- people, clients, tokens
    def person(self, email: str, role: str = "eo", profiles=None, centre: str | None = "12345") -> str:
        """An active account with a passkey; returns its sub."""
        from tests.support import make_account

        with self.app.app_context():
            return make_account(email=email, role=role, profiles=profiles, centre=centre).sub

    def client(self, name: str = "Service", **meta):
        from tests.support import make_client

        with self.app.app_context():
            return make_client(name=name, **meta)

    def tokens(self, rp, email: str, scope: str = "openid access") -> dict:
        """A full code flow (sign-in with password and passkey) in a fresh browser; the token response."""
        from tests.support import code_flow

        return code_flow(self.app.test_client(), rp, scope=scope, email=email)

    def access_token(self, rp, email: str, scope: str = "openid access") -> str:
        return self.tokens(rp, email, scope)["access_token"]

    def signing_key(self, alg: str = "ES256"):
        """(kid, private joserfc key) the provider signs with now, for forging test tokens."""
        from idp.oidc.keys import KeyFolder

        folder = KeyFolder(self.keys_dir)
        version = folder.version()
        if getattr(self, "_ring", (None, None))[0] != version:
            self._ring = (version, folder.load())
        return self._ring[1].signing_key(alg)

    def sign(self, claims: dict, alg: str = "ES256", **header) -> str:
        """A JWT signed with the provider's current ``alg`` key (header kid/typ overridable)."""
        from joserfc import jwt

        kid, key = self.signing_key(alg)
        header = {k: v for k, v in {"alg": alg, "kid": kid, "typ": "at+jwt", **header}.items() if v is not None}
        return jwt.encode(header, claims, key, algorithms=[alg])

    def access_claims(self, rp, **changes) -> dict:
        """Claims like the provider's own access tokens for ``rp`` (iss, aud, exp, jti …), changed."""
        import secrets
        import time

        now = int(time.time())
        claims = {"iss": self.issuer, "sub": "someone", "aud": rp.client_id, "client_id": rp.client_id,
                  "iat": now, "exp": now + 600, "jti": secrets.token_hex(8), "scope": "openid access",
                  "role": "eo", "centre": "12345", "profiles": ["resources"]}
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}
