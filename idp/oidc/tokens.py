"""Tokens: JWT access tokens (RFC 9068), ID tokens, refresh-token families, revocation.

Access tokens are self-contained JWTs so resource servers validate them
locally. Revocation that must reach them before they expire (a reused code or
refresh token, a revoked token, a disabled account) is recorded in the shared
store under short-lived keys that userinfo and introspection check in one
round trip:

    revoked:jti:<jti>     one token (RFC 7009)
    revoked:grant:<id>    every token of one authorization (code or refresh-token reuse)
    revoked:sub:<sub>     every token of a person issued up to that moment (value = time)

An access token's ``jti`` is ``<grant_id>.<random>`` for tokens issued to a
person, so the grant it belongs to is known without a lookup.
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from flask import current_app
from joserfc.errors import SecurityWarning
from joserfc.jwk import JWKRegistry
from sqlalchemy import bindparam, func, select, update

from .. import audit, inputs, policy, protocol, secrets
from ..accounts import claims_copies
from ..accounts.models import ACTIVE, Account, SsoSession, full_name
from ..centres import grants
from ..centres.models import AccessGrant, Centre
from ..clock import utcnow
from ..extensions import as_it_commits, client_cache, db, keys, pepper, settings, store
from ..records import Record, store_forgot, store_forgot_key
from . import claims as claims_module
from .models import RefreshToken

#: revocations that must reach self-contained access tokens before they expire (checked by
#: userinfo and introspection in one round trip)
REVOKED_TOKENS = Record("revoked:jti", ttl=600)   # one token (RFC 7009)
REVOKED_GRANTS = Record("revoked:grant", ttl=600)  # every token of one authorization (code or refresh reuse)
#: every token of a person issued up to the stored time (``<time>``), or every one but those of the
#: session the change was made in (``<time>|<sid>``: a password or address changed in it)
REVOKED_PEOPLE = Record("revoked:sub", ttl=600)
#: the access tokens of one sign-in's grants without offline_access, issued up to its end
#: (``<time>|<grant>,<grant>``: the offline grants among those with refresh tokens, whose own
#: access tokens may be narrowed below offline_access by a refresh). A grant with no refresh token
#: (its client has not that grant type) is known by its session alone, and its tokens' scope is
#: the grant's
REVOKED_SESSIONS = Record("revoked:sid", ttl=600)

# joserfc warns on every EdDSA signature that RFC 9864 prefers the fully specified "Ed25519".
# The provider publishes "EdDSA" (what relying parties recognise today); the warning is noise here.
warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)



@dataclass
class Principal:
    """The person a token is for, with how they authenticated: Authlib's "user". ``account`` is
    the ORM Account after a sign-in, the columns of one row after a refresh."""

    account: Account | ClaimsSubject
    auth_time: int
    amr: list[str]
    acr: str
    sid: str | None
    #: the authorization this token belongs to; set when a code or refresh token is redeemed
    grant_id: str = ""
    nonce: str | None = None
    extra: dict = field(default_factory=dict)
    _profiles: frozenset[str] | None = field(default=None, repr=False)

    def get_user_id(self) -> str:
        return self.account.sub

    def profiles(self) -> frozenset[str]:
        """The profiles the person holds, read once per token response (the access token and the
        ID token of one response both carry them)."""
        if self._profiles is None:
            self._profiles = grants.profiles_of(self.account)
        return self._profiles


def _settings():
    return settings()


def _keys():
    return keys()


def _pepper() -> str:
    return pepper()


def issuer() -> str:
    return _settings().server.issuer


# ------------------------------------------------------------------ signing
def sign(claims: dict, alg: str, typ: str = "JWT") -> str:
    """A compact JWS of ``claims`` with the key that signs for ``alg`` now.

    Every token response signs one or two JWTs. joserfc's ``jwt.encode`` (registry, header and
    claims checks, key lookups) cost several times the signature itself, so the JWS is put
    together here, the one call into ``cryptography`` prepared once per key; tests check the
    result with joserfc and the relying-party kit."""
    kid, key = _keys().ring().signing_key(alg)
    signer = _own_signers().get(kid)
    if signer is None:
        signer = _own_signers()[kid] = _signature_maker(alg, key.get_op_key("sign"))
    header = inputs.b64url_encode(json.dumps({"alg": alg, "kid": kid, "typ": typ}, separators=(",", ":")).encode())
    payload = inputs.b64url_encode(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode())
    signing_input = f"{header}.{payload}"
    return f"{signing_input}.{inputs.b64url_encode(signer(signing_input.encode('ascii')))}"


def _signature_maker(alg: str, private):
    """signing input -> JWS signature (RFC 7518 §3), for the algorithms the provider signs with."""
    if alg == protocol.ES256:
        def make(data: bytes) -> bytes:
            r, s = decode_dss_signature(private.sign(data, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")  # JWS ECDSA P-256: r || s
    elif alg == protocol.RS256:
        def make(data: bytes) -> bytes:
            return private.sign(data, padding.PKCS1v15(), hashes.SHA256())
    else:  # EdDSA
        def make(data: bytes) -> bytes:
            return private.sign(data)
    return make


def _own_signers() -> dict:
    """This app's prepared signatures by kid (a kid names one key for good: never stale)."""
    return current_app.extensions.setdefault("idp.own_signers", {})


