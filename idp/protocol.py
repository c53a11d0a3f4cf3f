"""Every protocol constant, defined once: signing algorithms, client authentication methods,
grant types, scopes, and how sure a sign-in is (acr) and how it was made (amr).

A leaf module: configuration, the key folder, the policy, the services and the protocol endpoints
all read these names from here.
"""

from __future__ import annotations

# ------------------------------------------------------------------ signing (RFC 7518, RFC 8037)
RS256, ES256, EDDSA = "RS256", "ES256", "EdDSA"
#: algorithms the provider signs with (a key of each is kept in the key folder)
SIGNING_ALGORITHMS = (RS256, ES256, EDDSA)
#: algorithms a private_key_jwt client may sign its assertions with
CLIENT_ASSERTION_ALGORITHMS = (RS256, ES256, EDDSA, "PS256")
#: the OIDC default for ID tokens; access tokens default to ES256 (fast to sign and to verify)
DEFAULT_ID_TOKEN_ALGORITHM = RS256
DEFAULT_ACCESS_TOKEN_ALGORITHM = ES256

# ------------------------------------------------------------------ client authentication (RFC 7591 §2)
CLIENT_SECRET_BASIC, CLIENT_SECRET_POST = "client_secret_basic", "client_secret_post"
PRIVATE_KEY_JWT, NONE = "private_key_jwt", "none"
#: methods that send a secret: a client registered with either may use both
SECRET_METHODS = (CLIENT_SECRET_BASIC, CLIENT_SECRET_POST)
AUTH_METHODS = (*SECRET_METHODS, PRIVATE_KEY_JWT, NONE)
CONFIDENTIAL_AUTH_METHODS = (*SECRET_METHODS, PRIVATE_KEY_JWT)
#: how much each method proves of the client calling: nothing; a secret the provider also holds
#: (sent either way); a signature made with a private key only the client holds. Through RFC 7592 a
#: client may move up, never down (``clients._refuse_loosening``); a new method is ranked here
AUTH_METHOD_STRENGTH = {NONE: 0, CLIENT_SECRET_BASIC: 1, CLIENT_SECRET_POST: 1, PRIVATE_KEY_JWT: 2}

# ------------------------------------------------------------------ grants
AUTHORIZATION_CODE, REFRESH_TOKEN, CLIENT_CREDENTIALS = "authorization_code", "refresh_token", "client_credentials"
GRANT_TYPES = (AUTHORIZATION_CODE, REFRESH_TOKEN, CLIENT_CREDENTIALS)
DEFAULT_GRANT_TYPES = (AUTHORIZATION_CODE, REFRESH_TOKEN)
RESPONSE_TYPE_CODE = "code"
#: how the code goes back to the client: in the redirect URI's query, the code flow's default
RESPONSE_MODES = ("query",)
#: ``token_type_hint`` of introspection and revocation (RFC 7009 §2.1; refresh tokens: REFRESH_TOKEN)
ACCESS_TOKEN_HINT = "access_token"

# ------------------------------------------------------------------ request parameters
#: how a client authenticates in a form (RFC 6749 §2.3.1, RFC 7523 §2.2): /token, /par, /introspect, /revoke
CLIENT_AUTH_PARAMETERS = ("client_id", "client_secret", "client_assertion", "client_assertion_type")
#: An authorization request's parameters (RFC 6749 §4.1.1, OIDC Core §3.1.2.1, §5.2, §5.5 and §6,
#: RFC 7636, RFC 9126, RFC 9449 §10). None may be sent twice (RFC 6749 §3.1), nor may those of
#: the other endpoints below (§3.2): the first of two values would otherwise decide silently.
AUTHORIZATION_PARAMETERS = (
    "response_type", "client_id", "redirect_uri", "scope", "state", "response_mode", "nonce", "display", "prompt",
    "max_age", "ui_locales", "claims_locales", "id_token_hint", "login_hint", "acr_values", "claims", "request",
    "request_uri", "registration", "code_challenge", "code_challenge_method", "dpop_jkt",
)
TOKEN_PARAMETERS = ("grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "scope",
                    *CLIENT_AUTH_PARAMETERS)
