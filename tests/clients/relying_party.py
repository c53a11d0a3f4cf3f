"""Relying parties a test runs over real HTTP, and a person's browser (not a test module).

A ``SigningInRP`` is a small Flask service on a loopback port: ``/login`` signs a person in at the
provider with Authlib's OpenID Connect client (code flow, PKCE, the ID token checked against the
provider's JWKS), keeps its own session keyed by the ID token's ``sid``, and ends it when a
back-channel logout token for that ``sid`` arrives. Its logout endpoint is either

- ``"kit"``: the examboard-rp kit's Flask view (``examboard_rp.flask.logout_view``), or
- ``"joserfc"``: a hand-written receiver that checks the token with joserfc against the JWKS the
  provider serves (found through discovery), as a service without the kit would.

``Browser`` is requests with one cookie jar, following redirects only when told, shaped like the
Flask test client so that ``tests.support.sign_in`` drives the provider's pages with it.
"""

from __future__ import annotations

import secrets
import threading
from urllib.parse import urljoin, urlsplit

import requests
from authlib.integrations.flask_client import OAuth
from examboard_rp import BACKCHANNEL_LOGOUT_EVENT, ResourceServer
from examboard_rp.flask import logout_view
from flask import Flask, jsonify, redirect, request, session, url_for
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from tests.clients.live import ServedApp


class Page:
    """A requests response with the Flask test client's names (status_code, location, get_data)."""

    def __init__(self, response: requests.Response) -> None:
        self.response = response
        self.status_code = response.status_code
        self.url = response.url
        self.location = response.headers.get("Location")

    def get_data(self, as_text: bool = False):
        return self.response.text if as_text else self.response.content

    def get_json(self):
        return self.response.json()