class _OwnSignatures:
    """The published (not withdrawn) keys as ready-made signature checks, by kid.

    Userinfo, introspection and the admin API check a signature on every call. joserfc's generic
    ``jwt.decode`` (key set lookup, registry, header and claims classes) costs about as much again
    as the ES256 verification itself, so the check is one call into ``cryptography`` with the
    public key, hash and padding prepared once per key. Rebuilt only when the set of published
    keys changes (the JWKS document itself is rebuilt every second).

    The same token is checked again and again (a resource server introspects it on each call it
    receives, a console presents it on each page), and the answer for the same bytes under the
    same keys cannot change: tokens whose signature held are remembered, with their type and
    payload, until the set of keys changes (a withdrawn key's tokens must fail at once) or there
    are ``VERIFIED_LIMIT`` of them. Only the signature is remembered: expiry, issuer, type and
    revocation are checked on every call."""

    VERIFIED_LIMIT = 2048

    def __init__(self) -> None:
        self._doc: dict | None = None
        self._kids: frozenset[str] | None = None
        #: (signature checks by kid, the tokens verified with them: token -> (typ, payload JSON)),
        #: replaced together, so a token is only ever remembered with the keys that verified it
        self._current: tuple[dict[str, tuple[str, object]], dict[str, tuple[str, bytes]]] = ({}, {})

    def current(self) -> tuple[dict[str, tuple[str, object]], dict[str, tuple[str, bytes]]]:
        doc = _keys().jwks(_settings().max_jwt_lifetime)
        if doc is self._doc:  # the key cache's document is the same object for a second
            return self._current
        kids = frozenset(key["kid"] for key in doc["keys"])
        if kids != self._kids:
            checks = {}
            for jwk in doc["keys"]:
                public = JWKRegistry.import_key(jwk).get_op_key("verify")
                checks[jwk["kid"]] = (jwk["alg"], _signature_check(jwk["alg"], public))
            self._current, self._kids = (checks, {}), kids
        self._doc = doc  # last: another thread must not skip the rebuild above
        return self._current


def _signature_check(alg: str, public):
    """(signing input, JWS signature) -> valid?, for the algorithms the provider signs with."""
    if alg == protocol.ES256:
        def check(data: bytes, signature: bytes) -> bool:
            if len(signature) != 64:  # JWS ECDSA P-256: r || s, 32 bytes each
                return False
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
            public.verify(der, data, ec.ECDSA(hashes.SHA256()))
            return True
    elif alg == protocol.RS256:
        def check(data: bytes, signature: bytes) -> bool:
            public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            return True
    else:  # EdDSA
        def check(data: bytes, signature: bytes) -> bool:
            public.verify(signature, data)
            return True
    return check


def _own_signatures() -> _OwnSignatures:
    return current_app.extensions.setdefault("idp.own_signatures", _OwnSignatures())


