"""/api/v1: parse JSON, call one service, answer JSON. Errors are RFC 9457 problem+json.

The admin API is a resource of its own: it accepts only access tokens issued for it (``aud`` is
its resource identifier, scope ``admin_api``), which only clients registered with that scope by
board staff can obtain. A token a person's browser got for any other service (results, entries...)
is refused with 401 ``invalid_token`` (RFC 6750, RFC 9068 §4). The caller is the person in the
token; what they may do is decided by the same policy checks as the web pages, from their
current account.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from functools import wraps
from pathlib import Path

from flask import Blueprint, Response, g, jsonify, request
from flask_babel import force_locale

from .. import clock, inputs, protocol
from ..accounts import sessions
from ..accounts.emails import send_invite
from ..admin import centres as admin_centres
from ..admin import clients as admin_clients
from ..admin import directory, errors, people
from ..i18n import english
from ..mfa import services as mfa
from ..notify.mail import DeliveryError
from ..oidc import bearer, tokens
from ..oidc import clients as registry

bp = Blueprint("api", __name__, url_prefix="/api/v1")
OPENAPI = Path(__file__).with_name("openapi.json")
STATUS = {"invalid": 400, "denied": 403, "not_found": 404, "conflict": 409}
TITLES = {"invalid": "Invalid request", "denied": "Forbidden", "not_found": "Not found", "conflict": "Conflict"}


def problem(status: int, title: str, detail: str = "", *, challenge: str | None = None, **extra) -> Response:
    body = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update({k: v for k, v in extra.items() if v is not None})
    response = Response(json.dumps(body), status=status, mimetype="application/problem+json")
    if challenge:
        response.headers["WWW-Authenticate"] = challenge
    return response


def _unauthorised(detail: str, *, error: str = "invalid_token", dpop_scheme: bool | None = False,
                  headers: dict | None = None) -> Response:
    response = problem(401, "Unauthorized", detail,
                       challenge=bearer.challenge("api", error, detail, dpop_scheme=dpop_scheme))
    response.headers.update(headers or {})
    return response


def authorised(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        try:
            presented = bearer.read()
        except bearer.BearerProblem:
            presented = None
        if presented is None:
            return _unauthorised("A valid access token is required.", dpop_scheme=None)
        try:
            data = bearer.verify(presented)
        except bearer.Refused as refused:
            return _unauthorised(refused.description, error=refused.error, dpop_scheme=refused.dpop_scheme,
                                 headers=bearer.nonce_headers(presented, refused))
        audience = data.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if protocol.admin_api_audience(tokens.issuer()) not in audiences:
            return _unauthorised("The access token was not issued for the admin API.", dpop_scheme=presented.is_dpop)
        if protocol.ADMIN_API_SCOPE not in str(data.get("scope", "")).split():
            return problem(403, "Forbidden", f"The access token needs the '{protocol.ADMIN_API_SCOPE}' scope.",
                           challenge=bearer.challenge("api", "insufficient_scope", scope=protocol.ADMIN_API_SCOPE,
                                                      dpop_scheme=presented.is_dpop))
        # board staff disabling or deleting the client, or taking the scope from it, ends its tokens here
        client = bearer.client_of(data)
        if client is None or protocol.ADMIN_API_SCOPE not in client.scopes:
            return _unauthorised("The client of this token is no longer registered for the admin API.",
                                 dpop_scheme=presented.is_dpop)
        account = tokens.person_of(data)
        if account is None:
            return _unauthorised("The access token is not for a person who may act.", dpop_scheme=presented.is_dpop)
        # handing an account over asks for a second factor passed lately in the token's session
        entry = sessions.by_sid(data["sid"]) if isinstance(data.get("sid"), str) else None
        fresh = entry is not None and entry.ended_at is None and mfa.is_fresh(entry)
        g.actor = replace(people.party_of(account), recent_second_factor=fresh)
        # the API answers programs: its messages are English whatever the caller's Accept-Language
        with force_locale("en"):
            try:
                return view(*args, **kwargs)
            except (errors.AdminError, errors.SecondFactorNeeded) as exc:
                return problem(STATUS[exc.kind], TITLES[exc.kind], english(exc.message), field=exc.field)
            except DeliveryError as exc:
                return problem(503, "Email not sent",
                               f"The invite could not be emailed, so nothing was changed: {exc}")

    return wrapper


def _request_validators() -> dict:
    """(METHOD, path template) -> a validator for the operation's JSON body, from the OpenAPI
    document: the document is the contract, so the API holds bodies to it field by field."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    spec = json.loads(OPENAPI.read_text())
    registry = Registry().with_resource("urn:idp:openapi", Resource.from_contents(spec, default_specification=DRAFT202012))
    found = {}
    for template, operations in spec["paths"].items():
        for method, operation in operations.items():
            schema = (operation.get("requestBody", {}).get("content", {}).get("application/json", {})
                      .get("schema")) if isinstance(operation, dict) else None
            if schema is not None:
                # named by its place in the document, so that a $ref inside it resolves in the document
                pointer = "/".join(part.replace("~", "~0").replace("/", "~1") for part in
                                   ("paths", template, method, "requestBody", "content", "application/json", "schema"))
                found[(method.upper(), template)] = Draft202012Validator({"$ref": f"urn:idp:openapi#/{pointer}"},
                                                                         registry=registry)
    return found


