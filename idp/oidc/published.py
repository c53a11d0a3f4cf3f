"""The JWKS and the discovery metadata: the same bytes for every caller, so they are answered
ahead of Flask's request handling (no request context, routing, session or database), inside the
request log and the security headers like every other response.

The bytes are rebuilt from what they are made of, at most once a second: the JWKS from the key
cache (which sees a rotation by another process within a second), the metadata from the settings
and the signing algorithms in use (a key published ahead of use starts signing at a given time,
so the list can change without any file changing). Other methods: 405, and OPTIONS says what is
allowed."""

from __future__ import annotations

import json
import logging
import time

from flask import Flask

from .. import metrics

log = logging.getLogger(__name__)

JWKS_PATH = "/jwks.json"
METADATA_PATHS = ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server")
#: how long a relying party may keep the metadata (the JWKS's own lifetime is [keys] jwks_max_age)
METADATA_MAX_AGE = 300


class PublishedDocuments:
    """WSGI middleware answering GET and HEAD of the published documents from cached bytes."""

    def __init__(self, wsgi_app, app: Flask) -> None:
        self.wsgi_app, self.app = wsgi_app, app
        self.settings = app.config["IDP_SETTINGS"]
        self._documents = {JWKS_PATH: self._jwks, **{path: self._metadata for path in METADATA_PATHS}}
        self._built: dict[str, tuple[object, bytes]] = {}  # which -> (what it was built from, bytes)
        self._second: tuple[int, object] = (0, object())

    def __call__(self, environ, start_response):
        build = self._documents.get(environ.get("PATH_INFO", ""))
        if build is None:
            return self.wsgi_app(environ, start_response)
        environ[metrics.ENDPOINT_ENV] = "published.jwks" if build == self._jwks else "published.discovery"
        method = environ.get("REQUEST_METHOD")
        if method not in ("GET", "HEAD"):
            allow = ("Allow", "GET, HEAD, OPTIONS")
            if method == "OPTIONS":
                start_response("200 OK", [allow, ("Access-Control-Allow-Origin", "*"), ("Content-Length", "0")])
                return [b""]
            body = b'{"error":"method_not_allowed"}'
            start_response("405 Method Not Allowed", [allow, ("Content-Type", "application/json"),
                                                      ("Content-Length", str(len(body)))])
            return [body]
        try:
            body, max_age = build()
        except Exception:  # noqa: BLE001 - an unreadable keyring: say so, as every endpoint would
            log.exception("published document unavailable")
            body = b'{"error":"temporarily_unavailable"}'
            start_response("503 Service Unavailable", [("Content-Type", "application/json"),
                                                       ("Content-Length", str(len(body))), ("Retry-After", "5")])
            return [body]
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                                  ("Cache-Control", f"public, max-age={max_age}"),
                                  ("Access-Control-Allow-Origin", "*")])
        return [b""] if method == "HEAD" else [body]

    def _cached(self, which: str, source, make) -> bytes:
        """The bytes built from ``source`` (kept, and compared by identity) by ``make``."""
        built = self._built.get(which)
        if built is None or built[0] is not source:
            built = self._built[which] = (source, json.dumps(make(), separators=(",", ":")).encode())
        return built[1]

    def _jwks(self) -> tuple[bytes, int]:
        doc = self.app.extensions["idp.keys"].jwks(self.settings.max_jwt_lifetime)  # a new dict when rebuilt
        return self._cached("jwks", doc, lambda: doc), self.settings.keys.jwks_max_age

    def _metadata(self) -> tuple[bytes, int]:
        from .endpoints import discovery

        def make():
            with self.app.app_context():
                return discovery.metadata()

        second = int(time.time())
        if self._second[0] != second:
            self._second = (second, object())  # one token per second: the metadata is rebuilt once a second
        return self._cached("metadata", self._second[1], make), METADATA_MAX_AGE