def decode_own(token: str, *, typ: str | None) -> dict | None:
    """Verify a JWT this provider signed (signature, kid, algorithm, iss, typ); claims or None.

    Expiry is left to the caller: logout accepts an expired id_token_hint."""
    if not isinstance(token, str) or token.count(".") != 2 or len(token) > 8192:
        return None
    checks, verified = _own_signatures().current()
    known = verified.get(token)
    if known is None:
        known = _verified(token, checks)
        if known is None:
            return None
        if len(verified) >= _OwnSignatures.VERIFIED_LIMIT:
            verified.clear()
        verified[token] = known
    token_type, payload = known
    if typ is not None and token_type != typ:
        return None
    data = inputs.loads(payload)  # parsed for each caller: what is remembered never changes
    if data.get("iss") != issuer():
        return None
    return data


def _verified(token: str, checks: dict) -> tuple[str, bytes] | None:
    """(the header's ``typ`` in lower case, the payload's JSON) of a compact JWS whose signature one
    of ``checks`` accepts and whose payload is a JSON object, or None."""
    header_part, payload_part, signature_part = token.split(".")
    try:
        header = inputs.json_segment(header_part)
        if not isinstance(header, dict) or "crit" in header:
            return None
        alg, check = checks.get(header.get("kid"), (None, None))
        if check is None or header.get("alg") != alg:
            return None
        if not check(f"{header_part}.{payload_part}".encode("ascii"), inputs.b64url_decode(signature_part)):
            return None
        payload = inputs.b64url_decode(payload_part)
        if not isinstance(inputs.loads(payload), dict):
            return None
    except (ValueError, TypeError, UnicodeError, InvalidSignature, RecursionError):
        return None
    return str(header.get("typ", "")).lower(), payload


# ------------------------------------------------------------------ access tokens
def issue_access_token(client, grant_type: str, principal: Principal | None, scope: str,
                       jkt: str | None = None) -> tuple[str, int]:
    """A signed access token; ``jkt``: bound to that DPoP key (RFC 9449 §6.1, ``cnf.jkt``)."""
    lifetime = _settings().tokens.access_token_lifetime
    now = int(time.time())
    # A token for the admin API is for that API alone (RFC 9068 §3, RFC 8707): a service holding
    # one of its own tokens must not be able to use it there, nor the reverse.
    audience = protocol.admin_api_audience(issuer()) if protocol.ADMIN_API_SCOPE in scope.split() \
        else client.client_id
    data = {"iss": issuer(), "exp": now + lifetime, "iat": now, "client_id": client.client_id,
            "scope": scope, "aud": audience}
    if principal is None:
        data["sub"] = client.client_id
        data["jti"] = secrets.token(16)
    else:
        data.update(sub=principal.account.sub, jti=f"{principal.grant_id}.{secrets.token(12)}",
                    auth_time=principal.auth_time, acr=principal.acr, amr=principal.amr)
        if principal.sid:
            data["sid"] = principal.sid
        if protocol.ACCESS_SCOPE in scope.split():
            access = claims_module.user_claims(principal.account, protocol.ACCESS_SCOPE, client,
                                               profiles=principal.profiles())
            data.update(role=access["role"], centre=access["centre"], profiles=access["profiles"])
    if jkt:
        data["cnf"] = {"jkt": jkt}
    return sign(data, _settings().keys.access_token_alg, typ=protocol.ACCESS_TOKEN_TYP), lifetime


def verify_access_token(token: str) -> dict | None:
    """Claims of a live access token issued here, or None (bad, expired or revoked)."""
    checked = check_access_token(token)
    return None if checked is None else checked[0]


