"""Access tokens as the provider's own resources (userinfo, the admin API, client registration)
receive them: ``Authorization: Bearer`` (RFC 6750) or ``Authorization: DPoP`` with a proof of the
key the token is bound to (RFC 9449 §7), and one way to say why a token was refused in
``WWW-Authenticate``."""

from __future__ import annotations

from dataclasses import dataclass

from flask import request

from .. import protocol
from ..extensions import client_cache
from . import dpop, tokens
from .clients import RegisteredClient


class BearerProblem(Exception):
    """The request sent its token in a way RFC 6750 §2 does not allow (400 invalid_request)."""


@dataclass(frozen=True)
class Presented:
    """An access token as a request presented it: ``scheme`` is Bearer or DPoP."""

    scheme: str
    token: str

    @property
    def is_dpop(self) -> bool:
        return self.scheme == protocol.TOKEN_TYPE_DPOP


class Refused(Exception):
    """The token, or its proof of possession, cannot be accepted: 401 with ``challenge()``."""

    def __init__(self, error: str, description: str, *, dpop_scheme: bool) -> None:
        super().__init__(description)
        self.error, self.description, self.dpop_scheme = error, description, dpop_scheme


_SCHEMES = {protocol.TOKEN_TYPE_BEARER.lower(): protocol.TOKEN_TYPE_BEARER,
            protocol.TOKEN_TYPE_DPOP.lower(): protocol.TOKEN_TYPE_DPOP}


def read(*, allow_form: bool = False, schemes=(protocol.TOKEN_TYPE_BEARER, protocol.TOKEN_TYPE_DPOP)) \
        -> Presented | None:
    """The access token of this request, or None if it sent none. From the Authorization header,
    or (``allow_form``, userinfo only) an ``access_token`` form parameter of a POST (a bearer
    token); never both, never another scheme (BearerProblem)."""
    header = request.headers.get("Authorization", "")
    in_form = allow_form and request.method == "POST" and \
        request.mimetype == "application/x-www-form-urlencoded" and "access_token" in request.form
    if header:
        if in_form:
            raise BearerProblem("Send the token in one place only.")
        name, _, value = header.partition(" ")
        scheme = _SCHEMES.get(name.lower())
        if scheme not in schemes or not value.strip():
            raise BearerProblem(f"Use the {' or '.join(schemes)} scheme.")
        return Presented(scheme, value.strip())
    if in_form:
        value = request.form["access_token"]
        return Presented(protocol.TOKEN_TYPE_BEARER, value) if value else None
    return None


def verify(presented: Presented) -> dict:
    """The claims of a live access token issued here, sent the way its binding asks: a DPoP-bound
    token only with the DPoP scheme and a fresh proof by its key that names it; any other only as
    a bearer token. Refused otherwise."""
    return verify_with(presented)[0]


def verify_with(presented: Presented, also=None) -> tuple[dict, list[str | None]]:
    """``verify``, and the values of the store keys ``also(claims)`` names, read in the same round
    trip as the token's revocation markers (``tokens.check_access_token``)."""
    checked = tokens.check_access_token(presented.token, also)
    if checked is None:
        raise Refused("invalid_token", "The access token is invalid, expired or revoked.",
                      dpop_scheme=presented.is_dpop)
    data, values = checked
    cnf = data.get("cnf")
    bound_to = cnf.get("jkt") if isinstance(cnf, dict) else None
    if bound_to is None:
        if presented.is_dpop:
            raise Refused("invalid_token", "The access token is not bound to a DPoP key: send it as a Bearer token.",
                          dpop_scheme=True)
        return data, values
    if not presented.is_dpop:  # RFC 9449 §7.2: a bound token is no bearer token
        raise Refused("invalid_token", "The access token is bound to a DPoP key: send it with the DPoP scheme "
                                       "and a proof.", dpop_scheme=True)
    try:
        jkt = dpop.check_proof(request.headers.getlist("DPoP"), method=request.method,
                               url=tokens.issuer() + request.path, access_token=presented.token)
    except dpop.ProofRefused as refused:
        raise Refused(refused.error, refused.description, dpop_scheme=True) from None
    if jkt != bound_to:
        raise Refused("invalid_token", "The DPoP proof is made with another key than the token is bound to.",
                      dpop_scheme=True)
    return data, values


def client_of(data: dict) -> RegisteredClient | None:
    """The client a verified token was issued to, as registered now; None once it is disabled or
    deleted, so its tokens stop at once. From the per-process cache the change notices keep exact,
    so a resource call costs no query for it."""
    return client_cache().get(data["client_id"])


def _quoted(value: str) -> str:
    """Only fixed ASCII text goes in a challenge: never anything from the token."""
    return '"' + value.encode("ascii", "replace").decode().replace("\\", "").replace('"', "'") + '"'


def challenge(realm: str, error: str | None = None, description: str | None = None, scope: str | None = None,
              *, dpop_scheme: bool | None = False) -> str:
    """A ``WWW-Authenticate`` value: the Bearer challenge, the DPoP one (``dpop_scheme``, naming the
    algorithms proofs may use), or both (``None``: no token was sent, either scheme will do)."""
    params = [("error", error), ("error_description", description), ("scope", scope)]
    found = []
    if dpop_scheme is not True:
        found.append(", ".join([f"Bearer realm={_quoted(realm)}"] +
                               [f"{name}={_quoted(value)}" for name, value in params if value]))
    if dpop_scheme is not False:
        found.append(", ".join([f"DPoP realm={_quoted(realm)}"] +
                               [f"{name}={_quoted(value)}" for name, value in params if value] +
                               [f"algs={_quoted(' '.join(protocol.DPOP_ALGORITHMS))}"]))
    return ", ".join(found)


def nonce_headers(presented: Presented, refused: Refused | None = None) -> dict:
    """``DPoP-Nonce`` for the answer to a resource request (RFC 9449 §9)."""
    return dpop.nonce_header(presented.is_dpop, refused.error if refused else None)
