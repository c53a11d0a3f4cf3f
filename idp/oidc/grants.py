"""Grants as small Authlib subclasses: authorization code (+PKCE, +OpenID), refresh token
(rotation with reuse detection), client credentials; and private_key_jwt client auth.

Authorization codes live in the shared store under the hash of the code. Redeeming
one swaps it, in one atomic step, for a "used" marker naming its client: of two concurrent
redemptions exactly one gets the code, and any later one finds the marker. The
grant id of everything issued from a code is derived from the code itself, so
the later one knows what to revoke (RFC 6749 §4.1.2) without another lookup.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode

from .. import inputs, metrics, protocol, secrets
from ..accounts.models import Account
from ..extensions import db, settings
from ..records import Record, made_before_the_store_forgot
from . import dpop, tokens

USED_MARKER_TTL = 600  # how long a redeemed code is remembered, to detect reuse
CODES = Record("code", ttl=60)  # keyed by the code's hash; lifetime from [tokens] authorization_code_lifetime
#: private_key_jwt assertion ids seen (single use until the assertion expires)
ASSERTION_IDS = Record("client-jti", ttl=300)
#: the furthest ahead an assertion's exp may be (RFC 7523 §3: one unreasonably far in the future may
#: be refused); its jti is remembered until then, so this also bounds that record's life
MAX_ASSERTION_LIFETIME = 3600


def _code_id(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _grant_id_for(code: str) -> str:
    return hashlib.sha256(b"grant:" + code.encode()).hexdigest()[:32]


#: what a redeemed code's record becomes: "used:<client_id>" (a bare "used" from before it named
#: the client is taken as anyone's)
USED = "used"


def _owner(stored: str) -> str:
    """The client a code's record (or its used marker) belongs to; "" when it does not say."""
    if stored.startswith(USED):
        return stored.partition(":")[2]
    return json.loads(stored)["client_id"]


@dataclass(frozen=True)
class AuthorizationCode:
    """What a code stands for (Authlib's AuthorizationCodeMixin)."""

    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    account_id: str
    auth_time: int
    amr: tuple[str, ...]
    acr: str
    sid: str | None
    grant_id: str
    expires_at: int
    #: the thumbprint of the key the code's tokens must be bound to (RFC 9449 §10), if any
    dpop_jkt: str | None = None

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str:
        return self.acr

    def get_amr(self) -> list[str]:
        return list(self.amr)


# ------------------------------------------------------------------ issuing (Authlib's token generator)
def issue_tokens(grant_type, client, user=None, scope=None, expires_in=None, include_refresh_token=True,
                 *, jkt: str | None = None):
    """A JWT access token (bound to the key ``jkt`` when the request carried a DPoP proof), and an
    opaque refresh token when the client may refresh and the token is for a person."""
    scope = scope or ""
    access_token, lifetime = tokens.issue_access_token(client, grant_type, user, scope, jkt=jkt)
    token = {"token_type": protocol.TOKEN_TYPE_DPOP if jkt else protocol.TOKEN_TYPE_BEARER,
             "access_token": access_token, "expires_in": lifetime, "scope": scope}
    if include_refresh_token and user is not None and client.check_grant_type(protocol.REFRESH_TOKEN):
        token["refresh_token"] = secrets.token(32)
    return token


class InvalidDPoPProofError(OAuth2Error):
    error = dpop.INVALID_PROOF


class UseDPoPNonceError(OAuth2Error):
    """The proof needs the provider's nonce: the token endpoint sends it in ``DPoP-Nonce``."""

    error = dpop.USE_NONCE


class SenderConstrained:
    """DPoP at the token endpoint (RFC 9449 §5), for every grant: the proof is checked before
    anything is redeemed (a client told to use a nonce retries with the same code or refresh
    token), the tokens issued are bound to its key, and a client registered with
    ``dpop_bound_access_tokens`` gets nothing without one."""

    def read_proof(self) -> None:
        proofs = self.request.headers.getlist("DPoP")
        self.request.dpop_jkt = None
        if not proofs:
            return
        try:
            self.request.dpop_jkt = dpop.check_proof(proofs, method="POST", url=tokens.issuer() + "/token")
        except dpop.ProofRefused as refused:
            error = UseDPoPNonceError if refused.error == dpop.USE_NONCE else InvalidDPoPProofError
            raise error(refused.description) from None

    def require_binding(self, bound_to: str | None = None) -> None:
        """The proof a registration or an earlier binding (``bound_to``) asks for is there."""
        jkt = self.request.dpop_jkt
        if jkt is None and (bound_to or self.request.client.dpop_bound_access_tokens):
            raise InvalidRequestError("A DPoP proof is required (send a DPoP header).")
        if bound_to and jkt != bound_to:
            raise InvalidGrantError("The DPoP proof is made with another key than the grant is bound to.")

    def create_token_response(self):
        # counted once the response is ready: a refresh that loses the race for its token signed an
        # access token that nobody receives
        answer = self.token_response()
        metrics.token_issued(self.GRANT_TYPE, self.request.client.client_id)
        return answer

    def token_response(self):
        """The grant's own answer: a grant that builds it differently overrides this, so that
        every grant's tokens are counted in the one place above."""
        return super().create_token_response()

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None, include_refresh_token=True):
        return issue_tokens(grant_type or self.GRANT_TYPE, self.request.client, user, scope, expires_in,
                            include_refresh_token, jkt=self.request.dpop_jkt)