def check_access_token(token: str, also=None) -> tuple[dict, list[str | None]] | None:
    """``verify_access_token``, and the values of the store keys ``also(claims)`` names, fetched in
    the same round trip as the revocation markers: (claims, values), or None."""
    data = decode_own(token, typ=protocol.ACCESS_TOKEN_TYP)
    if data is None:
        return None
    now = time.time()
    exp, iat, jti, sub = data.get("exp"), data.get("iat"), data.get("jti"), data.get("sub")
    if not isinstance(exp, int) or exp <= now or not isinstance(jti, str) or not isinstance(sub, str):
        return None
    if not isinstance(iat, int):
        return None
    grant_id = jti.split(".", 1)[0] if "." in jti else None
    sid = data.get("sid")
    online = isinstance(sid, str) and protocol.OFFLINE_ACCESS_SCOPE not in str(data.get("scope", "")).split()
    # refused outright: the token, its grant; refused if issued up to the stored time: the person's
    # tokens (but the kept session's), those of its sign-in's online grants (but the offline grants
    # named, whose tokens a refresh may have narrowed); and a token issued up to when the store last
    # forgot everything (its revocation may be among what was forgotten: idp.records.STORE_FORGOT)
    outright = [REVOKED_TOKENS.key(jti)] + ([REVOKED_GRANTS.key(grant_id)] if grant_id else [])
    by_time = [REVOKED_PEOPLE.key(sub)] + ([REVOKED_SESSIONS.key(sid)] if online else [])
    keys = [store_forgot_key(), *outright, *by_time]
    values = store.get_many(*keys, *(also(data) if also is not None else ()))
    if any(value is not None for value in values[1:1 + len(outright)]):
        return None
    person, session = values[1 + len(outright)], values[2 + len(outright)] if online else None
    if person is not None:
        up_to, _, kept = person.partition("|")
        if iat <= int(up_to) and not (kept and kept == sid):
            return None
    if session is not None:
        up_to, _, offline = session.partition("|")
        if iat <= int(up_to) and grant_id not in offline.split(","):
            return None
    if iat <= store_forgot(values[0]):
        return None
    return data, values[len(keys):]


def person_of(data: dict) -> Account | None:
    """The account a verified access token speaks for, if it is a person's and they may still act."""
    if data.get("sub") == data.get("client_id"):
        return None  # a service's own token (client_credentials)
    account = db.session.scalar(select(Account).where(Account.sub == data["sub"]))
    return account if account is not None and account.can_sign_in else None


@dataclass(frozen=True)
class ClaimsSubject:
    """A person's columns that claims are made of (``claims.user_claims`` reads these names), read
    as plain values: UserInfo and a refresh answer from one row, without building and tracking an
    Account."""

    id: str
    sub: str
    given_name: str
    family_name: str
    language: str
    updated_at: object
    email: str
    email_verified: bool
    phone: str
    role: str
    centre_number: str | None

    @property
    def name(self) -> str:
        return full_name(self.given_name, self.family_name)


def _person_columns():
    """ClaimsSubject's columns, in its order (the accounts table joined to centres)."""
    accounts, centres = Account.__table__.c, Centre.__table__.c
    return (accounts.id, accounts.sub, accounts.given_name, accounts.family_name, accounts.language,
            accounts.updated_at, accounts.email, accounts.email_verified, accounts.phone, accounts.role,
            centres.number)


def _profiles_column():
    """The profiles the person holds as one space-separated string (a profile name has no spaces),
    not one row of the person per profile."""
    accounts, held = Account.__table__.c, AccessGrant.__table__.c
    return select(func.aggregate_strings(held.profile, " ")).where(held.account_id == accounts.id).scalar_subquery()


def _may_act():
    """Account.can_sign_in in SQL (the accounts table joined to centres): active, and the centre,
    if any, not suspended."""
    accounts, centres = Account.__table__.c, Centre.__table__.c
    return (accounts.status == ACTIVE) & (centres.id.is_(None) | centres.suspended.is_(False))


def _subject_query():
    """Built once: the person of a ``sub`` who may still act (Account.can_sign_in, in SQL), with the
    profiles they hold. Table columns, not ORM attributes: nothing to track, less to compile."""
    accounts, centres = Account.__table__.c, Centre.__table__.c
    return (select(*_person_columns(), _profiles_column())
            .select_from(Account.__table__.outerjoin(Centre.__table__, accounts.centre_id == centres.id))
            .where(accounts.sub == bindparam("sub"), _may_act()))


_SUBJECT_QUERY = _subject_query()


