"""Small HTTP(S) listeners for relying-party tests (not a test module): a stand-in provider whose
every answer the test chooses (redirects, malformed JSON, slow or endless bodies), recording what
it was sent.

    with Listener() as idp:
        idp.routes["/jwks.json"] = json_answer({"keys": []})
        ... idp.url ..., idp.paths() == ["/jwks.json"]
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

from joserfc import jwt
from joserfc.jwk import ECKey

from tests.background import Served

Route = Callable[[BaseHTTPRequestHandler], None]


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Listener:
    def __init__(self, tls_files: dict[str, Path] | None = None) -> None:
        listener = self
        self.routes: dict[str, Route] = {}
        self.received: list[Received] = []
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # no access lines in test output
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?")[0]
                with listener._lock:
                    listener.received.append(Received(self.command, path, dict(self.headers.items()), body))
                route = listener.routes.get(path)
                if route is None:
                    raw_answer(b'{"error": "not_found"}', status=404)(self)
                else:
                    try:
                        route(self)
                    except (BrokenPipeError, ConnectionResetError):  # the client gave up: fine
                        pass

            do_GET = do_POST = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True  # a handler still trickling must not hold up close()
        if tls_files is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls_files["cert"], tls_files["key"])
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        scheme = "https" if tls_files is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_port}"
        self._served = Served(self._server, "rp-test-listener")

    def paths(self) -> list[str]:
        with self._lock:
            return [r.path for r in self.received]

    def close(self) -> None:
        self._served.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ------------------------------------------------------------------ answers
def raw_answer(body: bytes, status: int = 200, headers: dict[str, str] | None = None,
               content_type: str = "application/json") -> Route:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    return answer


def json_answer(doc: object, status: int = 200, headers: dict[str, str] | None = None) -> Route:
    return raw_answer(json.dumps(doc).encode(), status, headers)


def redirect(location: str, status: int = 302) -> Route:
    return raw_answer(b"", status, {"Location": location})


def trickle(body: bytes, interval: float, headers_too: bool = False) -> Route:
    """A valid answer whose body (with ``headers_too``, the whole answer from its status line)
    comes one byte every ``interval`` seconds, until the client hangs up."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                f"Connection: close\r\n\r\n").encode()
        handler.close_connection = True
        if not headers_too:
            handler.wfile.write(head)
            head = b""
        for byte in head + body:
            time.sleep(interval)
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()

    return answer


def endless(chunk: bytes = b" " * 65536) -> Route:
    """An answer with no length that never ends (until the client hangs up)."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(b"[")
        for _ in range(10_000):  # 640 MB at most: the client hangs up long before
            handler.wfile.write(chunk)
        handler.close_connection = True

    return answer


# ------------------------------------------------------------------ a stand-in provider
class FakeIssuer:
    """Discovery, a JWKS with one ES256 key and an introspection endpoint on a Listener, and
    tokens signed with that key. Replace any route to make the provider misbehave."""

    def __init__(self, listener: Listener, audience: str = "service") -> None:
        self.listener, self.issuer, self.audience = listener, listener.url, audience
        self.key = ECKey.generate_key("P-256", parameters={"kid": "fake-1", "alg": "ES256", "use": "sig"})
        self.discovery = {"issuer": self.issuer, "jwks_uri": self.issuer + "/jwks.json",
                          "introspection_endpoint": self.issuer + "/introspect"}
        listener.routes["/.well-known/openid-configuration"] = json_answer(self.discovery)
        listener.routes["/jwks.json"] = json_answer(self.jwks(), headers={"Cache-Control": "max-age=300"})
        listener.routes["/introspect"] = json_answer({"active": False})

    def jwks(self, *keys: ECKey) -> dict:
        return {"keys": [k.as_dict(private=False) for k in (keys or (self.key,))]}

    def claims(self, **changes) -> dict:
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": "someone", "aud": self.audience, "client_id": self.audience,
                  "iat": now, "exp": now + 600, "jti": f"jti-{time.monotonic_ns()}", "scope": "openid access",
                  "profiles": ["results.view"]}
        claims.update(changes)
        return claims

    def sign(self, claims: dict | None = None, key: ECKey | None = None, **header) -> str:
        key = key or self.key
        return jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": key.kid, **header},
                          claims if claims is not None else self.claims(), key, algorithms=["ES256"])
