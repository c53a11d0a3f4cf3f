"""A complete sign-in as a browser and a relying party do it, scripted (used by compare.py):

    GET  /authorize (code flow, PKCE S256, state, nonce)  -> the provider's sign-in pages
    the forms, filled like a person would: email, password, then the authenticator app's code
    -> the redirect back to the client with a code; POST /token exchanges it (client_secret_basic,
       code_verifier) for an ID token, an access token and a refresh token

Forms are read from the HTML (hidden fields kept, the email, password and one-time code typed where
a form asks for them), as tests/interop/rp.mjs does, so the script follows the pages rather than
knowing their fields. A fresh cookie jar per sign-in: every sign-in is a new browser.

A TOTP code is accepted once per person and time step, so each load thread has its own people and
uses each person at most once per step (the current step's code, or the next one's, both inside the
provider's window).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pyotp

TOTP_STEP = 30


class SignInFailed(Exception):
    """A step answered something a working sign-in never does."""


class _Forms(HTMLParser):
    """The POST forms of a page: action and their input/button tags' attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self._current: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self._current = {"method": attrs.get("method", "get").lower(), "action": attrs.get("action", ""),
                             "inputs": [], "buttons": []}
            self.forms.append(self._current)
        elif self._current is not None and tag == "input":
            self._current["inputs"].append(attrs)
        elif self._current is not None and tag == "button":
            self._current["buttons"].append(attrs)

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def fill_form(html: str, person: dict, code_for) -> tuple[str, dict] | None:
    """(action, fields) of the first POST form on the page that asks only for what a person with an
    email, a password and an authenticator app can type; None if there is none."""
    parser = _Forms()
    parser.feed(html)
    for form in parser.forms:
        if form["method"] != "post":
            continue
        fields, typed, unknown = {}, False, False
        for tag in form["inputs"]:
            name, kind = tag.get("name"), tag.get("type", "text").lower()
            if not name or kind in ("submit", "button", "image", "reset", "checkbox", "radio"):
                continue
            if kind == "hidden":
                fields[name] = tag.get("value", "")
            elif kind == "password":
                fields[name], typed = person["password"], True
            elif kind == "email" or name in ("email", "username", "login"):
                fields[name], typed = person["email"], True
            elif name == "code" and "one-time-code" in tag.get("autocomplete", ""):
                fields[name], typed = code_for(person), True
            else:
                unknown = True
        named = [b for b in form["buttons"] if b.get("name")]
        if named:
            fields[named[0]["name"]] = named[0].get("value", "")
        if typed and not unknown:
            return form["action"], fields
    return None


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