class Browser:
    """One person's browser: a cookie jar over real HTTP; relative URLs are the provider's."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()
        self.http.trust_env = False  # everything is loopback: no proxies

    def get(self, url: str, **kwargs) -> Page:
        return Page(self.http.get(urljoin(self.base, url), allow_redirects=False, timeout=30, **kwargs))

    def post(self, url: str, data=None, **kwargs) -> Page:
        return Page(self.http.post(urljoin(self.base, url), data=data, allow_redirects=False, timeout=30,
                                   **kwargs))

    def follow(self, page: Page, until: str | None = None) -> Page:
        """Follow redirects (at most ten), stopping early at a URL starting with ``until``."""
        for _ in range(10):
            if page.status_code not in (301, 302, 303, 307, 308):
                return page
            target = urljoin(page.url, page.location)
            if until and target.startswith(until):
                return page
            page = self.get(target)
        raise AssertionError("too many redirects")


class SigningInRP:
    def __init__(self, provider, name: str, logout: str = "kit") -> None:
        self.provider, self.name, self.kind = provider, name, logout
        self.sessions: dict[str, dict] = {}     # the RP's own sessions: local id -> ID token claims
        self.logouts: list[dict] = []           # claims of every logout token accepted
        self.refused: list[str] = []            # why logout tokens were refused (joserfc receiver)
        self._lock = threading.Lock()
        self._seen_jti: set[str] = set()
        self._app: Flask | None = None
        self.served = ServedApp(lambda environ, start: self._app(environ, start))
        self.url = self.served.url
        self.client = None

    def register(self, backchannel_logout_uri: str | None = None) -> SigningInRP:
        """Register at the provider (its redirect URI on this RP's port), then build the app."""
        self.client = self.provider.client(
            f"RP {self.name}", redirect_uri=self.url + "/callback",
            post_logout_redirect_uris=[self.url + "/bye"],
            backchannel_logout_uri=backchannel_logout_uri or self.url + "/backchannel-logout",
            backchannel_logout_session_required=True)
        self._app = self._build()
        return self

    @property
    def client_id(self) -> str:
        return self.client.client_id

    # ------------------------------------------------------------------ the RP's own sessions
    def _end(self, *, sid: str | None, sub: str | None) -> int:
        with self._lock:
            doomed = [k for k, v in self.sessions.items()
                      if (sid and v.get("sid") == sid) or (sub and not sid and v.get("sub") == sub)]
            for key in doomed:
                del self.sessions[key]
        return len(doomed)

    def _build(self) -> Flask:
        app = Flask(f"rp-{self.name}")
        app.secret_key = secrets.token_bytes(32)
        # Browsers share cookies between ports of one host: each RP and the provider need their own names.
        app.config["SESSION_COOKIE_NAME"] = f"rp_{self.name}"
        oauth = OAuth(app)
        idp = oauth.register(
            "idp", client_id=self.client.client_id, client_secret=self.client.client_secret,
            server_metadata_url=self.provider.issuer + "/.well-known/openid-configuration",
            client_kwargs={"scope": "openid", "code_challenge_method": "S256"})

        @app.get("/login")
        def login():
            return idp.authorize_redirect(url_for("callback", _external=True))

        @app.get("/callback")
        def callback():
            token = idp.authorize_access_token()  # checks state, PKCE, the ID token (JWKS, nonce)
            local = secrets.token_urlsafe(16)
            with self._lock:
                self.sessions[local] = dict(token["userinfo"])
            session["local"] = local
            return redirect(url_for("me"))

        @app.get("/me")
        def me():
            claims = self.sessions.get(session.get("local", ""))
            if claims is None:
                return jsonify(signed_in=False), 401
            return jsonify(signed_in=True, sub=claims["sub"], sid=claims.get("sid"))

        if self.kind == "kit":
            validator = ResourceServer(self.provider.issuer, audience=self.client.client_id).logout_validator()

            def ended(logout):
                with self._lock:
                    self.logouts.append(dict(logout.claims))
                self._end(sid=logout.sid, sub=logout.sub)

            app.add_url_rule("/backchannel-logout", methods=["POST"], view_func=logout_view(validator, ended))
        else:
            app.add_url_rule("/backchannel-logout", methods=["POST"], view_func=self._joserfc_logout)
        return app

    # ------------------------------------------------------------------ a receiver without the kit
    def _provider_keys(self) -> KeySet:
        meta = requests.get(self.provider.issuer + "/.well-known/openid-configuration", timeout=10).json()
        assert meta["issuer"] == self.provider.issuer
        return KeySet.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())

    def _joserfc_logout(self):
        """OIDC Back-Channel Logout 1.0 §2.6, step by step."""
        def refuse(reason: str):
            self.refused.append(reason)
            return jsonify(error="invalid_request"), 400

        token = request.form.get("logout_token")
        if not token:
            return refuse("missing")
        try:
            decoded = jwt.decode(token, self._provider_keys(), algorithms=["RS256", "ES256", "EdDSA"])
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": self.provider.issuer},
                aud={"essential": True, "value": self.client.client_id},
                iat={"essential": True}, jti={"essential": True}, leeway=30).validate(decoded.claims)
        except (JoseError, ValueError) as exc:
            return refuse(type(exc).__name__)
        claims = decoded.claims
        if decoded.header.get("typ") != "logout+jwt":
            return refuse("typ")
        if claims.get("events") != {BACKCHANNEL_LOGOUT_EVENT: {}}:
            return refuse("events")
        if "nonce" in claims:
            return refuse("nonce")
        if not claims.get("sid"):  # registered with backchannel_logout_session_required
            return refuse("sid")
        with self._lock:
            if claims["jti"] in self._seen_jti:
                return refuse("replayed")
            self._seen_jti.add(claims["jti"])
            self.logouts.append(dict(claims))
        self._end(sid=claims["sid"], sub=claims.get("sub"))
        return "", 200, {"Cache-Control": "no-store"}

    # ------------------------------------------------------------------ driving it
    def sign_in(self, browser: Browser, email: str) -> dict:
        """Start at this RP's /login; sign in at the provider if it asks; end on /me. Returns /me."""
        from tests.support import query, sign_in

        page = browser.follow(browser.get(self.url + "/login"), until=self.provider.issuer + "/signin")
        if page.status_code in (302, 303) and urlsplit(page.location).path == "/signin":
            signed = sign_in(browser, email, authreq=query(page.location)["authreq"])
            assert signed.status_code == 303, signed.get_data(as_text=True)
            page = browser.follow(browser.get(signed.location))
        else:
            page = browser.follow(page)
        assert page.url == self.url + "/me" and page.status_code == 200, (page.url, page.get_data(as_text=True))
        return page.get_json()

    def signed_in(self, browser: Browser) -> bool:
        return browser.get(self.url + "/me").status_code == 200

    def close(self) -> None:
        self.served.close()