def subject_keys(data: dict) -> list[str]:
    """The store keys of the copy of a verified access token's person (``check_access_token``'s
    ``also``): none for a service's own token."""
    return [] if data.get("sub") == data.get("client_id") else claims_copies.keys(data["sub"])


def person_and_profiles(data: dict, copy_values: list[str | None]) -> tuple[ClaimsSubject | None, frozenset[str]]:
    """The person a verified access token speaks for, if they may still act, and the profiles they
    hold: from the store's copy while it is current (claims_copies), else one statement (UserInfo's
    one read), kept as the copy. ``copy_values``: those of ``subject_keys(data)``."""
    if data.get("sub") == data.get("client_id"):
        return None, frozenset()
    copy = claims_copies.current_copy(copy_values)
    if copy is not None:
        try:
            return _subject_from_copy(copy)
        except (ValueError, TypeError, KeyError, IndexError, OverflowError, OSError):
            pass  # written by another release, or garbled: read it afresh
    row = db.autocommit().execute(_SUBJECT_QUERY, {"sub": data["sub"]}).first()
    if row is None:
        return None, frozenset()
    subject, profiles = ClaimsSubject(*row[:-1]), frozenset((row[-1] or "").split())
    claims_copies.keep_copy(subject.sub, copy_values, _copy_of_subject(subject, profiles))
    return subject, profiles


#: the layout of a copy of a person (a copy in another layout, from another release, is read afresh)
_COPY_LAYOUT = "subject-2"
_UPDATED_AT = [f.name for f in dataclasses.fields(ClaimsSubject)].index("updated_at")


def _copy_of_subject(subject: ClaimsSubject, profiles: frozenset[str]) -> str:
    columns = list(dataclasses.astuple(subject))
    columns[_UPDATED_AT] = subject.updated_at.timestamp()
    return json.dumps([_COPY_LAYOUT, columns, sorted(profiles)], separators=(",", ":"))


def _subject_from_copy(copy: str) -> tuple[ClaimsSubject, frozenset[str]]:
    layout, columns, profiles = json.loads(copy)
    if layout != _COPY_LAYOUT or len(columns) != len(dataclasses.fields(ClaimsSubject)):
        raise ValueError("another layout")
    columns[_UPDATED_AT] = datetime.fromtimestamp(columns[_UPDATED_AT], UTC)
    return ClaimsSubject(*columns), frozenset(profiles)


def revoke_access_token(data: dict) -> None:
    remaining = int(data["exp"] - time.time())
    if remaining > 0:
        REVOKED_TOKENS.put(data["jti"], "1", remaining + 1)


# ------------------------------------------------------------------ refresh tokens
# A refresh is the busiest write path. It reads the token with its person in one statement and, on
# PostgreSQL, uses it up and writes its successor in one more, each in autocommit (db.autocommit:
# no BEGIN or COMMIT round trips, no session), as prepared Core statements: the ORM's identity map,
# loading and flush were about half of a refresh's CPU, for rows that live for one request. The
# ORM model stays the schema, and the home of the rarer bulk revocations below.
def hash_refresh(value: str) -> str:
    return secrets.fast_hash(value, _pepper())


@dataclass(frozen=True)
class StoredRefresh:
    """A refresh token as stored, with the person it was issued to (Authlib's token object for the
    refresh grant, introspection and revocation)."""

    token_hash: str
    grant_id: str
    client_id: str
    scope: str
    sid: str | None
    auth_time: int
    amr: list
    acr: str
    issued_at: int
    expires_at: int
    rotated_at: int | None
    revoked_at: int | None
    dpop_jkt: str | None
    person: ClaimsSubject
    #: the person may still act: active, and their centre (if any) not suspended (Account.can_sign_in)
    person_may_act: bool
    profiles: frozenset[str]
    #: when the sign-in the grant was made in began, if that session has not been ended
    session_started: datetime | None = None

    @property
    def usable(self) -> bool:
        """Not expired or revoked, its person may still sign in, and, unless the grant asked for
        offline_access, the sign-in it was made in lasts (not ended, within its absolute limit)."""
        return (self.revoked_at is None and self.expires_at > time.time() and self.person_may_act
                and (protocol.OFFLINE_ACCESS_SCOPE in self.scope.split() or self._session_lasts()))

    def _session_lasts(self) -> bool:
        if self.session_started is None:
            return False
        limit = policy.current().sec("session").absolute_timeout_seconds
        return (utcnow() - self.session_started).total_seconds() < limit

    # Authlib's TokenMixin (the refresh grant asks for these)
    def get_scope(self) -> str:
        return self.scope

    def check_client(self, client) -> bool:
        return client.client_id == self.client_id