def refresh_binding(request) -> str | None:
    """The DPoP key a new refresh token is bound to: a public client's only (a confidential
    client's is already bound to its credentials, RFC 9449 §5)."""
    return getattr(request, "dpop_jkt", None) if request.client.is_public else None


def _principal(account: Account | None, *, auth_time, amr, acr, sid, grant_id, nonce=None):
    if account is None or not account.can_sign_in:
        return None
    return tokens.Principal(account=account, auth_time=auth_time, amr=list(amr), acr=acr, sid=sid,
                            grant_id=grant_id, nonce=nonce)


class AuthorizationCodeGrant(SenderConstrained, grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = list(protocol.AUTH_METHODS)
    AUTHORIZATION_CODE_LENGTH = 43  # ~256 bits of randomness

    def validate_token_request(self):
        self.read_proof()
        super().validate_token_request()
        self.require_binding(self.request.authorization_code.dpop_jkt)

    def save_authorization_code(self, code: str, request) -> None:
        principal: tokens.Principal = request.user
        payload = request.payload.data
        lifetime = settings().tokens.authorization_code_lifetime
        record = {
            "client_id": request.client.client_id, "redirect_uri": request.payload.redirect_uri,
            "scope": request.scope, "nonce": payload.get("nonce"),
            "code_challenge": payload.get("code_challenge"),
            "code_challenge_method": payload.get("code_challenge_method"),
            "account_id": principal.account.id, "auth_time": principal.auth_time, "amr": principal.amr,
            "acr": principal.acr, "sid": principal.sid, "grant_id": _grant_id_for(code),
            "expires_at": int(time.time()) + lifetime, "dpop_jkt": payload.get("dpop_jkt"),
        }
        CODES.put_json(_code_id(code), record, lifetime)

    def query_authorization_code(self, code: str, client) -> AuthorizationCode | None:
        """The code's record, once, for the client it was issued to. Its record is swapped for a
        used marker naming that client; the same client sending it again revokes what it gave."""
        if not isinstance(code, str) or not code or len(code) > 100:
            return None
        current = CODES.get(_code_id(code))
        if current is None:
            return None
        if _owner(current) not in ("", client.client_id):
            # another client's code (RFC 6749 section 4.1.3), used or not, is no business of this
            # one: not spent, and a replay does not revoke what it gave. Anyone may send a public
            # client_id, and could otherwise stop the real exchange or end the grant it made
            return None
        previous = CODES.swap(_code_id(code), f"{USED}:{client.client_id}", USED_MARKER_TTL)
        if previous is None:
            return None
        if previous.startswith(USED):
            tokens.revoke_grant(_grant_id_for(code), reason="authorization code reused",
                                client_id=client.client_id)
            return None
        record = json.loads(previous)
        if record["client_id"] != client.client_id or record["expires_at"] <= time.time():
            return None
        record["amr"] = tuple(record["amr"])
        return AuthorizationCode(**record)

    def delete_authorization_code(self, authorization_code) -> None:
        """Nothing to do: redeeming already replaced the code with its used marker."""

    def authenticate_user(self, authorization_code: AuthorizationCode):
        account = db.session.get(Account, authorization_code.account_id)
        return _principal(account, auth_time=authorization_code.auth_time, amr=authorization_code.amr,
                          acr=authorization_code.acr, sid=authorization_code.sid,
                          grant_id=authorization_code.grant_id, nonce=authorization_code.nonce)


class S256CodeChallenge(CodeChallenge):
    """PKCE with S256 only; required for public clients."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant, redirect_uri):
        request = grant.request
        challenge = request.payload.data.get("code_challenge")
        method = request.payload.data.get("code_challenge_method")
        if request.client.is_public and not challenge:
            raise InvalidRequestError("PKCE is required for public clients: send code_challenge with "
                                      "code_challenge_method=S256", redirect_uri=redirect_uri)
        if challenge and method != "S256":
            raise InvalidRequestError("code_challenge_method must be S256", redirect_uri=redirect_uri)
        return super().validate_code_challenge(grant, redirect_uri)


class OpenIDConnect(OpenIDCode):
    """ID tokens for the code flow, built by idp.oidc.tokens."""

    def exists_nonce(self, nonce, request) -> bool:
        return False  # nonce uniqueness is the client's to check; we bind it into the code

    def encode_id_token(self, token, request):
        code: AuthorizationCode = request.authorization_code
        return tokens.issue_id_token(request.client, request.user, token["scope"],
                                     access_token=token.get("access_token"), nonce=code.nonce)


class RefreshTokenGrant(SenderConstrained, grants.RefreshTokenGrant):
    """Rotation on every use; presenting a rotated token revokes its whole family."""

    TOKEN_ENDPOINT_AUTH_METHODS = list(protocol.AUTH_METHODS)
    INCLUDE_NEW_REFRESH_TOKEN = True

    def validate_token_request(self):
        self.read_proof()
        client = self._validate_request_client()
        self.request.client = client
        value = self.request.form.get("refresh_token")
        if not value:
            raise InvalidRequestError("Missing 'refresh_token' in request.")
        row = tokens.find_refresh_token(value)
        if row is None or row.client_id != client.client_id:
            raise InvalidGrantError("The refresh token is not valid for this client.")
        # a request without the bound key's proof changes nothing, not even as a reuse: else a
        # thief holding an old token of a public client, and not its key, could end the grant
        self.require_binding(row.dpop_jkt)
        if row.rotated_at is not None and row.revoked_at is None:
            self._reuse(row)
        # a scope taken from the client's registration since is taken from the grant too (for good:
        # its successor is stored without it), as /authorize and client_credentials would not give it
        held = client.get_allowed_scope(row.scope)
        granted, row = row.scope, row if held == row.scope else dataclasses.replace(row, scope=held)
        if not row.usable:  # judged on what is held: a grant that lost offline_access lives as its sign-in
            raise InvalidGrantError("The refresh token has expired or been revoked.")
        requested = self.request.payload.scope
        if requested and not set(requested.split()) <= set(granted.split()):
            raise InvalidScopeError("The requested scope exceeds the original grant.")
        if "openid" not in held.split():
            # every grant is made with openid (/authorize requires it): nothing is left to refresh.
            # Refused, not used up, in case the scope is given back
            raise InvalidScopeError("The client is no longer registered for the openid scope.")
        # a scope asked for that the client no longer holds is left out, as /authorize leaves it
        self.request.scope = client.get_allowed_scope(requested) if requested else held
        if not self.request.scope:
            raise InvalidScopeError("The client is no longer registered for any scope requested.")
        self.request.refresh_token = row

    def issue_token(self, user, refresh_token):
        # the scope resolved in validate_token_request; Authlib's would take the request's as sent
        return self.generate_token(user=user, scope=self.request.scope,
                                   include_refresh_token=self.INCLUDE_NEW_REFRESH_TOKEN)

    def save_token(self, token):
        """The presented token is used up and its successor stored in one step: of two requests
        with the same token, exactly one gets through, and the other is reuse."""
        request = self.request
        # the successor keeps the grant's scope (as the client still holds it) whatever this request
        # narrowed its access token to (RFC 6749 §6)
        if not tokens.rotate_refresh_token(request.refresh_token, token["refresh_token"], request.client,
                                           request.user, request.refresh_token.scope, jkt=refresh_binding(request)):
            self._reuse(request.refresh_token)
        db.session.commit()

    def _reuse(self, row: tokens.StoredRefresh):
        tokens.revoke_grant(row.grant_id, reason="refresh token reused", client_id=row.client_id,
                            subject=row.person.sub, centre=row.person.centre_number)
        raise InvalidGrantError("The refresh token was already used; its grant is revoked.")

    def authenticate_refresh_token(self, refresh_token):  # validation is done above
        return None

    def authenticate_user(self, refresh_token: tokens.StoredRefresh):
        return tokens.principal_of_refresh(refresh_token)

    def revoke_old_credential(self, refresh_token) -> None:
        """Nothing to do: the old token was used up with its successor's write (save_token)."""

    def create_token_response(self):
        status, token, headers = super().create_token_response()
        scope = token.get("scope", "")
        if "openid" in scope.split():
            # A refreshed ID token keeps iss, sub, aud, auth_time and azp (OIDC Core 12.2).
            token["id_token"] = tokens.issue_id_token(self.request.client, self.request.user, scope,
                                                      access_token=token.get("access_token"), nonce=None)
        return status, token, headers


class ClientCredentialsGrant(SenderConstrained, grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = list(protocol.CONFIDENTIAL_AUTH_METHODS)

    def validate_token_request(self):
        self.read_proof()
        super().validate_token_request()
        self.require_binding()
        self.request.scope = service_scope(self.request.client, self.request.payload.scope)

    def token_response(self):
        # the scope resolved in validate_token_request, not the one requested
        token = self.generate_token(scope=self.request.scope, include_refresh_token=False)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


def service_scope(client, requested: str | None) -> str:
    """The scope of a service's own token (client_credentials): the service scopes asked for, in
    the order asked, or all the client's when it asks for none; never a person's scope.
    InvalidScopeError for any scope the client may not have this way."""
    service_scopes = [s for s in client.scopes if s not in protocol.PERSON_SCOPES]
    if not requested:
        return " ".join(sorted(service_scopes))
    wanted = requested.split()
    if any(s not in service_scopes for s in wanted):
        raise InvalidScopeError("The client may not request that scope with client_credentials.")
    return " ".join(dict.fromkeys(wanted))


class PrivateKeyJWT(JWTBearerClientAssertion):
    """private_key_jwt (RFC 7523 §2.2, OIDC Core 9): the assertion's jti is single use across
    processes, recorded in the shared store until the assertion expires."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, audiences_fn, jwks_fetcher):
        super().__init__(validate_jti=True, leeway=30)
        self._audiences_fn = audiences_fn
        self._jwks_fetcher = jwks_fetcher

    def get_audiences(self):
        return self._audiences_fn()

    def extract_assertion(self, assertion: str):
        """Authlib's, with the payload first read as every JWS segment from outside is (nesting
        bounded, text only): Authlib parses it before any client is known, and deep brackets would
        exhaust the stack; joserfc parses the same bytes again once the signature verifies."""
        from authlib.oauth2.rfc6749.errors import InvalidClientError

        parts = assertion.split(".")
        try:
            if len(parts) != 3:
                raise ValueError("not a compact JWS")
            inputs.json_segment(parts[1])
        except ValueError:
            raise InvalidClientError(description="Invalid JWT assertion.") from None
        return super().extract_assertion(assertion)

    def process_assertion_claims(self, assertion, resolve_key):
        from authlib.oauth2.rfc6749.errors import InvalidClientError
        from joserfc import jwt
        from joserfc.errors import JoseError

        try:
            token = jwt.decode(assertion, resolve_key, algorithms=list(protocol.CLIENT_ASSERTION_ALGORITHMS))
        except (JoseError, ValueError) as exc:
            raise InvalidClientError(description=getattr(exc, "description", None) or str(exc)) from exc
        self.verify_claims(token.claims)
        return token.claims

    def verify_claims(self, claims):
        from authlib.oauth2.rfc6749.errors import InvalidClientError

        exp = claims.get("exp")  # its type and presence are checked with the other claims
        # the leeway: Authlib's clients, for one, make exp exactly an hour after their own clock's now
        if isinstance(exp, (int, float)) and exp > time.time() + MAX_ASSERTION_LIFETIME + self.leeway:
            raise InvalidClientError(description=f"The assertion expires more than {MAX_ASSERTION_LIFETIME} "
                                                 "seconds from now (exp).")
        super().verify_claims(claims)

    def validate_jti(self, claims, jti) -> bool:
        if not isinstance(jti, str) or len(jti) > 256:
            return False
        ttl = max(1, int(claims.get("exp", time.time())) - int(time.time()) + self.leeway)
        if not ASSERTION_IDS.add(f"{claims['iss']}:{jti}", ttl=ttl):
            return False
        # made before the store last forgot everything: its use may have been forgotten with it
        # (an assertion without iat cannot be dated, and its jti record is all there is)
        iat = claims.get("iat")
        return not (isinstance(iat, (int, float)) and not isinstance(iat, bool) and made_before_the_store_forgot(iat))

    def resolve_client_public_key(self, client):
        from authlib.oauth2.rfc6749.errors import InvalidClientError
        from joserfc.jwk import KeySet

        if client.jwks:
            return KeySet.import_key_set(client.jwks)
        if client.jwks_uri:
            return self._jwks_fetcher(client.jwks_uri)
        raise InvalidClientError(description="The client has no registered keys.")
