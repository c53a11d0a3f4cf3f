"""Registered clients: the rules for creating and changing them, and the per-process cache
the token endpoint reads.

The cache keeps a frozen copy of each client per process, so the token endpoint authenticates
a client without a database query or a store round trip. Every change made through this
module is announced on the store's ``clients:changed`` channel after it commits; every process
watches that channel and drops the client named, so a changed, disabled or deleted client
takes effect in every process as soon as the notice arrives (well under a millisecond on one
host). While a process's watch is not connected (starting up, or Redis unreachable) its cache
is bypassed and every lookup reads the database. With the embedded store (one process), an
``idp client`` command run in another process reaches the server through the database at the
next cache expiry (``[tokens] client_cache_seconds``); newly created clients are never
negatively cached, so they work at once.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import logging
import os
import re
import secrets as _secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select

from .. import audit, inputs, outbound, protocol, secrets
from ..clock import utcnow
from ..extensions import after_commit, as_it_commits, client_cache, db, hold_row, store
from ..i18n import Text
from ..i18n import lazy_gettext as _l
from ..store import StoreUnavailable
from .models import Client, ClientLogo

log = logging.getLogger(__name__)
CHANGES = "clients:changed"
EVERY_CLIENT = "*"
#: every client_id this provider issues or accepts (``$`` would let a trailing newline through)
CLIENT_ID = re.compile(r"[A-Za-z0-9._~-]{3,64}")


def is_client_id(value) -> bool:
    """Whether a client_id from outside could name a client at all. Anything else names none and
    is never sent to the database (PostgreSQL refuses a NUL in text with an error)."""
    return isinstance(value, str) and CLIENT_ID.fullmatch(value) is not None


class RegistrationEnded(Exception):
    """An RFC 7592 change of a client disabled since its registration access token was checked:
    answered as that token is for a disabled client."""


class ClientMetadataError(ValueError):
    """Invalid client metadata; ``error`` is the RFC 7591 error code. ``description`` is a lazy
    message (idp.i18n): Welsh on a Welsh page of the board console, English at /register."""

    def __init__(self, description: Text, error: str = "invalid_client_metadata") -> None:
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass(frozen=True)
class RegisteredClient:
    """An immutable snapshot of a client row, implementing Authlib's ClientMixin."""

    client_id: str
    client_name: str
    secret_hash: str | None
    token_endpoint_auth_method: str
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    grant_types: frozenset[str]
    response_types: frozenset[str]
    scopes: frozenset[str]
    allowed_profiles: frozenset[str] | None
    jwks: dict | None
    jwks_uri: str | None
    id_token_signed_response_alg: str | None
    backchannel_logout_uri: str | None
    backchannel_logout_session_required: bool
    require_pushed_authorization_requests: bool = False
    dpop_bound_access_tokens: bool = False
    #: the secret before a rotation, and until when (epoch seconds) it is still accepted
    previous_secret_hash: str | None = None
    previous_secret_until: float | None = None
    pepper: str = field(repr=False, default="")

    @classmethod
    def from_row(cls, row: Client, pepper: str) -> RegisteredClient:
        return cls(
            client_id=row.client_id, client_name=row.client_name, secret_hash=row.secret_hash,
            token_endpoint_auth_method=row.token_endpoint_auth_method,
            redirect_uris=tuple(row.redirect_uris or ()),
            post_logout_redirect_uris=tuple(row.post_logout_redirect_uris or ()),
            grant_types=frozenset(row.grant_types or ()), response_types=frozenset(row.response_types or ()),
            scopes=frozenset((row.scope or "").split()),
            allowed_profiles=None if row.allowed_profiles is None else frozenset(row.allowed_profiles),
            jwks=row.jwks, jwks_uri=row.jwks_uri,
            id_token_signed_response_alg=row.id_token_signed_response_alg,
            backchannel_logout_uri=row.backchannel_logout_uri,
            backchannel_logout_session_required=row.backchannel_logout_session_required,
            require_pushed_authorization_requests=bool(row.require_pushed_authorization_requests),
            dpop_bound_access_tokens=bool(row.dpop_bound_access_tokens),
            previous_secret_hash=row.previous_secret_hash,
            previous_secret_until=row.previous_secret_expires_at.timestamp()
            if row.previous_secret_hash and row.previous_secret_expires_at else None,
            pepper=pepper,
        )

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    @property
    def client_metadata(self) -> dict:
        return {"post_logout_redirect_uris": list(self.post_logout_redirect_uris)}

    # ---- Authlib ClientMixin ----
    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # OpenID Connect requires redirect_uri on every request: no default.
        return None

    def get_allowed_scope(self, scope: str) -> str:
        """The requested scopes this client may have; unknown ones are ignored (OIDC Core 3.1.2.1)."""
        if not scope:
            return ""
        wanted = scope.split()
        return " ".join(s for s in dict.fromkeys(wanted) if s in self.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris  # exact string match, nothing else

    def check_client_secret(self, client_secret: str) -> bool:
        """The current secret, or the one before it while a rotation's grace period lasts (the
        clock is read here, so the grace ends on time whatever the cache holds)."""
        if not client_secret:
            return False
        presented = secrets.fast_hash(client_secret, self.pepper)
        # a client without a secret costs what a wrong secret costs (``check_secret_of_no_client``)
        current = secrets.same(presented, self.secret_hash or NO_SECRET_HASH)
        previous = bool(self.previous_secret_hash) and secrets.same(presented, self.previous_secret_hash)
        return current or (previous and self.previous_secret_until is not None
                           and time.time() < self.previous_secret_until)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """A client registered with a secret may send it either way (Basic or in the body), as
        certified providers accept; a private_key_jwt or public client never authenticates with a
        secret, and a secret client never with anything else."""
        if method == "client_assertion_jwt":
            method = "private_key_jwt"
        if self.token_endpoint_auth_method in protocol.SECRET_METHODS:
            return method in protocol.SECRET_METHODS
        return method == self.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type in self.response_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


#: what no secret hashes to (``secrets.fast_hash`` is hex)
NO_SECRET_HASH = "-" * 64


def check_secret_of_no_client(client_secret: str, pepper: str) -> None:
    """A secret sent with a client_id that names no client is checked as a wrong one is (one
    keyed hash, one comparison), so the time an answer takes does not tell which client_ids exist."""
    secrets.same(secrets.fast_hash(client_secret, pepper), NO_SECRET_HASH)


class ClientCache:
    """Per-process cache of RegisteredClient, kept exact by the ``clients:changed`` notices."""

    def __init__(self, store, max_age: int, pepper: str, max_entries: int = 10_000) -> None:
        self.store = store
        self.max_age = max_age
        self.pepper = pepper
        self.max_entries = max_entries
        self._entries: dict[str, tuple[RegisteredClient, float]] = {}
        # bumped by every notice and reset: a lookup that read the database before a notice
        # arrived must not put what it read into the cache afterwards
        self._generation = 0
        self._watch = None
        self._watch_pid = None
        self._lock = threading.RLock()  # MemoryStore.watch calls _reset while _start_watch holds it

    def get(self, client_id: str) -> RegisteredClient | None:
        if not is_client_id(client_id):
            return None
        if self._watch_pid != os.getpid():
            self._start_watch()  # lazily, in the process that serves (gunicorn forks workers)
        client = self.cached(client_id)
        if client is not None:
            return client
        live = self._watch.live
        now = time.time()
        generation = self._generation
        row = db.session.get(Client, client_id)
        if row is None or row.disabled:
            return None  # never cache a miss: a client created elsewhere must work at once
        client = RegisteredClient.from_row(row, self.pepper)
        with self._lock:
            if live and self._watch.live and generation == self._generation:
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()
                self._entries[client_id] = (client, now)
        return client

    def cached(self, client_id: str) -> RegisteredClient | None:
        """The client as this process holds it, when it holds a copy the change notices keep exact;
        else None. Never reads the database (``get`` does)."""
        watch = self._watch
        if watch is None or self._watch_pid != os.getpid() or not watch.live:
            return None
        entry = self._entries.get(client_id)
        if entry is None or time.time() - entry[1] >= self.max_age:
            return None
        return entry[0]

    def _start_watch(self) -> None:
        with self._lock:
            if self._watch_pid == os.getpid():
                return
            self._entries.clear()
            self._watch = self.store.watch(CHANGES, self.forget, self._reset)
            self._watch_pid = os.getpid()

    def forget(self, client_id: str) -> None:
        """Drop one client (``*``: all of them); a lookup reading the database meanwhile keeps
        what it read out of the cache."""
        with self._lock:
            self._generation += 1
            if client_id == EVERY_CLIENT:
                self._entries.clear()
            else:
                self._entries.pop(client_id, None)

    def _reset(self) -> None:
        self.forget(EVERY_CLIENT)


def _changing(client_id: str) -> None:
    """Before the commit of a change to an existing client (update, secret rotation, disable,
    delete): every process must drop its cached copy, so the notice is published as the change
    commits, before it does (``extensions.as_it_commits``): a store that cannot take it fails the
    change (a 503, nothing changed: try again). A failure used to be logged after the commit on
    the view that every other process's watch was down too and its cache bypassed; but a link that
    dropped in this process alone left every other process trusting its copy, and a disabled
    client working there for up to ``client_cache_seconds`` (found by an outside probe).

    Published before the commit, the notice may reach another process while the old row is still
    what it reads: a lookup there in that moment caches the old row again. So it is published
    again once the change has committed (``extensions.after_commit``), and that one can only be
    logged if it fails: a store lost in the moment between the two leaves such a copy until it
    expires (``client_cache_seconds``; docs/security.md)."""
    as_it_commits(functools.partial(store.publish, CHANGES, client_id))
    after_commit(functools.partial(_changed, client_id))


def _changed(client_id: str) -> None:
    """Once a change of one client has committed: this process's cache forgets it at once, every
    other process's when the notice arrives (sent again for a change to an existing client:
    ``_changing``). If the store cannot take it now, the change stands: logged."""
    client_cache().forget(client_id)
    try:
        store.publish(CHANGES, client_id)
    except StoreUnavailable:
        log.warning("client change notice not sent after the commit (store unavailable); other processes "
                    "may keep a copy read as it committed until it expires", extra={"client_id": client_id})


# ------------------------------------------------------------------ validation
#: what a URI is made of (RFC 3986 §2): printable ASCII, no spaces. A line break in a registered URI
#: would reach a Location header (and fail there, after a sign-out or a sign-in has happened)
_URI_CHARACTERS = re.compile(r"[\x21-\x7e]+")
#: a scope name (RFC 6749 §3.3); PostgreSQL would refuse a NUL in the stored scope with an error
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


#: one label of a host name (RFC 1123 §2.1; underscores, which some names in use carry, allowed)
_HOST_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def _is_host(host: str) -> bool:
    """An IP address, or a name every label of which is one (a final dot allowed): "a..example"
    or a label of 64 characters is no server's name, and port 0 no server's port."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    return len(host) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels)


def _check_uri(uri: str, what: str, error: str = "invalid_client_metadata") -> str:
    if not isinstance(uri, str) or not uri or len(uri) > 2000:
        raise ClientMetadataError(_l("%(field)s must be a URI of at most 2000 characters", field=what), error)
    if not _URI_CHARACTERS.fullmatch(uri):
        raise ClientMetadataError(_l("%(field)s must be a URI, of printable ASCII characters without spaces or "
                                     "line breaks: %(uri)s", field=what, uri=inputs.echo(uri)), error)
    try:  # a malformed host ("[::1", "[x]") or port shows only when it is read
        parts = urlsplit(uri)
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, 0
    if port == 0 or (host is not None and not _is_host(host)):
        raise ClientMetadataError(_l("%(field)s is not a valid URI: %(uri)s", field=what, uri=inputs.echo(uri)),
                                  error)
    if parts.fragment or "#" in uri:
        raise ClientMetadataError(_l("%(field)s must not contain a fragment: %(uri)s", field=what, uri=uri), error)
    loopback = host in {"localhost", "127.0.0.1", "::1"}
    if parts.scheme == "https" and host:
        return uri
    if parts.scheme == "http" and loopback:
        return uri
    raise ClientMetadataError(_l("%(field)s must use https (http only for localhost/loopback): %(uri)s",
                                 field=what, uri=uri), error)


def _check_fetched_uri(uri: str, what: str) -> str:
    """A URI the provider itself requests (jwks_uri, backchannel_logout_uri), unlike a redirect URI
    the browser follows: the outbound guard's rules (https, no local or private hosts) up front."""
    _check_uri(uri, what)
    problem = outbound.for_app(current_app).registration_problem(uri)
    if problem:
        raise ClientMetadataError(_l("%(field)s %(problem)s: %(uri)s", field=what, problem=problem, uri=uri))
    return uri


def validate_metadata(meta: dict) -> dict:
    """Check and normalise client metadata (RFC 7591 §2, OIDC Registration §2).

    Returns the normalised dict; raises ClientMetadataError naming the problem.
    """
    out: dict = {}
    name = meta.get("client_name", "")
    if not isinstance(name, str) or not name.strip() or len(name) > 200 or inputs.has_control_characters(name):
        raise ClientMetadataError(_l("client_name is required (at most 200 characters, no control characters)"))
    out["client_name"] = name.strip()

    method = meta.get("token_endpoint_auth_method", protocol.CLIENT_SECRET_BASIC)
    if method not in protocol.AUTH_METHODS:
        raise ClientMetadataError(_l("token_endpoint_auth_method must be one of %(values)s",
                                     values=", ".join(protocol.AUTH_METHODS)))
    out["token_endpoint_auth_method"] = method

    grant_types = meta.get("grant_types") or list(protocol.DEFAULT_GRANT_TYPES)
    if not isinstance(grant_types, list) or any(g not in protocol.GRANT_TYPES for g in grant_types):
        raise ClientMetadataError(_l("grant_types must be a list drawn from %(values)s",
                                     values=", ".join(protocol.GRANT_TYPES)))
    out["grant_types"] = list(dict.fromkeys(grant_types))

    default_rt = ["code"] if "authorization_code" in grant_types else []
    response_types = meta.get("response_types", default_rt)
    if not isinstance(response_types, list) or any(r != "code" for r in response_types):
        raise ClientMetadataError(_l("response_types may only contain \"code\""))
    if ("code" in response_types) != ("authorization_code" in grant_types):
        raise ClientMetadataError(_l("response_types [\"code\"] goes with grant_types authorization_code"))
    out["response_types"] = list(response_types)

    if method == "none" and "client_credentials" in grant_types:
        raise ClientMetadataError(_l("a public client (auth method none) cannot use client_credentials"))

    redirect_uris = meta.get("redirect_uris", [])
    if not isinstance(redirect_uris, list):
        raise ClientMetadataError(_l("redirect_uris must be a list"), "invalid_redirect_uri")
    out["redirect_uris"] = [_check_uri(u, "redirect_uri", "invalid_redirect_uri") for u in redirect_uris]
    if "authorization_code" in grant_types and not out["redirect_uris"]:
        raise ClientMetadataError(_l("authorization_code needs at least one redirect_uri"), "invalid_redirect_uri")

    post_logout = meta.get("post_logout_redirect_uris", [])
    if not isinstance(post_logout, list):
        raise ClientMetadataError(_l("post_logout_redirect_uris must be a list"))
    out["post_logout_redirect_uris"] = [_check_uri(u, "post_logout_redirect_uri") for u in post_logout]

    scope = meta.get("scope", protocol.DEFAULT_CLIENT_SCOPE)
    if not isinstance(scope, str):
        raise ClientMetadataError(_l("scope must be a space-separated string"))
    if not all(_SCOPE_TOKEN.fullmatch(token) for token in scope.split()):
        raise ClientMetadataError(_l("scope must be scope names separated by spaces, each of printable ASCII "
                                     "characters other than quotes and backslashes"))
    out["scope"] = " ".join(dict.fromkeys(scope.split()))

    jwks, jwks_uri = meta.get("jwks"), meta.get("jwks_uri")
    if jwks is not None and jwks_uri is not None:
        raise ClientMetadataError(_l("give jwks or jwks_uri, not both"))
    if jwks is not None:
        from joserfc.errors import JoseError
        from joserfc.jwk import KeySet

        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
            raise ClientMetadataError(_l("jwks must be a JWK Set with at least one key"))
        if any(not isinstance(k, dict) or any(p in k for p in ("d", "p", "q", "k")) for k in jwks["keys"]):
            raise ClientMetadataError(_l("jwks must contain public keys only"))
        try:
            KeySet.import_key_set(jwks)
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise ClientMetadataError(_l("jwks is not a valid JWK Set (%(detail)s)", detail=str(exc))) from None
    if jwks_uri is not None:
        _check_fetched_uri(jwks_uri, "jwks_uri")
    if method == "private_key_jwt" and jwks is None and jwks_uri is None:
        raise ClientMetadataError(_l("private_key_jwt needs jwks or jwks_uri"))
    out["jwks"], out["jwks_uri"] = jwks, jwks_uri

    alg = meta.get("id_token_signed_response_alg")
    if alg is not None and alg not in protocol.SIGNING_ALGORITHMS:
        raise ClientMetadataError(_l("id_token_signed_response_alg must be one of %(values)s",
                                     values=", ".join(protocol.SIGNING_ALGORITHMS)))
    out["id_token_signed_response_alg"] = alg

    bcl = meta.get("backchannel_logout_uri")
    out["backchannel_logout_uri"] = None if bcl is None else _check_fetched_uri(bcl, "backchannel_logout_uri")
    bcl_sid = meta.get("backchannel_logout_session_required", False)
    if not isinstance(bcl_sid, bool):
        raise ClientMetadataError(_l("backchannel_logout_session_required must be true or false"))
    out["backchannel_logout_session_required"] = bcl_sid
    par = meta.get("require_pushed_authorization_requests", False)
    if not isinstance(par, bool):
        raise ClientMetadataError(_l("require_pushed_authorization_requests must be true or false"))
    out["require_pushed_authorization_requests"] = par
    dpop_bound = meta.get("dpop_bound_access_tokens", False)
    if not isinstance(dpop_bound, bool):
        raise ClientMetadataError(_l("dpop_bound_access_tokens must be true or false"))
    out["dpop_bound_access_tokens"] = dpop_bound

    profiles = meta.get("allowed_profiles")
    if profiles is not None:
        from .. import policy

        catalogue = policy.current().profiles
        if not isinstance(profiles, list) or any(not isinstance(p, str) or p not in catalogue for p in profiles):
            raise ClientMetadataError(_l("allowed_profiles must be a list drawn from %(values)s",
                                         values=", ".join(catalogue)))
        profiles = sorted(set(profiles))
    out["allowed_profiles"] = profiles

    for key, limit in (("description", 1000), ("description_cy", 1000)):
        text = meta.get(key, "")
        if not isinstance(text, str) or len(text) > limit or inputs.has_control_characters(text):
            raise ClientMetadataError(_l("%(field)s must be text of at most %(limit)d characters, without control "
                                         "characters", field=key, limit=limit))
        out[key] = text.strip()
    launch = meta.get("initiate_login_uri")
    out["initiate_login_uri"] = None if launch in (None, "") else _check_uri(launch, "initiate_login_uri")
    return out


# ------------------------------------------------------------------ logos
#: what a logo may be, told apart by the file's first bytes (never by its name or declared type)
MAX_LOGO_BYTES = 100 * 1024


def logo_type(data) -> str:
    """The media type of an uploaded logo: PNG or WebP of at most 100 KB, or ClientMetadataError."""
    if not isinstance(data, bytes) or not data:
        raise ClientMetadataError(_l("the logo must be a PNG or WebP file"), "invalid_logo")
    if len(data) > MAX_LOGO_BYTES:
        raise ClientMetadataError(_l("the logo must be %(kb)d KB or smaller", kb=MAX_LOGO_BYTES // 1024), "invalid_logo")
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise ClientMetadataError(_l("the logo must be a PNG or WebP file"), "invalid_logo")


def _put_logo(client_id: str, data: bytes, media_type: str) -> None:
    row = db.session.get(ClientLogo, client_id)
    if row is None:
        row = ClientLogo(client_id=client_id)
        db.session.add(row)
    row.media_type, row.data, row.digest = media_type, data, hashlib.sha256(data).hexdigest()[:16]


def logo_of(client_id: str) -> ClientLogo | None:
    return db.session.get(ClientLogo, client_id) if is_client_id(client_id) else None


# ------------------------------------------------------------------ changes
@dataclass(frozen=True)
class Created:
    client: Client
    client_secret: str | None


MIN_SECRET_LENGTH = 32


def _new_secret(method: str, given: str | None) -> str | None:
    if method not in protocol.SECRET_METHODS:
        return None
    if given is not None and (not isinstance(given, str) or len(given) < MIN_SECRET_LENGTH):
        raise ClientMetadataError(_l("a client secret must be at least %(n)d characters", n=MIN_SECRET_LENGTH))
    return given or secrets.token(32)


def _refuse_admin_api(clean: dict) -> None:
    if protocol.ADMIN_API_SCOPE in clean["scope"].split():
        raise ClientMetadataError(_l("scope %(scope)s (the admin API) can only be given to a client by board staff",
                                     scope=protocol.ADMIN_API_SCOPE))


def _refuse_loosening(row: Client, clean: dict) -> None:
    """Through RFC 7592 a client may tighten its registration but never loosen it: what board staff
    narrowed or required (or the client itself chose) holds. Refused, not quietly kept (RFC 7591 §2
    allows either): a PUT that succeeded with other values than it sent would leave the client
    believing it had them. Keycloak's registration policies likewise refuse such an update.

    Loosening is: a scope or a grant type it does not hold (its response_types follow its grant
    types), wider allowed_profiles (or none), PAR or DPoP turned off, and a token endpoint auth
    method that proves less of it (``protocol.AUTH_METHOD_STRENGTH``: a shared secret after a key).
    Its names, descriptions, logo, redirect and logout URIs, keys and ID token algorithm are its own
    to change."""
    wider = [s for s in clean["scope"].split() if s not in (row.scope or "").split()]
    if wider:
        raise ClientMetadataError(_l("scope %(scope)s is not registered for this client: only board staff can add a "
                                     "scope to it", scope=wider[0]))
    wider = [g for g in clean["grant_types"] if g not in (row.grant_types or ())]
    if wider:
        raise ClientMetadataError(_l("grant type %(grant)s is not registered for this client: only board staff can "
                                     "add a grant type to it", grant=wider[0]))
    if row.allowed_profiles is not None and (clean["allowed_profiles"] is None
                                             or not set(clean["allowed_profiles"]) <= set(row.allowed_profiles)):
        raise ClientMetadataError(_l("allowed_profiles can only be narrowed: this client is limited to %(profiles)s",
                                     profiles=", ".join(row.allowed_profiles) or "[]"))
    for key in ("require_pushed_authorization_requests", "dpop_bound_access_tokens"):
        if getattr(row, key) and not clean[key]:
            raise ClientMetadataError(_l("%(field)s is required of this client: only board staff can turn it off",
                                         field=key))
    held, wanted = row.token_endpoint_auth_method, clean["token_endpoint_auth_method"]
    if protocol.AUTH_METHOD_STRENGTH[wanted] < protocol.AUTH_METHOD_STRENGTH[held]:
        raise ClientMetadataError(_l("token_endpoint_auth_method %(held)s is required of this client: only board "
                                     "staff can change it to %(method)s", held=held, method=wanted))


def create(meta: dict, *, actor: str | None = "cli", pepper: str, client_id: str | None = None,
           client_secret: str | None = None, registration_token: str | None = None,
           self_registered: bool = False, logo: bytes | None = None) -> Created:
    """Register a client; the secret (confidential clients) is returned once and stored hashed.
    A ``self_registered`` client (RFC 7591, with an initial access token) cannot have the admin API."""
    clean = validate_metadata(meta)
    media_type = logo_type(logo) if logo is not None else None
    if self_registered:
        _refuse_admin_api(clean)
    if client_id is not None:
        if not is_client_id(client_id):
            raise ClientMetadataError(_l("client_id: 3-64 letters, digits or . _ ~ -"))
        if db.session.get(Client, client_id) is not None:
            raise ClientMetadataError(_l("client_id %(value)s is already registered", value=repr(inputs.echo(client_id))))
    secret = _new_secret(clean["token_endpoint_auth_method"], client_secret)
    # hex: a generated id never starts with "-" (a command line would take it for an option)
    row = Client(client_id=client_id or _secrets.token_hex(16),
                 secret_hash=secrets.fast_hash(secret, pepper) if secret else None,
                 registration_token_hash=secrets.fast_hash(registration_token, pepper) if registration_token else None,
                 **clean)
    db.session.add(row)
    if media_type:
        db.session.flush()
        _put_logo(row.client_id, logo, media_type)
    audit.record("client.registered", actor=actor, subject=row.client_id, client_name=row.client_name,
                 auth_method=row.token_endpoint_auth_method, **({"logo": media_type} if media_type else {}))
    # Told after the commit only: no process holds a copy of a client that did not exist (misses
    # are never cached), so a notice lost here leaves nothing stale.
    after_commit(functools.partial(_changed, row.client_id))
    db.session.commit()  # (expire_on_commit is off: no reload)
    return Created(row, secret)


def update(client_id: str, meta: dict, *, actor: str | None, pepper: str, self_registered: bool = False,
           logo: bytes | None = None, remove_logo: bool = False) -> Created:
    """Replace a client's metadata (RFC 7592 PUT semantics). A change of auth method to a secret
    method issues a new secret; a change away from one removes it. Through RFC 7592
    (``self_registered``) a client keeps the admin API if board staff gave it, but cannot add it,
    and can loosen nothing else it holds (``_refuse_loosening``).
    ``logo`` replaces the logo, ``remove_logo`` removes it; otherwise it stays. Checked and written
    on the row as committed, held until the commit (``_held``)."""
    clean = validate_metadata(meta)  # before the row is held: a jwks_uri's host is looked up
    media_type = logo_type(logo) if logo is not None else None
    row = _held(client_id)
    try:
        if row is None:
            raise ClientMetadataError(_l("no client %(value)s", value=repr(inputs.echo(client_id))),
                                      "invalid_client_id")
        if self_registered:
            if row.disabled:  # by board staff, since the endpoint checked the registration token
                raise RegistrationEnded(client_id)
            if protocol.ADMIN_API_SCOPE not in (row.scope or "").split():
                _refuse_admin_api(clean)
            _refuse_loosening(row, clean)
    except (ClientMetadataError, RegistrationEnded):
        db.session.rollback()  # the row is not held while the refusal is answered
        raise
    before = describe(row)
    secret = None
    method = clean["token_endpoint_auth_method"]
    if method in protocol.SECRET_METHODS and not row.secret_hash:
        secret = _new_secret(method, None)
        row.secret_hash = secrets.fast_hash(secret, pepper)
    elif method not in protocol.SECRET_METHODS:
        row.secret_hash = None
        row.previous_secret_hash = row.previous_secret_expires_at = None
    for key, value in clean.items():
        setattr(row, key, value)
    after = describe(row)
    changed = {k: after[k] for k in after if after[k] != before[k]}
    if media_type:
        _put_logo(client_id, logo, media_type)
        changed["logo"] = media_type
    elif remove_logo and logo_of(client_id) is not None:
        db.session.delete(logo_of(client_id))
        changed["logo"] = None
    if changed:
        audit.record("client.updated", actor=actor, subject=client_id, changed=sorted(changed))
    _changing(client_id)
    db.session.commit()
    return Created(row, secret)


#: the longest a secret may go on working after it was replaced
MAX_GRACE_SECONDS = 30 * 86400


def rotate_secret(client_id: str, *, actor: str | None, pepper: str, client_secret: str | None = None,
                  grace_seconds: int = 0) -> str:
    """A new secret (returned once). The old one stops at once, or keeps working for
    ``grace_seconds`` so the service can change over without an outage; a secret from before an
    earlier rotation stops now either way (only one old secret is ever kept). Of two rotations at
    once the second waits for the first (``_held``) and replaces the secret the first made: a
    secret stopped at once is never brought back as the one before."""
    if not isinstance(grace_seconds, int) or isinstance(grace_seconds, bool) \
            or not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
        raise ClientMetadataError(_l("the grace period must be 0 to %(most)d seconds (30 days)", most=MAX_GRACE_SECONDS),
                                  "invalid_grace_period")
    row = _held(client_id)
    try:
        if row is None:
            raise ClientMetadataError(_l("no client %(value)s", value=repr(inputs.echo(client_id))),
                                      "invalid_client_id")
        secret = _new_secret(row.token_endpoint_auth_method, client_secret)
        if secret is None:
            raise ClientMetadataError(_l("this client authenticates without a secret"))
    except ClientMetadataError:
        db.session.rollback()
        raise
    if grace_seconds and row.secret_hash:
        row.previous_secret_hash = row.secret_hash
        row.previous_secret_expires_at = utcnow() + timedelta(seconds=grace_seconds)
    else:
        row.previous_secret_hash = row.previous_secret_expires_at = None
    row.secret_hash = secrets.fast_hash(secret, pepper)
    audit.record("client.secret_rotated", actor=actor, subject=client_id, grace_seconds=grace_seconds)
    _changing(client_id)
    db.session.commit()
    return secret


def set_disabled(client_id: str, disabled: bool, *, actor: str | None) -> Client:
    row = get(client_id)
    if row is None:
        raise ClientMetadataError(_l("no client %(value)s", value=repr(inputs.echo(client_id))), "invalid_client_id")
    row.disabled = disabled
    audit.record("client.disabled" if disabled else "client.enabled", actor=actor, subject=client_id)
    _changing(client_id)
    db.session.commit()
    return row


def metadata_of(row: Client) -> dict:
    """The registrable metadata of a client (the input shape of create/update)."""
    data = describe(row)
    for key in ("client_id", "disabled"):
        data.pop(key)
    if row.id_token_signed_response_alg is None:
        data.pop("id_token_signed_response_alg")
    return {k: v for k, v in data.items() if v is not None}


def get(client_id: str) -> Client | None:
    return db.session.get(Client, client_id) if is_client_id(client_id) else None


def _held(client_id: str) -> Client | None:
    """The client's row as committed, held until the transaction ends (``hold_row``): of two
    changes at once the second waits here, then reads what the first left, so what it checks and
    what it keeps is what is committed (not a copy read earlier in the request, which
    ``populate_existing`` replaces)."""
    if not is_client_id(client_id):
        return None
    hold_row(Client.client_id, client_id)
    return db.session.get(Client, client_id, populate_existing=True)


def all_clients() -> list[Client]:
    return list(db.session.scalars(select(Client).order_by(Client.created_at)))


def delete(client_id: str, *, actor: str | None = "cli") -> bool:
    row = get(client_id)
    if row is None:
        return False
    db.session.delete(row)
    audit.record("client.deleted", actor=actor, subject=client_id, client_name=row.client_name)
    _changing(client_id)
    db.session.commit()
    return True


def describe(row: Client) -> dict:
    """The public view of a client (RFC 7591 response shape, never the secret)."""
    return {
        "client_id": row.client_id, "client_name": row.client_name,
        "token_endpoint_auth_method": row.token_endpoint_auth_method,
        "redirect_uris": row.redirect_uris, "post_logout_redirect_uris": row.post_logout_redirect_uris,
        "grant_types": row.grant_types, "response_types": row.response_types, "scope": row.scope,
        "allowed_profiles": row.allowed_profiles, "jwks": row.jwks, "jwks_uri": row.jwks_uri,
        "id_token_signed_response_alg": row.id_token_signed_response_alg or protocol.DEFAULT_ID_TOKEN_ALGORITHM,
        "backchannel_logout_uri": row.backchannel_logout_uri,
        "backchannel_logout_session_required": row.backchannel_logout_session_required,
        "require_pushed_authorization_requests": bool(row.require_pushed_authorization_requests),
        "dpop_bound_access_tokens": bool(row.dpop_bound_access_tokens),
        "description": row.description, "description_cy": row.description_cy,
        "initiate_login_uri": row.initiate_login_uri,
        "disabled": row.disabled,
    }


def services_for(held_profiles: frozenset[str]) -> list[Client]:
    """The client services a person can start from All services: enabled, with a launch address,
    and either open to everyone (no allowed_profiles) or sharing a profile with the person (a
    profile they hold, or one it implies)."""
    from .. import policy

    held = policy.current().with_implied(held_profiles)
    found = []
    for row in db.session.scalars(select(Client).where(Client.disabled.is_(False),
                                                       Client.initiate_login_uri.is_not(None))
                                  .order_by(Client.client_name)):
        if row.allowed_profiles is None or held & set(row.allowed_profiles):
            found.append(row)
    return found