_REFRESH_COLUMNS = ("token_hash", "grant_id", "client_id", "scope", "sid", "auth_time", "amr", "acr", "issued_at",
                    "expires_at", "rotated_at", "revoked_at", "dpop_jkt")


_REFRESH_TABLE = RefreshToken.__table__


def _refresh_query():
    """Built once: a token by its hash, its person's claim columns, whether they may act, the
    profiles they hold (one string, as for UserInfo), and when its session began if not ended."""
    refresh, accounts, centres = _REFRESH_TABLE.c, Account.__table__.c, Centre.__table__.c
    sessions = SsoSession.__table__.c
    return (select(*(refresh[name] for name in _REFRESH_COLUMNS), *_person_columns(), _may_act(),
                   _profiles_column(), sessions.created_at)
            .select_from(_REFRESH_TABLE.join(Account.__table__, refresh.account_id == accounts.id)
                         .outerjoin(Centre.__table__, accounts.centre_id == centres.id)
                         .outerjoin(SsoSession.__table__, (sessions.sid == refresh.sid) & sessions.ended_at.is_(None)))
            .where(refresh.token_hash == bindparam("token_hash")))


_REFRESH_QUERY = _refresh_query()
_REFRESH_INSERT = _REFRESH_TABLE.insert()
_REFRESH_CLAIM = (update(_REFRESH_TABLE)
                  .where(_REFRESH_TABLE.c.token_hash == bindparam("old_hash"), _REFRESH_TABLE.c.rotated_at.is_(None),
                         _REFRESH_TABLE.c.revoked_at.is_(None))
                  .values(rotated_at=bindparam("now")))


def _rotation_statement():
    """PostgreSQL: claim the old token and insert its successor only if the claim succeeded, as one
    statement (atomic on its own). A concurrent second statement waits on the row's lock, then finds
    it rotated: it claims nothing and inserts nothing."""
    claimed = _REFRESH_CLAIM.returning(_REFRESH_TABLE.c.token_hash).cte("claimed")
    columns = [column for column in _REFRESH_TABLE.c]
    # the successor's values are named new_*: a column's own name would also land in the UPDATE's SET
    successor = select(*(bindparam(f"new_{column.name}", type_=column.type) for column in columns)
                       ).select_from(claimed)
    # RETURNING: whether the successor was written (an INSERT ... SELECT has no reliable rowcount here)
    return _REFRESH_TABLE.insert().from_select(columns, successor).returning(_REFRESH_TABLE.c.token_hash)


_REFRESH_ROTATE = _rotation_statement()


def _refresh_row(value: str, client, principal: Principal, scope: str, jkt: str | None) -> dict:
    now = int(time.time())
    return {"token_hash": hash_refresh(value), "grant_id": principal.grant_id, "client_id": client.client_id,
            "account_id": principal.account.id, "scope": scope, "sid": principal.sid, "dpop_jkt": jkt,
            "auth_time": principal.auth_time, "amr": list(principal.amr), "acr": principal.acr or "",
            "issued_at": now, "expires_at": now + _settings().tokens.refresh_token_lifetime,
            "rotated_at": None, "revoked_at": None}


def save_refresh_token(value: str, client, principal: Principal, scope: str, *,
                       jkt: str | None = None) -> None:
    """The first token of a grant, in the session's transaction (the caller commits). ``jkt``:
    only the holder of that DPoP key may use it (a public client's, RFC 9449 §5)."""
    db.session.connection().execute(_REFRESH_INSERT, _refresh_row(value, client, principal, scope, jkt))