REQUEST_VALIDATORS = _request_validators()
_TYPE_WORDS = {"string": "text", "boolean": "true or false", "array": "a list", "object": "an object",
               "integer": "a whole number", "number": "a number", "null": "null"}


def _problem_with(error) -> tuple[str, str | None]:
    """A short message naming the field, for the first way a body breaks its schema (never the
    value itself, which may be anything and of any size)."""
    path = list(error.absolute_path)
    field = str(path[0]) if path else None  # the body's field; the detail says where inside it
    what = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(path)) \
        or "The body"
    if error.validator in ("unevaluatedProperties", "additionalProperties"):
        named = re.findall(r"'([^']*)'", error.message)  # jsonschema names the unexpected ones
        name = inputs.echo(named[0]) if named else "?"
        return f"Unknown field {name}.", name
    if error.validator == "required":
        missing = next((name for name in error.validator_value if name not in (error.instance or {})), "?")
        return (f"{what}.{missing} is required." if path else f"{missing} is required."), field or missing
    if error.validator == "type":
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        return f"{what} must be {' or '.join(_TYPE_WORDS.get(t, t) for t in wanted)}.", field
    if error.validator in ("minimum", "maximum"):
        bound = "least" if error.validator == "minimum" else "most"
        return f"{what} must be at {bound} {error.validator_value}.", field
    if error.validator in ("enum", "const"):
        values = error.validator_value if error.validator == "enum" else [error.validator_value]
        return f"{what} must be one of: {', '.join(str(v) for v in values)}.", field
    return f"{what} is not valid here.", field


def body() -> dict:
    """The request's JSON object, checked against the operation's schema in the OpenAPI document.
    Too deep, not JSON, not an object, or a field of the wrong type: Invalid, naming the field."""
    if request.mimetype != "application/json":
        raise errors.Invalid("Send a JSON object with Content-Type: application/json.")
    try:
        data = inputs.loads(request.get_data(cache=True))
    except inputs.BadJson as exc:
        raise errors.Invalid(f"The body could not be read: {exc}.") from None
    if not isinstance(data, dict):
        raise errors.Invalid("Send a JSON object with Content-Type: application/json.")
    template = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", request.url_rule.rule)[len(bp.url_prefix):]
    validator = REQUEST_VALIDATORS.get((request.method, template))
    if validator is not None:
        # a field's own error first: "unevaluated" at the top is only a consequence of it
        found = sorted(validator.iter_errors(data),
                       key=lambda e: (e.validator == "unevaluatedProperties", list(map(str, e.absolute_path))))
        error = found[0] if found else None
        if error is not None:
            raise errors.Invalid(*_problem_with(error))
    return data


def optional_body() -> dict:
    """``body()`` for an operation whose body may be left out (an empty body is ``{}``)."""
    if not request.content_length and not request.get_data(cache=True):
        return {}
    return body()