class SignIn:
    """The sign-in flow for one load thread (or one counted run): its people, each used at most once
    per TOTP step. ``transport.request(method, path, headers, body)`` -> (status, headers, body)."""

    MAX_HOPS = 20

    def __init__(self, people: list[dict], client: dict, host: str, scope: str) -> None:
        self.people, self.client, self.host, self.scope = people, client, host, scope
        self.used: dict[str, set[int]] = {}  # email -> TOTP steps already used
        basic = f"{client['client_id']}:{client['client_secret']}".encode()
        self.basic = "Basic " + base64.b64encode(basic).decode()
        self._chosen_step: dict[str, int] = {}

    # -------------------------------------------------------------- who signs in next
    def next_person(self) -> dict:
        """A person with a TOTP step still unused: now's step or the next one."""
        now = int(time.time() // TOTP_STEP)
        for person in self.people:
            used = self.used.setdefault(person["email"], set())
            for step in (now, now + 1):
                if step not in used:
                    used.add(step)
                    self._chosen_step[person["email"]] = step
                    return person
        raise LookupError(f"all {len(self.people)} people of this thread used their TOTP codes for this step")

    def _code_for(self, person: dict) -> str:
        return pyotp.TOTP(person["totp_secret"]).generate_otp(self._chosen_step[person["email"]])

    # -------------------------------------------------------------- one sign-in
    def __call__(self, transport) -> str | None:
        """One complete sign-in and code exchange; None if it worked, else what went wrong."""
        person = self.next_person()
        try:
            self.run(transport, person)
        except SignInFailed as exc:
            return str(exc)
        return None

    def run(self, transport, person: dict) -> dict:
        """Sign the person in; the token response."""
        verifier, challenge = pkce_pair()
        state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        query = urlencode({"response_type": "code", "client_id": self.client["client_id"],
                           "redirect_uri": self.client["redirect_uri"], "scope": self.scope, "state": state,
                           "nonce": nonce, "code_challenge": challenge, "code_challenge_method": "S256"})
        jar: dict[str, str] = {}
        url, method, body, referer = f"/authorize?{query}", "GET", None, None
        redirect_uri = self.client["redirect_uri"]
        for _ in range(self.MAX_HOPS):
            headers = {"Host": self.host, "Accept": "text/html", "Accept-Language": "en"}
            if jar:
                headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
            if method == "POST":
                headers.update({"Content-Type": "application/x-www-form-urlencoded",
                                "Origin": f"http://{self.host}", "Referer": referer})
            status, found, data = transport.request(method, url, headers, body)
            _store_cookies(jar, found.get("set-cookie", []))
            if 300 <= status < 400:
                location = found.get("location", [""])[0]
                if location.startswith(redirect_uri):
                    return self._exchange(transport, location, state, verifier)
                parts = urlsplit(urljoin(f"http://{self.host}{url}", location))
                url, method, body = parts.path + (f"?{parts.query}" if parts.query else ""), "GET", None
                continue
            if status != 200:
                raise SignInFailed(f"{method} {url.split('?')[0]}: HTTP {status}: {data[:300]!r}")
            form = fill_form(data.decode("utf-8", "replace"), person, self._code_for)
            if form is None:
                raise SignInFailed(f"{url.split('?')[0]}: no form this script can fill: {data[:500]!r}")
            action, fields = form
            referer = f"http://{self.host}{url}"
            url = urlsplit(urljoin(referer, action)).path or url.split("?")[0]
            method, body = "POST", urlencode(fields)
        raise SignInFailed(f"more than {self.MAX_HOPS} steps")

    def _exchange(self, transport, location: str, state: str, verifier: str) -> dict:
        params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        if params.get("state") != state or "code" not in params:
            raise SignInFailed(f"bad redirect back to the client: {location[:300]}")
        body = urlencode({"grant_type": "authorization_code", "code": params["code"],
                          "redirect_uri": self.client["redirect_uri"], "code_verifier": verifier})
        status, _, data = transport.request("POST", "/token", {
            "Host": self.host, "Authorization": self.basic, "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded"}, body)
        if status != 200:
            raise SignInFailed(f"code exchange: HTTP {status}: {data[:300]!r}")
        tokens = json.loads(data)
        if not all(tokens.get(k) for k in ("id_token", "access_token", "refresh_token")):
            raise SignInFailed(f"code exchange answered {sorted(tokens)}")
        return tokens


def _store_cookies(jar: dict, lines: list[str]) -> None:
    for line in lines:
        pair, *attrs = line.split(";")
        name, _, value = pair.partition("=")
        name, value = name.strip(), value.strip()
        gone = any(a.strip().lower() in ("max-age=0",) for a in attrs)
        if gone or not value:
            jar.pop(name, None)
        else:
            jar[name] = value


class SignInFlow:
    """The Python load client's flow: each thread signs in its own people (see SignIn)."""

    def __init__(self, people_per_thread: list[list[dict]], client: dict, host: str, scope: str) -> None:
        self.people_per_thread, self.client, self.host, self.scope = people_per_thread, client, host, scope

    def runner(self, index: int):
        return SignIn(self.people_per_thread[index], self.client, self.host, self.scope)