def find_refresh_token(value: str) -> StoredRefresh | None:
    if not isinstance(value, str) or not value or len(value) > 200:
        return None
    row = db.autocommit().execute(_REFRESH_QUERY, {"token_hash": hash_refresh(value)}).first()
    if row is None:
        return None
    columns = len(_REFRESH_COLUMNS)
    person_end = columns + len(ClaimsSubject.__dataclass_fields__)
    may_act, profiles, session_started = row[person_end:]
    return StoredRefresh(*row[:columns], person=ClaimsSubject(*row[columns:person_end]),
                         person_may_act=bool(may_act), profiles=frozenset((profiles or "").split()),
                         session_started=session_started)


def rotate_refresh_token(old: StoredRefresh, value: str, client, principal: Principal, scope: str, *,
                         jkt: str | None = None) -> bool:
    """Use ``old`` up and store its successor ``value``, atomically: True for exactly one caller,
    even across processes (False: someone used it first; nothing was written).

    PostgreSQL: one statement (see ``_rotation_statement``), in autocommit. SQLite: a conditional
    UPDATE and the INSERT in the session's transaction (writers are serialised); the caller commits."""
    successor = _refresh_row(value, client, principal, scope, jkt)
    claim = {"old_hash": old.token_hash, "now": successor["issued_at"]}
    if db.is_postgres:
        written = db.autocommit().execute(_REFRESH_ROTATE, {**{f"new_{k}": v for k, v in successor.items()},
                                                            **claim})
        return written.first() is not None
    connection = db.session.connection()
    if connection.execute(_REFRESH_CLAIM, claim).rowcount != 1:
        return False
    connection.execute(_REFRESH_INSERT, successor)
    return True


def principal_of_refresh(row: StoredRefresh) -> Principal:
    """Who the tokens issued for ``row`` speak for, as they authenticated when the grant began."""
    return Principal(account=row.person, auth_time=row.auth_time, amr=list(row.amr), acr=row.acr, sid=row.sid,
                     grant_id=row.grant_id, _profiles=row.profiles)


def revoke_grant(grant_id: str, *, reason: str, client_id: str | None = None, subject: str | None = None,
                 centre: str | None = None) -> None:
    """Revoke every token of one authorization: refresh tokens in the database, access tokens
    through the store. Commits, because it runs on the way to an error response."""
    now = int(time.time())
    # the marker first, then the rows: a redemption of the grant's code committing its refresh
    # token at this moment looks for the marker once it has committed (``grant_revoked``); if it
    # finds none, its commit came before the UPDATE below, which then sees its row
    first = REVOKED_GRANTS.add(grant_id, str(now), _settings().tokens.access_token_lifetime + 1)
    if not _revoke_rows(RefreshToken.grant_id == grant_id, now) and not first:
        # revoked already, and nothing new since: a used code or a revoked token sent again and
        # again (no rate limit stands in front of /token and /revoke) writes nothing each time
        return
    audit.record("token.grant_revoked", actor=f"client:{client_id}" if client_id else None, subject=subject,
                 centre=centre, outcome="success", reason=reason, grant_id=grant_id)
    db.session.commit()


def grant_revoked(grant_id: str) -> bool:
    """Whether the grant has been revoked as a whole (its code or a refresh token used twice)."""
    return REVOKED_GRANTS.get(grant_id) is not None


def _revoke_rows(which, now: int) -> int:
    """Mark the live refresh tokens ``which`` selects revoked, until none is left; how many were.
    On PostgreSQL a rotation in flight holds the row this UPDATE waits for and commits its
    successor in the meantime, outside this statement's snapshot: the next pass sees and revokes it."""
    statement = (update(RefreshToken).where(which, RefreshToken.revoked_at.is_(None))
                 .values(revoked_at=now).execution_options(synchronize_session=False))
    revoked = 0
    for _ in range(10):  # a rotation needs a live token: each pass leaves fewer, and one is the norm
        found = db.session.execute(statement).rowcount
        if found == 0:
            break
        revoked += found
    return revoked