#: introspection (RFC 7662 §2.1) and revocation (RFC 7009 §2.1)
TOKEN_INFO_PARAMETERS = ("token", "token_type_hint", *CLIENT_AUTH_PARAMETERS)

# ------------------------------------------------------------------ scopes
#: ``access`` releases the claims downstream services authorise on (role, centre, profiles).
ACCESS_SCOPE = "access"
#: The admin API (/api/v1) is a resource of its own: an access token carrying this scope is issued
#: for it alone (``aud`` = ``admin_api_audience``), and only to clients registered with the scope
#: by board staff.
ADMIN_API_SCOPE = "admin_api"
#: A refresh token of a grant with this scope keeps working after the person signs out (OIDC Core
#: §11); without it, the grant ends with the session it was made in.
OFFLINE_ACCESS_SCOPE = "offline_access"
SUPPORTED_SCOPES = ("openid", "profile", "email", "phone", ACCESS_SCOPE, OFFLINE_ACCESS_SCOPE, ADMIN_API_SCOPE)
#: scopes about a person: meaningless in a token a service gets for itself (client_credentials)
PERSON_SCOPES = frozenset(SUPPORTED_SCOPES)
#: what a client registered without a scope may ask for
DEFAULT_CLIENT_SCOPE = "openid profile email phone access offline_access"
#: which claims a scope releases
SCOPE_CLAIMS = {
    "profile": ("name", "given_name", "family_name", "locale", "updated_at"),
    "email": ("email", "email_verified"),
    "phone": ("phone_number", "phone_number_verified"),
    ACCESS_SCOPE: ("role", "centre", "profiles"),
}


def admin_api_audience(issuer: str) -> str:
    """The admin API's resource identifier (RFC 8707): the ``aud`` of every token meant for it."""
    return issuer + "/api/v1"


# ------------------------------------------------------------------ token types (RFC 9068, OIDC back-channel logout)
ACCESS_TOKEN_TYP = "at+jwt"
LOGOUT_TOKEN_TYP = "logout+jwt"

# ------------------------------------------------------------------ sender-constrained tokens (DPoP, RFC 9449)
#: ``token_type`` of a token response, and the Authorization scheme a resource is sent it with
TOKEN_TYPE_BEARER, TOKEN_TYPE_DPOP = "Bearer", "DPoP"
DPOP_PROOF_TYP = "dpop+jwt"
#: algorithms a client may sign DPoP proofs with: asymmetric only (a proof carries its public key)
DPOP_ALGORITHMS = (ES256, "ES384", "ES512", RS256, "PS256", "PS384", "PS512", EDDSA)

# ------------------------------------------------------------------ authentication context
#: acr values, weakest first
ACR_PASSWORD = "urn:idp:acr:pwd"            # password only (never enough for a token: MFA is mandatory)
#: password, on a device where a second factor was passed within the policy's days and the person
#: asked to be remembered (idp.accounts.remembered); no second factor this time
ACR_REMEMBERED_DEVICE = "urn:idp:acr:mfa-remembered"
ACR_MFA = "urn:idp:acr:mfa"                 # password + a second factor
ACR_PHISHING_RESISTANT = "urn:idp:acr:phr"  # password + a passkey or security key (WebAuthn)
ACR_VALUES = (ACR_PASSWORD, ACR_REMEMBERED_DEVICE, ACR_MFA, ACR_PHISHING_RESISTANT)

#: amr values (RFC 8176) this provider reports
AMR_PASSWORD, AMR_MFA = "pwd", "mfa"
_AMR_OF_KIND = {"totp": "otp", "email": "otp", "sms": "sms", "recovery": "otp"}


def amr_of(kind: str, device_type: str = "") -> str:
    """How a second factor of ``kind`` is reported in ``amr``: a passkey kept on one device is a
    hardware key (``hwk``), one synced between devices a software key (``swk``)."""
    if kind == "webauthn":
        return "hwk" if device_type == "single_device" else "swk"
    return _AMR_OF_KIND[kind]


def acr_of(kind: str) -> str:
    """The assurance a sign-in reaches with a second factor of ``kind``."""
    return ACR_PHISHING_RESISTANT if kind == "webauthn" else ACR_MFA


SECOND_FACTOR_KINDS = ("totp", "webauthn", "sms", "email")