def _int_arg(name: str, default: int, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise errors.Invalid(f"{name} must be a whole number.", name) from None
    if not lo <= value <= hi:
        raise errors.Invalid(f"{name} must be between {lo} and {hi}.", name)
    return value


def centre_json(c) -> dict:
    return {"number": c.number, "name": c.name, "suspended": c.suspended}


@bp.get("/openapi.json")
def openapi():
    return Response(OPENAPI.read_text(), mimetype="application/json")


@bp.get("/centres")
@authorised
def list_centres():
    return jsonify([centre_json(c) for c in admin_centres.list_centres(g.actor)])


@bp.post("/centres")
@authorised
def create_centre():
    data = body()
    centre = admin_centres.create_centre(g.actor, data.get("number"), data.get("name"))
    return jsonify(centre_json(centre)), 201


@bp.patch("/centres/<number>")
@authorised
def rename_centre(number):
    return jsonify(centre_json(admin_centres.rename_centre(g.actor, number, body().get("name"))))


@bp.put("/centres/<number>/suspension")
@authorised
def suspend_centre(number):
    suspended = body().get("suspended")
    if not isinstance(suspended, bool):
        raise errors.Invalid("suspended must be true or false.", "suspended")
    return jsonify(centre_json(admin_centres.set_centre_suspended(g.actor, number, suspended)))


@bp.get("/centres/<number>/audit")
@authorised
def centre_audit(number):
    events = admin_centres.centre_audit(g.actor, number, page=_int_arg("page", 1, 1, 10_000),
                                   per_page=_int_arg("per_page", 50, 1, 200))
    return jsonify([{"at": clock.iso(e.at), "event": e.event, "outcome": e.outcome, "actor": e.actor,
                     "subject": e.subject, "centre": e.centre, "ip": e.ip, "details": e.details}
                    for e in events])


@bp.get("/accounts")
@authorised
def list_accounts():
    page = directory.search(g.actor, centre=request.args.get("centre"), q=request.args.get("q", ""),
                            role=request.args.get("role") or None, status=request.args.get("status") or None,
                            page=_int_arg("page", 1, 1, 10_000),
                            per_page=_int_arg("per_page", 25, 1, directory.MAX_PER_PAGE))
    return jsonify({"items": [directory.describe(a) for a in page.items], "total": page.total,
                    "page": page.page, "per_page": page.per_page})


@bp.post("/accounts")
@authorised
def invite():
    data = body()
    fields = {k: data[k] for k in people.PROFILE_FIELDS if k in data}
    invited = people.invite(g.actor, email=data.get("email"), role=data.get("role"), centre=data.get("centre"),
                              fields=fields, profiles=data.get("profiles"), send=send_invite)
    return jsonify(directory.describe(invited.account)), 201


@bp.get("/accounts/<sub>")
@authorised
def get_account(sub):
    return jsonify(directory.describe(directory.view(g.actor, sub)))


@bp.patch("/accounts/<sub>")
@authorised
def update_account(sub):
    fields = body()
    version = fields.pop("version", None)
    return jsonify(directory.describe(people.update_fields(g.actor, sub, fields, expected_version=version)))


@bp.put("/accounts/<sub>/profiles")
@authorised
def set_profiles(sub):
    data = body()
    people.set_profiles(g.actor, sub, data.get("profiles"), expected_version=data.get("version"))
    return jsonify(directory.describe(people.account_by_sub(sub)))


@bp.put("/accounts/<sub>/role")
@authorised
def change_role(sub):
    data = body()
    return jsonify(directory.describe(people.change_role(g.actor, sub, data.get("role"),
                                                         expected_version=data.get("version"))))


@bp.put("/accounts/<sub>/email")
@authorised
def change_email(sub):
    data = body()
    return jsonify(directory.describe(people.change_email(g.actor, sub, data.get("email"),
                                                          expected_version=data.get("version"),
                                                          reason=data.get("reason"))))


@bp.post("/accounts/<sub>/mfa-reset")
@authorised
def reset_mfa(sub):
    return jsonify(directory.describe(people.reset_mfa(g.actor, sub, reason=optional_body().get("reason"))))


@bp.post("/accounts/<sub>/unlock")
@authorised
def unlock(sub):
    return jsonify(directory.describe(people.unlock(g.actor, sub, reason=optional_body().get("reason"))))


@bp.post("/accounts/<sub>/disable")
@authorised
def disable(sub):
    return jsonify(directory.describe(people.disable(g.actor, sub, reason=optional_body().get("reason"))))


@bp.post("/accounts/<sub>/enable")
@authorised
def enable(sub):
    return jsonify(directory.describe(people.enable(g.actor, sub, reason=optional_body().get("reason"))))


@bp.post("/accounts/<sub>/invite")
@authorised
def resend_invite(sub):
    reason = optional_body().get("reason")
    return jsonify(directory.describe(people.resend_invite(g.actor, sub, send=send_invite, reason=reason).account))


@bp.delete("/accounts/<sub>")
@authorised
def delete_account(sub):
    people.delete(g.actor, sub)
    return "", 204


# ------------------------------------------------------------------ client services (board staff)
def _client_json(row, secret=None):
    body = registry.describe(row)
    if secret:
        body["client_secret"] = secret
    return body


@bp.get("/clients")
@authorised
def list_clients():
    return jsonify([registry.describe(row) for row in admin_clients.list_all(g.actor)])


@bp.post("/clients")
@authorised
def create_client():
    created = admin_clients.create(g.actor, body())
    return jsonify(_client_json(created.client, created.client_secret)), 201


@bp.get("/clients/<client_id>")
@authorised
def get_client(client_id):
    return jsonify(_client_json(admin_clients.get(g.actor, client_id)))


@bp.put("/clients/<client_id>")
@authorised
def update_client(client_id):
    updated = admin_clients.update(g.actor, client_id, body())
    return jsonify(_client_json(updated.client, updated.client_secret))


@bp.post("/clients/<client_id>/secret")
@authorised
def rotate_client_secret(client_id):
    grace = optional_body().get("grace_seconds", 0)
    secret = admin_clients.rotate_secret(g.actor, client_id, grace_seconds=grace)
    return jsonify(_client_json(admin_clients.get(g.actor, client_id), secret))


@bp.put("/clients/<client_id>/disabled")
@authorised
def disable_client(client_id):
    disabled = body().get("disabled")
    if not isinstance(disabled, bool):
        raise errors.Invalid("disabled must be true or false.", "disabled")
    return jsonify(_client_json(admin_clients.set_disabled(g.actor, client_id, disabled)))


@bp.delete("/clients/<client_id>")
@authorised
def delete_client(client_id):
    admin_clients.delete(g.actor, client_id)
    return "", 204


def _api_or_page(status: int, title: str, detail: str):
    """Routing errors under /api/v1 are problems too; elsewhere the usual page."""
    def handler(error):
        if request.path.startswith(bp.url_prefix + "/"):
            return problem(status, title, detail)
        return error
    return handler


bp.app_errorhandler(404)(_api_or_page(404, "Not found", "No such API resource."))
bp.app_errorhandler(405)(_api_or_page(405, "Method not allowed", "This resource does not accept that method."))