def end_session_grants(sid: str, *, joined: bool = True, subject: str | None = None,
                       centre: str | None = None) -> None:
    """A session ended (signed out, ended by someone, or by a sign-out everywhere): the grants
    made through it that did not ask for offline_access end with it, refresh tokens in the
    database and access tokens through the store (OIDC Core §11: only offline_access keeps a
    refresh token working once the person is no longer signed in), each audited. ``joined``: a
    service has had a code from it (else no token names it, and the store is not written). The
    caller commits."""
    ttl = _settings().tokens.access_token_lifetime + 1
    live = list(db.session.execute(select(RefreshToken.grant_id, RefreshToken.client_id, RefreshToken.scope).where(
        RefreshToken.sid == sid, RefreshToken.revoked_at.is_(None))))
    # the scope compared word by word in Python: SQL's LIKE has wildcards and ignores case on SQLite;
    # a grant whose client has since lost offline_access lives as its sign-in (as a refresh would
    # now find: grants.RefreshTokenGrant), refreshed since or not
    online = {grant: client_id for grant, client_id, scope in live
              if not _still_offline(client_id, scope)}
    if joined:  # the access tokens of its grants, those with no refresh token among them
        offline = sorted({grant for grant, _, _ in live if grant not in online})
        marker = f"{int(time.time())}|{','.join(offline)}"
        as_it_commits(lambda: REVOKED_SESSIONS.put(sid, marker, ttl))
    if not online:
        return
    grant_ids = sorted(online)
    now = int(time.time())
    _revoke_rows(RefreshToken.grant_id.in_(grant_ids), now)
    for grant_id in grant_ids:
        audit.record("token.grant_revoked", subject=subject, centre=centre, outcome="success",
                     reason="session ended", grant_id=grant_id, client_id=online[grant_id])

    def mark() -> None:
        for grant_id in grant_ids:
            REVOKED_GRANTS.put(grant_id, str(now), ttl)
    as_it_commits(mark)


def _still_offline(client_id: str, scope: str) -> bool:
    """Whether a grant of this scope outlives its sign-in: offline_access granted, and the client
    still registered for it (a client gone or disabled keeps nothing)."""
    if protocol.OFFLINE_ACCESS_SCOPE not in scope.split():
        return False
    client = client_cache().get(client_id)
    return client is not None and protocol.OFFLINE_ACCESS_SCOPE in client.scopes


def revoke_account_tokens(account: Account, *, keep_sid: str | None = None) -> None:
    """Every refresh token of the person revoked (but those of session ``keep_sid``), and every
    access token issued so far stops at introspection and userinfo (but those of ``keep_sid``):
    offline_access ones included, and those of grants with no refresh token, which only the
    person-wide marker reaches. The caller commits with its own change."""
    now = int(time.time())
    which = RefreshToken.account_id == account.id
    if keep_sid:
        which = which & ((RefreshToken.sid != keep_sid) | RefreshToken.sid.is_(None))
    _revoke_rows(which, now)
    marker = f"{now}|{keep_sid}" if keep_sid else str(now)
    ttl = _settings().tokens.access_token_lifetime + 1
    as_it_commits(lambda: REVOKED_PEOPLE.put(account.sub, marker, ttl))


# ------------------------------------------------------------------ ID tokens
def issue_id_token(client, principal: Principal, scope: str, *, access_token: str | None,
                   nonce: str | None) -> str:
    from authlib.oidc.core.util import create_half_hash

    alg = client.id_token_signed_response_alg or _settings().keys.id_token_alg
    now = int(time.time())
    data = claims_module.user_claims(principal.account, scope, client,
                                     profiles=principal.profiles() if protocol.ACCESS_SCOPE in scope.split() else None)
    data.update(iss=issuer(), aud=client.client_id, azp=client.client_id, iat=now,
                exp=now + _settings().tokens.id_token_lifetime, auth_time=principal.auth_time,
                acr=principal.acr, amr=principal.amr)
    if principal.sid:
        data["sid"] = principal.sid
    if nonce:
        data["nonce"] = nonce
    if access_token:
        data["at_hash"] = create_half_hash(access_token, alg).decode()
    return sign(data, alg)
