"""The JSON admin API (/api/v1) through the Flask test client, with real access tokens from the
provider (authorization code flow, scope "openid admin_api", from a client registered for it).

Every response is checked against idp/api/openapi.json: the status must be documented for the
operation, the Content-Type must be the documented media type, and the body must validate against
the documented schema (JSON Schema 2020-12, $refs resolved inside the document). Errors are RFC 9457
problem+json.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

import idp.api
from idp import policy, protocol
from idp.accounts import passwords
from idp.accounts.models import Account
from idp.admin import people
from idp.audit import AuditEvent
from idp.centres import grants
from idp.extensions import db, pepper
from idp.oidc import clients as registry
from tests.support import (
    ADMIN_API_SCOPE,
    code_flow,
    make_account,
    make_admin_client,
    make_centre,
    make_client,
)

# one backend: what the API accepts and answers (the admin services behind it run on both backends in
# tests/unit/centres and tests/integration/services)
pytestmark = pytest.mark.one_backend

SPEC_PATH = Path(idp.api.__file__).with_name("openapi.json")
SPEC = json.loads(SPEC_PATH.read_text())
SPEC_URI = "urn:idp:openapi"
REGISTRY = Registry().with_resource(SPEC_URI, Resource.from_contents(SPEC, default_specification=DRAFT202012))
PREFIX = "/api/v1"
HOME, OTHER = "12345", "54321"
PROBLEM = "application/problem+json"


# ------------------------------------------------------------------ the contract
def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _template_for(path: str) -> str | None:
    for template in SPEC["paths"]:
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", re.escape(template).replace(r"\{", "{").replace(r"\}", "}")) + "$"
        if re.match(pattern, path):
            return template
    return None


def _validate(pointer: str, body) -> None:
    validator = Draft202012Validator({"$ref": f"{SPEC_URI}#{pointer}"}, registry=REGISTRY,
                                     format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not errors, f"body does not match {pointer}:\n" + "\n".join(
        f"  at {list(e.absolute_path)}: {e.message}" for e in errors) + f"\nbody: {json.dumps(body)[:2000]}"


def check_against_spec(method: str, url: str, response) -> None:
    path = urlsplit(url).path
    assert path.startswith(PREFIX), path
    path = path[len(PREFIX):]
    mimetype = response.mimetype
    template = _template_for(path)
    operation = SPEC["paths"][template].get(method.lower()) if template else None
    if operation is None:
        # no such operation: the blueprint's own 404/405 must still be a problem document
        assert response.status_code in (404, 405), (method, path, response.status_code)
        assert mimetype == PROBLEM, (method, path, response.content_type)
        _validate("/components/schemas/Problem", response.get_json())
        return
    status = str(response.status_code)
    documented = operation["responses"]
    assert status in documented, f"{method} {template} answered {status}, documented: {sorted(documented)}"
    spec_response = documented[status]
    pointer = f"/paths/{_escape(template)}/{method.lower()}/responses/{status}"
    if "$ref" in spec_response:
        pointer = spec_response["$ref"][1:]
        spec_response = SPEC["components"]["responses"][pointer.rsplit("/", 1)[1]]
    content = spec_response.get("content")
    if not content:
        assert response.get_data() == b"", f"{method} {template} {status} should have no body"
        return
    assert mimetype in content, f"{method} {template} {status}: Content-Type {response.content_type}, " \
                                f"documented {sorted(content)}"
    _validate(f"{pointer}/content/{_escape(mimetype)}/schema", response.get_json())


def test_openapi_document_is_valid():
    try:
        from openapi_spec_validator import validate
    except ImportError:  # pragma: no cover - the test extra should provide it
        validate = None
    if validate is not None:
        validate(SPEC)
    for schema in SPEC["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    # every $ref inside the document resolves
    resolver = REGISTRY.resolver(base_uri=SPEC_URI)

    def refs(node):
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in refs(SPEC):
        resolver.lookup(ref)


# ------------------------------------------------------------------ people, tokens, a caller
class Api:
    def __init__(self, http, tokens: dict, people: dict, settings) -> None:
        self.http, self.tokens, self.people, self.settings = http, tokens, people, settings

    def __call__(self, who: str | None, method: str, path: str, *, json_body=None, data=None,
                 headers=None, token: str | None = None):
        url = PREFIX + path
        all_headers = dict(headers or {})
        if token is None and who is not None:
            token = self.token(who)
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        kwargs = {"headers": all_headers}
        if json_body is not None:
            kwargs["json"] = json_body
        elif data is not None:
            kwargs["data"] = data
        response = self.http.open(url, method=method, **kwargs)
        check_against_spec(method, url, response)
        if response.status_code >= 400:
            assert response.content_type == PROBLEM, response.content_type
            problem = response.get_json()
            assert problem["status"] == response.status_code
            assert problem["title"].strip()
        return response

    def token(self, who: str) -> str:
        """The person's admin API token, made the first time it is asked for."""
        if who not in self.tokens:
            self.tokens[who] = _minted(self.app, self.rp, self.people[who])
        return self.tokens[who]

    def sub(self, who: str) -> str:
        return self.people[who]


PEOPLE = {
    "eo": ("eo@home.example", "eo", HOME),
    "admin": ("admin@home.example", "admin", HOME),
    "user": ("user@home.example", "user", HOME),
    "board": ("board@board.example", "board", None),
    "other-admin": ("admin@other.example", "admin", OTHER),
    "other-user": ("user@other.example", "user", OTHER),
}


def _minted(app, rp, sub: str, scope: str = ADMIN_API_SCOPE) -> str:
    """An access token exactly as /token signs one after a sign-in with a password and a passkey,
    made without the sign-in: these tests are about the API. How a token is obtained, and that one
    obtained through the code flow works here, is what ``_token`` and the tests using it are for."""
    import secrets as _secrets
    import time

    from idp.accounts import sessions
    from idp.extensions import client_cache, db
    from idp.oidc import tokens as token_module
    from idp.protocol import ACR_PHISHING_RESISTANT

    with app.app_context():
        account = people.account_by_sub(sub)
        # the sign-in session it was issued in, its second factor passed just now
        started = sessions.start(account, amr=["pwd", "hwk"], acr=ACR_PHISHING_RESISTANT, ip="127.0.0.1",
                                 user_agent="test")
        started.session.mfa_at = int(time.time())
        db.session.commit()
        principal = token_module.Principal(account=account, auth_time=int(time.time()),
                                           amr=["pwd", "hwk"], acr=ACR_PHISHING_RESISTANT, sid=started.session.sid,
                                           grant_id=_secrets.token_hex(16))
        return token_module.issue_access_token(client_cache().get(rp.client_id), "authorization_code",
                                               principal, scope)[0]


def _token(app, rp, email_address: str, scope: str = ADMIN_API_SCOPE) -> str:
    http = app.test_client()  # one browser per person: each has its own sign-in session
    return code_flow(http, rp, scope=scope, email=email_address)["access_token"]


@pytest.fixture
def api(app, client, settings):
    with app.app_context():
        make_centre(HOME, "Home School")
        make_centre(OTHER, "Other College")
        subs = {who: make_account(address, role=role, centre=centre).sub
                for who, (address, role, centre) in PEOPLE.items()}
        rp = make_admin_client()
        results = make_client("Results", redirect_uri="https://results.example/cb")
    result = Api(client, {}, subs, settings)
    result.app, result.rp, result.results = app, rp, results
    return result


def reason(app, question: str, *args) -> str:
    """The policy's own words for a refusal, so the API is checked to pass them through."""
    with app.app_context():
        decision = getattr(policy.checks(), question)(*args)
    assert not decision
    return decision.reason


def party(app, sub: str):
    with app.app_context():
        return people.party_of(people.account_by_sub(sub))


def new_person(**extra) -> dict:
    body = {"email": "new.person@home.example", "role": "user", "centre": HOME,
            "given_name": "New", "family_name": "Person"}
    body.update(extra)
    return body


# ------------------------------------------------------------------ authentication (401/403)
def test_the_document_is_served(api):
    response = api.http.get(PREFIX + "/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.get_json() == SPEC


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer not-a-token", "Basic dXNlcjpwYXNz",
                                    "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."])
def test_no_or_invalid_token_is_401(api, header):
    response = api(None, "GET", "/accounts", headers={"Authorization": header} if header else None)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def _every_operation():
    """(method, concrete path) for every operation in the document."""
    for template, operations in SPEC["paths"].items():
        path = re.sub(r"\{[^}]+\}", "x1234", template)
        for method in operations:
            if method in ("get", "post", "put", "patch", "delete") and template != "/openapi.json":
                yield method.upper(), path


def test_a_token_issued_to_another_service_is_refused_on_every_route(api):
    """The results service holds the signed-in EO's token (scope openid access): it must not be able
    to invite, delete or re-grant anyone with it (RFC 9068 §4: the audience is checked)."""
    token = _token(api.app, api.results, "eo@home.example", scope="openid access")
    for method, path in _every_operation():
        response = api(None, method, path, token=token, json_body={} if method in ("POST", "PUT", "PATCH") else None)
        assert response.status_code == 401, (method, path, response.status_code)
        challenge = response.headers["WWW-Authenticate"]
        assert challenge.startswith("Bearer") and 'error="invalid_token"' in challenge, challenge


def test_a_token_of_the_admin_client_without_the_scope_is_refused(api):
    token = _token(api.app, api.rp, "eo@home.example", scope="openid access")
    response = api(None, "GET", "/accounts", token=token)
    assert response.status_code == 401 and "admin API" in response.get_json()["detail"]


def _disable(client_id: str) -> None:
    registry.set_disabled(client_id, True, actor="test")


def _delete(client_id: str) -> None:
    registry.delete(client_id, actor="test")


def _take_the_scope(client_id: str) -> None:
    meta = registry.metadata_of(registry.get(client_id))
    meta["scope"] = " ".join(s for s in meta["scope"].split() if s != protocol.ADMIN_API_SCOPE)
    registry.update(client_id, meta, actor="test", pepper=pepper())


@pytest.mark.parametrize("change", [_disable, _delete, _take_the_scope])
def test_a_token_stops_when_its_client_is_disabled_deleted_or_loses_the_scope(api, change):
    """Board staff ending a console's registration, or its admin API, end the tokens it holds at
    once, as at UserInfo: the token itself is still signed, unexpired and unrevoked."""
    token = api.token("board")
    assert api(None, "GET", "/centres", token=token).status_code == 200
    with api.app.app_context():
        change(api.rp.client_id)
    for method, path in _every_operation():
        response = api(None, method, path, token=token, json_body={} if method in ("POST", "PUT", "PATCH") else None)
        assert response.status_code == 401, (method, path, response.status_code)
        challenge = response.headers["WWW-Authenticate"]
        assert challenge.startswith("Bearer") and 'error="invalid_token"' in challenge, challenge


def test_an_admin_api_token_is_for_the_admin_api_alone(api):
    """Obtained as a console would (the code flow, scope "openid admin_api"), and accepted."""
    token = _token(api.app, api.rp, "eo@home.example")
    import base64

    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert payload["aud"] == "http://localhost/api/v1" and "admin_api" in payload["scope"].split()
    assert api(None, "GET", "/accounts", token=token).status_code == 200


def test_only_clients_given_the_scope_get_it(api):
    """A client not registered with admin_api that asks for it gets a token without it."""
    tokens = code_flow(api.app.test_client(), api.results, scope="openid admin_api", email="eo@home.example")
    assert "admin_api" not in tokens["scope"].split()
    assert api(None, "GET", "/accounts", token=tokens["access_token"]).status_code == 401


def test_the_document_says_how_to_obtain_a_token():
    scheme = SPEC["components"]["securitySchemes"]["adminApi"]
    assert "admin_api" in scheme["flows"]["authorizationCode"]["scopes"]
    assert "admin_api" in SPEC["info"]["description"] and "/api/v1" in SPEC["info"]["description"]


def test_a_tampered_token_is_401(api):
    head, payload, sig = api.token("eo").split(".")
    forged = ".".join([head, payload, sig[:-4] + ("AAAA" if not sig.endswith("AAAA") else "BBBB")])
    assert api(None, "GET", "/accounts", token=forged).status_code == 401


# ------------------------------------------------------------------ board staff: centres
def test_board_manages_centres(api):
    listed = api("board", "GET", "/centres")
    assert listed.status_code == 200
    assert [c["number"] for c in listed.get_json()] == [HOME, OTHER]

    created = api("board", "POST", "/centres", json_body={"number": "67890", "name": "  New Academy "})
    assert created.status_code == 201
    assert created.get_json() == {"number": "67890", "name": "New Academy", "suspended": False}

    duplicate = api("board", "POST", "/centres", json_body={"number": "67890", "name": "Again"})
    assert duplicate.status_code == 409 and duplicate.get_json()["field"] == "number"

    for bad in ({"number": "6789", "name": "Short"}, {"number": "abcde", "name": "Letters"},
                {"number": 67891, "name": "Not text"}):
        refused = api("board", "POST", "/centres", json_body=bad)
        assert refused.status_code == 400 and refused.get_json()["field"] == "number", bad
    no_name = api("board", "POST", "/centres", json_body={"number": "67892", "name": "  "})
    assert no_name.status_code == 400 and no_name.get_json()["field"] == "name"

    bad_json = api("board", "POST", "/centres", data="{not json", headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 400
    not_object = api("board", "POST", "/centres", json_body=["67893", "List"])
    assert not_object.status_code == 400

    suspended = api("board", "PUT", "/centres/67890/suspension", json_body={"suspended": True})
    assert suspended.status_code == 200 and suspended.get_json()["suspended"] is True
    reinstated = api("board", "PUT", "/centres/67890/suspension", json_body={"suspended": False})
    assert reinstated.get_json()["suspended"] is False
    not_bool = api("board", "PUT", "/centres/67890/suspension", json_body={"suspended": "yes"})
    assert not_bool.status_code == 400 and not_bool.get_json()["field"] == "suspended"
    missing = api("board", "PUT", "/centres/99999/suspension", json_body={"suspended": True})
    assert missing.status_code == 404

    audit = api("board", "GET", "/centres/67890/audit")
    assert audit.status_code == 200
    events = [e["event"] for e in audit.get_json()]
    assert events[:3] == ["centre.reinstated", "centre.suspended", "centre.created"], events


def test_the_api_answers_in_english_whatever_the_callers_language(api):
    # the pages show these refusals in Welsh on Welsh pages; a program gets them in English
    welsh = {"Accept-Language": "cy"}
    refused = api("eo", "POST", "/accounts?ui_locales=cy", json_body=new_person(role="board"), headers=welsh)
    assert refused.status_code == 403
    assert refused.get_json()["detail"] == "Exams Officer accounts cannot invite Board staff accounts."
    bad_phone = api("eo", "POST", "/accounts", json_body=new_person(phone="12"), headers=welsh)
    assert bad_phone.status_code == 400
    assert bad_phone.get_json()["detail"] == "This phone number is too short. Check you have typed all of it."
    with api.app.app_context():
        reasons = [e.details["reason"] for e in db.session.query(AuditEvent).filter_by(outcome="denied")]
    assert reasons == ["Exams Officer accounts cannot invite Board staff accounts."]


@pytest.mark.parametrize("who", ["eo", "admin", "user"])
def test_only_board_staff_manage_centres(api, who):
    assert api(who, "GET", "/centres").status_code == 403
    assert api(who, "POST", "/centres", json_body={"number": "67890", "name": "X"}).status_code == 403
    refused = api(who, "PUT", f"/centres/{HOME}/suspension", json_body={"suspended": True})
    assert refused.status_code == 403
    assert api("board", "GET", "/centres").get_json()[0]["suspended"] is False


def test_board_invites_the_eo_of_a_new_centre_and_only_one(api, settings):
    api("board", "POST", "/centres", json_body={"number": "67890", "name": "New Academy"})
    invited = api("board", "POST", "/accounts", json_body=new_person(
        email="eo@new.example", role="eo", centre="67890"))
    assert invited.status_code == 201, invited.get_json()
    body = invited.get_json()
    assert body["role"] == "eo" and body["status"] == "invited" and body["centre"] == "67890"
    assert set(body["profiles"]) == set(policy.load().profiles)  # the EO holds everything
    assert temporary_password_for(settings, "eo@new.example")

    second = api("board", "POST", "/accounts", json_body=new_person(
        email="eo2@new.example", role="eo", centre="67890"))
    assert second.status_code == 403
    assert second.get_json()["detail"] == reason(api.app, "within_limit", "eo", 1)
    # board staff do not invite admins or users (DESIGN §1: board invites centres and EOs)
    assert api("board", "POST", "/accounts", json_body=new_person(role="admin")).status_code == 403


def test_board_lists_every_centre(api):
    everyone = api("board", "GET", "/accounts?per_page=200").get_json()
    assert {a["email"] for a in everyone["items"]} >= {"eo@home.example", "admin@other.example",
                                                        "board@board.example"}
    other = api("board", "GET", f"/accounts?centre={OTHER}").get_json()
    assert {a["email"] for a in other["items"]} == {"admin@other.example", "user@other.example"}
    assert other["total"] == 2


# ------------------------------------------------------------------ invitations and email
def temporary_password_for(settings, address: str) -> str:
    folder = Path(settings.mail_outbox_dir)
    found = []
    for path in sorted(folder.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["To"] == address:
            text = message.get_body(preferencelist=("plain",)).get_content()
            match = re.search(r"(?:Temporary password|Cyfrinair dros dro)\S*:\s*(\S+)", text)
            assert match, text
            found.append(match.group(1))
    assert len(found) == 1, f"{len(found)} invite emails to {address} in {folder}"
    return found[0]


def test_eo_invites_a_user_and_the_email_carries_a_working_password(api, settings):
    response = api("eo", "POST", "/accounts", json_body=new_person(
        email="  New.Person@Home.example ", profiles=["iamis", "results.view"], job_role="Teacher",
        phone="+447700900123"))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["email"] == "New.Person@Home.example" and body["status"] == "invited"
    assert body["profiles"] == ["iamis", "results.view"] and body["centre"] == HOME
    assert body["invite_expires_at"] and body["job_role"] == "Teacher"

    password = temporary_password_for(settings, "New.Person@Home.example")
    alphabet = policy.load().sec("invite").temporary_password_alphabet
    assert set(password) <= set(alphabet)
    with api.app.app_context():
        account = db.session.query(Account).filter_by(sub=body["sub"]).one()
        assert passwords.verify(account.password_hash, password)[0]
        assert not passwords.verify(account.password_hash, password + "x")[0]

    fetched = api("eo", "GET", f"/accounts/{body['sub']}")
    assert fetched.status_code == 200 and fetched.get_json() == body

    duplicate = api("admin", "POST", "/accounts", json_body=new_person(email="new.person@HOME.example"))
    assert duplicate.status_code == 409 and duplicate.get_json()["field"] == "email"


def test_invite_defaults_to_the_role_default_profiles(api):
    body = api("admin", "POST", "/accounts", json_body=new_person()).get_json()
    assert body["profiles"] == sorted(policy.load().default_profiles("user"))


@pytest.mark.parametrize("change,field", [
    ({"email": "not-an-email"}, "email"),
    ({"email": None}, "email"),
    ({"given_name": ""}, "given_name"),
    ({"given_name": "\u200b\u200b"}, "given_name"),  # a zero-width space shows nothing
    ({"family_name": "x" * 101}, "family_name"),
    ({"language": "fr"}, "language"),
    ({"phone": "07700 90012"}, "phone"),
    ({"role": "wizard"}, "role"),
])
def test_invite_field_errors_name_the_field(api, change, field):
    response = api("eo", "POST", "/accounts", json_body=new_person(**change))
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["field"] == field
    assert response.get_json()["detail"].strip()


@pytest.mark.parametrize("centre,status", [("12", 400), ("abcde", 400), (None, 403), ("99999", 404)])
def test_board_invite_names_the_centre_field(api, centre, status):
    response = api("board", "POST", "/accounts", json_body=new_person(role="eo", centre=centre))
    assert response.status_code == status, response.get_json()
    assert response.get_json()["detail"].strip()
    if status != 403:
        assert response.get_json()["field"] == "centre"


def test_bad_json_is_400(api):
    for data, ctype in (("{", "application/json"), ("[1, 2]", "application/json"), ("email=x", "text/plain")):
        response = api("eo", "POST", "/accounts", data=data, headers={"Content-Type": ctype})
        assert response.status_code == 400, (data, response.get_json())


def test_invite_refusals_carry_the_policy_reason(api):
    user = api("user", "POST", "/accounts", json_body=new_person())
    assert user.status_code == 403
    assert user.get_json()["detail"] == reason(api.app, "may_invite", party(api.app, api.sub("user")), "user", HOME)

    eo_as = api("eo", "POST", "/accounts", json_body=new_person(role="eo"))
    assert eo_as.status_code == 403
    assert eo_as.get_json()["detail"] == reason(api.app, "may_invite", party(api.app, api.sub("eo")), "eo", HOME)

    never = api("eo", "POST", "/accounts", json_body=new_person(profiles=["a2c_keys"]))
    assert never.status_code == 403
    assert never.get_json()["detail"] == reason(api.app, "may_hold", "user", "a2c_keys")
    assert api("eo", "GET", "/accounts?q=new.person").get_json()["total"] == 0


def test_the_fourth_admin_is_refused(api):
    for n in (1, 2):
        assert api("eo", "POST", "/accounts", json_body=new_person(email=f"a{n}@home.example", role="admin")
                   ).status_code == 201
    fourth = api("eo", "POST", "/accounts", json_body=new_person(email="a3@home.example", role="admin"))
    assert fourth.status_code == 403
    assert fourth.get_json()["detail"] == reason(api.app, "within_limit", "admin", 3)


# ------------------------------------------------------------------ one account
def test_update_profile_fields(api):
    sub = api.sub("user")
    response = api("admin", "PATCH", f"/accounts/{sub}", json_body={"job_role": " Invigilator ", "language": "cy"})
    assert response.status_code == 200
    assert response.get_json()["job_role"] == "Invigilator" and response.get_json()["language"] == "cy"
    for bad, field in (({"email": "x@y.example"}, "email"), ({"phone": "123"}, "phone"),
                       ({"title": 7}, "title"), ({"title": "x" * 33}, "title"),
                       ({"given_name": ""}, "given_name"), ({"family_name": "\u200b"}, "family_name")):
        refused = api("admin", "PATCH", f"/accounts/{sub}", json_body=bad)
        assert refused.status_code == 400 and refused.get_json()["field"] == field, bad
    own = api("user", "PATCH", f"/accounts/{sub}", json_body={"title": "Dr"})
    assert own.status_code == 200 and own.get_json()["title"] == "Dr"


def test_grant_and_revoke_profiles(api):
    sub = api.sub("user")
    granted = api("admin", "PUT", f"/accounts/{sub}/profiles", json_body={"profiles": ["resources", "entries.view"]})
    assert granted.status_code == 200 and granted.get_json()["profiles"] == ["entries.view", "resources"]

    never = api("eo", "PUT", f"/accounts/{sub}/profiles", json_body={"profiles": ["entries.make"]})
    assert never.status_code == 403
    assert never.get_json()["detail"] == reason(api.app, "may_hold", "user", "entries.make")

    for bad in ({"profiles": "resources"}, {"profiles": [1]}, {}):
        refused = api("eo", "PUT", f"/accounts/{sub}/profiles", json_body=bad)
        assert refused.status_code == 400 and refused.get_json()["field"] == "profiles", bad

    # implied profiles are added for an admin target
    admin_sub = api.sub("admin")
    implied = api("eo", "PUT", f"/accounts/{admin_sub}/profiles",
                  json_body={"profiles": ["users.manage", "entries.make"]})
    assert implied.status_code == 200
    assert implied.get_json()["profiles"] == ["entries.make", "entries.view", "users.manage"]
    revoked = api("eo", "PUT", f"/accounts/{sub}/profiles", json_body={"profiles": []})
    assert revoked.status_code == 200 and revoked.get_json()["profiles"] == []


def test_nobody_changes_their_own_access(api):
    """As with one's own type: an admin removing their own users.manage would shut themselves out,
    and what they hold is for someone who manages them to decide."""
    sub = api.sub("admin")
    api("eo", "PUT", f"/accounts/{sub}/profiles", json_body={"profiles": ["users.manage", "resources"]})
    refused = api("admin", "PUT", f"/accounts/{sub}/profiles", json_body={"profiles": ["resources"]})
    assert refused.status_code == 403
    assert refused.get_json()["detail"] == "You cannot change your own access."
    with api.app.app_context():
        assert sorted(people.party_of(people.account_by_sub(sub)).profiles) == ["resources", "users.manage"]


def test_an_admin_grants_only_what_it_holds(api):
    admin_sub = api.sub("admin")
    api("eo", "PUT", f"/accounts/{admin_sub}/profiles", json_body={"profiles": ["users.manage", "resources"]})
    # the admin's token is still valid; the decision uses its current grants
    refused = api("admin", "PUT", f"/accounts/{api.sub('user')}/profiles",
                  json_body={"profiles": ["resources", "scripts.view"]})
    assert refused.status_code == 403
    actor = party(api.app, admin_sub)
    target = party(api.app, api.sub("user"))
    assert refused.get_json()["detail"] == reason(api.app, "may_grant", actor, target, "scripts.view")


def test_change_role(api):
    sub = api.sub("user")
    promoted = api("eo", "PUT", f"/accounts/{sub}/role", json_body={"role": "admin"})
    assert promoted.status_code == 200 and promoted.get_json()["role"] == "admin"
    demoted = api("eo", "PUT", f"/accounts/{sub}/role", json_body={"role": "user"})
    assert demoted.status_code == 200 and demoted.get_json()["role"] == "user"
    assert not set(demoted.get_json()["profiles"]) & {"a2c_keys", "entries.make", "results.embargoed",
                                                        "users.manage"}
    to_eo = api("eo", "PUT", f"/accounts/{sub}/role", json_body={"role": "eo"})
    assert to_eo.status_code == 403
    assert to_eo.get_json()["detail"] == reason(api.app, "may_change_role", party(api.app, api.sub("eo")),
                                                party(api.app, sub), "eo")
    own = api("admin", "PUT", f"/accounts/{api.sub('admin')}/role", json_body={"role": "user"})
    assert own.status_code == 403


def test_delete(api):
    sub = api.sub("user")
    api.token("user")  # signed in before the deletion
    assert api("eo", "DELETE", f"/accounts/{api.sub('eo')}").status_code == 403  # not oneself
    deleted = api("admin", "DELETE", f"/accounts/{sub}")
    assert deleted.status_code == 204
    assert api("admin", "GET", f"/accounts/{sub}").status_code == 404
    assert api("admin", "DELETE", f"/accounts/{sub}").status_code == 404
    assert api("user", "GET", "/accounts").status_code == 401  # the deleted person's token is dead


def test_not_found(api):
    assert api("eo", "GET", "/accounts/no-such-sub").status_code == 404
    assert api("eo", "PATCH", "/accounts/no-such-sub", json_body={"title": "Dr"}).status_code == 404
    assert api("board", "GET", "/centres/99999/audit").status_code == 404
    assert api("board", "GET", "/accounts?centre=99999").status_code == 404


def test_unknown_api_paths_and_methods_are_problems(api):
    """The API blueprint's own 404/405 handlers promise problem+json for anything under /api/v1."""
    assert api("eo", "GET", "/no/such/thing").status_code == 404
    assert api("eo", "DELETE", "/centres").status_code == 405


# ------------------------------------------------------------------ who sees whom
def test_a_user_cannot_list_accounts(api):
    response = api("user", "GET", "/accounts")
    assert response.status_code == 403
    assert response.get_json()["detail"] == reason(api.app, "may_view_centre", party(api.app, api.sub("user")), HOME)
    # but sees their own account
    own = api("user", "GET", f"/accounts/{api.sub('user')}")
    assert own.status_code == 200 and own.get_json()["email"] == "user@home.example"
    assert api("user", "GET", f"/accounts/{api.sub('eo')}").status_code == 403
    assert api("user", "GET", f"/centres/{HOME}/audit").status_code == 403


def test_an_admin_cannot_touch_another_centre(api):
    other_user, other_admin = api.sub("other-user"), api.sub("other-admin")
    actor = party(api.app, api.sub("admin"))
    calls = [
        ("GET", f"/accounts?centre={OTHER}", None),
        ("GET", f"/accounts/{other_user}", None),
        ("PATCH", f"/accounts/{other_user}", {"title": "Dr"}),
        ("PUT", f"/accounts/{other_user}/profiles", {"profiles": ["resources"]}),
        ("PUT", f"/accounts/{other_user}/role", {"role": "admin"}),
        ("DELETE", f"/accounts/{other_admin}", None),
        ("POST", "/accounts", new_person(centre=OTHER)),
        ("GET", f"/centres/{OTHER}/audit", None),
    ]
    wrong = []
    for method, path, body in calls:
        response = api("admin", method, path, json_body=body)
        if response.status_code != 403 or not response.get_json()["detail"].strip():
            wrong.append(f"{method} {path} -> {response.status_code} {response.get_json()}")
    assert not wrong, "\n".join(wrong)
    assert api("admin", "POST", "/accounts", json_body=new_person(centre=OTHER)).get_json()["detail"] == \
        reason(api.app, "may_invite", actor, "user", OTHER)
    with api.app.app_context():
        account = people.account_by_sub(other_user)
        assert account.title == "" and account.role == "user"


@pytest.mark.parametrize("who", ["eo", "admin", "user"])
def test_centre_staff_cannot_tell_which_centre_numbers_exist(api, who):
    """Asked about a centre that is not theirs, centre staff get the same answer whether or not the
    number is anyone's: the permission is checked before the centre is looked up (found by an
    outside probe: a centre's audit trail answered 404 for a number nobody has and 403 for another
    centre's, so centre staff could list which numbers exist)."""
    calls = [("GET", "/centres/{n}/audit", None), ("GET", "/accounts?centre={n}", None),
             ("PATCH", "/centres/{n}", {"name": "Renamed"}), ("PUT", "/centres/{n}/suspension", {"suspended": True})]
    for method, path, body in calls:
        real = api(who, method, path.format(n=OTHER), json_body=body)
        nobody = api(who, method, path.format(n="99999"), json_body=body)
        assert real.status_code == 403, (method, path, real.get_json())
        assert (nobody.status_code, nobody.get_json()["detail"]) == (real.status_code, real.get_json()["detail"]), \
            (method, path, nobody.get_json())
    # board staff, who may see every centre, are told there is no such centre
    assert api("board", "GET", "/centres/99999/audit").status_code == 404


def test_setting_unchanged_profiles_is_still_authorised(api):
    """PUT /profiles with the set an account already has changes nothing, but must still be refused
    to someone who may not manage that account (else it answers 200 with the whole account)."""
    other_admin = api.sub("other-admin")
    with api.app.app_context():
        current = sorted(grants.profiles_of(people.account_by_sub(other_admin)))
    for who in ("user", "admin", "eo"):
        response = api(who, "PUT", f"/accounts/{other_admin}/profiles", json_body={"profiles": current})
        assert response.status_code == 403, f"{who}: {response.status_code} {response.get_json()}"


def test_an_admin_cannot_edit_or_delete_the_eo(api):
    eo = api.sub("eo")
    for method, path, body in (("PATCH", f"/accounts/{eo}", {"title": "Mx"}),
                               ("DELETE", f"/accounts/{eo}", None),
                               ("PUT", f"/accounts/{eo}/profiles", {"profiles": ["resources"]}),
                               ("PUT", f"/accounts/{eo}/role", {"role": "user"})):
        response = api("admin", method, path, json_body=body)
        assert response.status_code == 403, (method, path)
    assert api("admin", "GET", f"/accounts/{eo}").status_code == 200  # seeing is fine


def test_an_admin_without_users_manage_sees_and_manages_nobody(api):
    api("eo", "PUT", f"/accounts/{api.sub('admin')}/profiles", json_body={"profiles": ["resources"]})
    assert api("admin", "GET", "/accounts").status_code == 403
    assert api("admin", "POST", "/accounts", json_body=new_person()).status_code == 403
    assert api("admin", "DELETE", f"/accounts/{api.sub('user')}").status_code == 403


# ------------------------------------------------------------------ paging and search
def test_paging_and_search(api):
    for n in range(7):
        assert api("eo", "POST", "/accounts", json_body=new_person(
            email=f"pupil{n}@home.example", given_name=f"Pupil{n}", family_name="Zephyr" if n % 2 else "Quill")
        ).status_code == 201
    first = api("eo", "GET", "/accounts?per_page=3").get_json()
    total = first["total"]
    assert total == 10 and first["page"] == 1 and first["per_page"] == 3  # eo, admin, user + 7
    seen = []
    for page in range(1, 5):
        body = api("eo", "GET", f"/accounts?per_page=3&page={page}").get_json()
        assert body["total"] == total and body["page"] == page
        assert len(body["items"]) == (3 if page < 4 else 1)
        seen += [a["email"] for a in body["items"]]
    assert len(seen) == len(set(seen)) == total
    assert seen == sorted(seen, key=str.lower)
    assert all(a["centre"] == HOME for a in first["items"])
    beyond = api("eo", "GET", "/accounts?per_page=3&page=5").get_json()
    assert beyond["items"] == [] and beyond["total"] == total

    by_name = api("eo", "GET", "/accounts?q=zEPHYR").get_json()
    assert by_name["total"] == 3 and {a["family_name"] for a in by_name["items"]} == {"Zephyr"}
    by_email = api("eo", "GET", "/accounts?q=PUPIL4@").get_json()
    assert [a["email"] for a in by_email["items"]] == ["pupil4@home.example"]
    assert api("eo", "GET", "/accounts?q=nobody-by-that-name").get_json()["total"] == 0
    # a NUL or another control character is refused with the field named and what to type instead
    # (PostgreSQL would not take a NUL in text at all: the fuzzer found it as a 500)
    for bad in ("Zep%00hyr", "a%01b", "%7F"):
        refused = api("eo", "GET", f"/accounts?q={bad}")
        assert refused.status_code == 400, refused.get_json()
        assert refused.get_json()["detail"] == "q: enter letters, numbers, spaces and punctuation only."
    # what a paste brings along (a spreadsheet cell ends in a line break, a tab between columns)
    # is searched as spaces
    assert api("eo", "GET", "/accounts?q=zephyr%0D%0A").get_json()["total"] == 3
    assert api("eo", "GET", "/accounts?q=%09PUPIL4@").get_json()["total"] == 1
    # the search stays inside the caller's centre
    assert api("eo", "GET", "/accounts?q=other.example").get_json()["total"] == 0

    for query, field in (("per_page=0", "per_page"), ("per_page=201", "per_page"), ("page=abc", "page"),
                         ("page=0", "page")):
        refused = api("eo", "GET", f"/accounts?{query}")
        assert refused.status_code == 400 and refused.get_json()["field"] == field, query


def test_centre_audit(api):
    api("eo", "POST", "/accounts", json_body=new_person())
    api("eo", "PATCH", f"/accounts/{api.sub('user')}", json_body={"title": "Dr"})
    events = api("eo", "GET", f"/centres/{HOME}/audit").get_json()
    assert [e["event"] for e in events[:2]] == ["account.updated", "account.invited"]
    assert events[0]["actor"] == api.sub("eo") and events[0]["centre"] == HOME
    ats = [e["at"] for e in events]
    assert ats == sorted(ats, reverse=True)
    one = api("eo", "GET", f"/centres/{HOME}/audit?per_page=1").get_json()
    assert len(one) == 1 and one[0] == events[0]
    assert api("eo", "GET", f"/centres/{HOME}/audit?per_page=0").status_code == 400


# ------------------------------------------------------------------ suspension
def test_a_suspended_centre_cannot_act(api):
    for who in ("eo", "admin", "user"):
        api.token(who)  # signed in before the suspension
    assert api("board", "PUT", f"/centres/{HOME}/suspension", json_body={"suspended": True}).status_code == 200
    for who in ("eo", "admin", "user"):
        assert api(who, "GET", f"/accounts/{api.sub(who)}").status_code == 401, who
    assert api("other-admin", "GET", "/accounts").status_code == 200
    # an invite into a suspended centre is refused, even by board staff
    refused = api("board", "POST", "/accounts", json_body=new_person(role="eo"))
    assert refused.status_code == 403 and "suspended" in refused.get_json()["detail"]


# ------------------------------------------------------------------ unlock, MFA reset, resend invite
def test_unlock(api):
    from idp.accounts import lockout

    sub = api.sub("user")
    api.token("user")  # signed in before being locked out
    with api.app.app_context():
        account = people.account_by_sub(sub)
        for _ in range(policy.current().sec("lockout").max_failures):
            lockout.password_failed(account.email, lockout.reserve_password(account.email), reason="test")
        db.session.commit()
        assert lockout.locked_until("user@home.example") is not None
    assert api("user", "POST", f"/accounts/{api.sub('admin')}/unlock").status_code == 403
    assert api("other-admin", "POST", f"/accounts/{sub}/unlock").status_code == 403
    unlocked = api("admin", "POST", f"/accounts/{sub}/unlock")
    assert unlocked.status_code == 200 and unlocked.get_json()["sub"] == sub
    with api.app.app_context():
        assert lockout.locked_until("user@home.example") is None
    assert api("admin", "POST", f"/accounts/{api.sub('eo')}/unlock").status_code == 403
    # board staff give a reason, kept in the audit row; without one nothing happens
    unreasoned = api("board", "POST", f"/accounts/{api.sub('eo')}/unlock")
    assert unreasoned.status_code == 400 and unreasoned.get_json()["field"] == "reason"
    assert api("board", "POST", f"/accounts/{api.sub('eo')}/unlock", json_body={"reason": "  "}).status_code == 400
    assert api("board", "POST", f"/accounts/{api.sub('eo')}/unlock", json_body={"reason": 7}).status_code == 400
    assert api("board", "POST", f"/accounts/{api.sub('eo')}/unlock",
               json_body={"reason": "x", "extra": 1}).status_code == 400
    assert api("board", "POST", f"/accounts/{api.sub('eo')}/unlock",
               json_body={"reason": "Ticket 4411"}).status_code == 200
    with api.app.app_context():
        rows = db.session.query(AuditEvent).filter_by(event="account.unlocked", subject=api.sub("eo")).all()
        assert [(r.outcome, r.actor, r.details.get("reason")) for r in rows] == \
            [("success", api.sub("board"), "Ticket 4411")]
    assert api("admin", "POST", "/accounts/no-such-sub/unlock").status_code == 404


def test_mfa_reset(api):
    from idp.mfa.models import MfaMethod

    sub = api.sub("user")
    api.token("user")  # signed in (with the passkey) before the reset

    def methods(account_sub):
        with api.app.app_context():
            account = people.account_by_sub(account_sub)
            return db.session.query(MfaMethod).filter_by(account_id=account.id).count()

    assert methods(sub) == 1
    refusals = {
        "user on admin": api("user", "POST", f"/accounts/{api.sub('admin')}/mfa-reset"),
        "admin on eo": api("admin", "POST", f"/accounts/{api.sub('eo')}/mfa-reset"),
        "admin on itself": api("admin", "POST", f"/accounts/{api.sub('admin')}/mfa-reset"),
        "other centre": api("other-admin", "POST", f"/accounts/{sub}/mfa-reset"),
    }
    assert {k: r.status_code for k, r in refusals.items()} == dict.fromkeys(refusals, 403)
    assert methods(sub) == 1
    reset = api("eo", "POST", f"/accounts/{sub}/mfa-reset")
    assert reset.status_code == 200 and reset.get_json()["sub"] == sub
    assert methods(sub) == 0
    assert api("user", "GET", f"/accounts/{sub}").status_code == 401  # sessions and tokens ended
    refused = api("board", "POST", f"/accounts/{api.sub('eo')}/mfa-reset")
    assert refused.status_code == 400 and refused.get_json()["field"] == "reason"
    assert methods(api.sub("eo")) == 1
    assert api("board", "POST", f"/accounts/{api.sub('eo')}/mfa-reset",
               json_body={"reason": "Lost phone, ticket 12"}).status_code == 200
    assert methods(api.sub("eo")) == 0


def test_resend_invite(api, settings):
    body = api("eo", "POST", "/accounts", json_body=new_person()).get_json()
    first = temporary_password_for(settings, "new.person@home.example")
    for path in Path(settings.mail_outbox_dir).glob("*.eml"):
        path.unlink()
    resent = api("admin", "POST", f"/accounts/{body['sub']}/invite")
    assert resent.status_code == 200 and resent.get_json()["status"] == "invited"
    second = temporary_password_for(settings, "new.person@home.example")
    assert second != first
    with api.app.app_context():
        account = people.account_by_sub(body["sub"])
        assert passwords.verify(account.password_hash, second)[0]
        assert not passwords.verify(account.password_hash, first)[0]
    assert api("user", "POST", f"/accounts/{body['sub']}/invite").status_code == 403
    assert api("other-admin", "POST", f"/accounts/{body['sub']}/invite").status_code == 403
    already = api("eo", "POST", f"/accounts/{api.sub('user')}/invite")
    assert already.status_code == 409
    # board staff must say why; an EO need not (above)
    refused = api("board", "POST", f"/accounts/{body['sub']}/invite")
    assert refused.status_code == 400 and refused.get_json()["field"] == "reason"
    assert temporary_password_for(settings, "new.person@home.example") == second  # nothing sent
    assert api("board", "POST", f"/accounts/{body['sub']}/invite",
               json_body={"reason": "Invite email lost"}).status_code == 200


# ------------------------------------------------------------------ client services (board staff)
def test_clients(api):
    listed = api("board", "GET", "/clients")
    assert listed.status_code == 200 and api.rp.client_id in {c["client_id"] for c in listed.get_json()}

    created = api("board", "POST", "/clients", json_body={
        "client_name": "Entries", "redirect_uris": ["https://entries.example/cb"],
        "allowed_profiles": ["entries.view", "entries.make"]})
    assert created.status_code == 201, created.get_json()
    client = created.get_json()
    assert client["client_secret"] and client["allowed_profiles"] == ["entries.make", "entries.view"]
    cid = client["client_id"]

    fetched = api("board", "GET", f"/clients/{cid}")
    assert fetched.status_code == 200 and "client_secret" not in fetched.get_json()
    updated = api("board", "PUT", f"/clients/{cid}", json_body={
        "client_name": "Entries 2", "redirect_uris": ["https://entries.example/cb2"],
        "require_pushed_authorization_requests": True})
    assert updated.status_code == 200 and updated.get_json()["client_name"] == "Entries 2"
    assert updated.get_json()["require_pushed_authorization_requests"] is True
    assert api("board", "PUT", f"/clients/{cid}", json_body={
        "client_name": "Entries 2", "redirect_uris": ["https://entries.example/cb2"],
        "require_pushed_authorization_requests": "yes"}).status_code == 400
    rotated = api("board", "POST", f"/clients/{cid}/secret")
    assert rotated.status_code == 200 and rotated.get_json()["client_secret"] not in ("", client["client_secret"])
    disabled = api("board", "PUT", f"/clients/{cid}/disabled", json_body={"disabled": True})
    assert disabled.status_code == 200 and disabled.get_json()["disabled"] is True
    assert api("board", "PUT", f"/clients/{cid}/disabled", json_body={"disabled": 1}).status_code == 400

    bad = api("board", "POST", "/clients", json_body={"client_name": "No redirect"})
    assert bad.status_code == 400
    bad_uri = api("board", "POST", "/clients", json_body={"client_name": "X", "redirect_uris": ["not a uri"]})
    assert bad_uri.status_code == 400

    for who in ("eo", "admin", "user"):
        assert api(who, "GET", "/clients").status_code == 403, who
        assert api(who, "DELETE", f"/clients/{cid}").status_code == 403, who

    assert api("board", "DELETE", f"/clients/{cid}").status_code == 204
    assert api("board", "GET", f"/clients/{cid}").status_code == 404
    assert api("board", "DELETE", f"/clients/{cid}").status_code == 404
    assert api("board", "POST", f"/clients/{cid}/secret").status_code == 404


@pytest.mark.parametrize("change", [
    *({field: [uri] if field.endswith("_uris") else uri}
      for field in ("redirect_uris", "post_logout_redirect_uris", "jwks_uri", "backchannel_logout_uri",
                    "initiate_login_uri")
      for uri in ("https://[::1/cb", "https://[x]/cb", "https://a.example/bye\r\nSet-Cookie: x=1")),
    {"allowed_profiles": [["entries.view"]]},
    {"scope": "openid \x00"},
], ids=repr)
def test_client_metadata_that_could_not_be_stored_or_used_is_a_400(api, change):
    body = {"client_name": "Entries", "redirect_uris": ["https://entries.example/cb"], **change}
    created = api("board", "POST", "/clients", json_body=body)
    assert created.status_code == 400, created.get_json()
    before = api("board", "GET", f"/clients/{api.results.client_id}").get_json()
    replaced = api("board", "PUT", f"/clients/{api.results.client_id}", json_body=body)
    assert replaced.status_code == 400, replaced.get_json()
    assert api("board", "GET", f"/clients/{api.results.client_id}").get_json() == before
    assert "Entries" not in {c["client_name"] for c in api("board", "GET", "/clients").get_json()}


# ------------------------------------------------------------------ bad input: an answer, never a 500
@pytest.mark.parametrize("body,field", [
    (new_person(role=["user"]), "role"),
    (new_person(given_name="Ada\x00"), "given_name"),
    (new_person(family_name={"a": 1}), "family_name"),
    (new_person(profiles="results.view"), "profiles"),
    (new_person(profiles=[1, 2]), "profiles"),
    (new_person(email=["a@b.example"]), "email"),
])
def test_wrong_types_and_control_characters_name_the_field(api, body, field):
    response = api("eo", "POST", "/accounts", json_body=body)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["field"] == field


def test_deeply_nested_or_broken_json_is_a_400(api):
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {api.token('eo')}"}
    for raw in ("[" * 100_000, '{"a":' * 5000 + "1" + "}" * 5000, "{not json", "\xff\xfe".encode("latin-1")):
        response = api.http.post(PREFIX + "/accounts", data=raw, headers=headers)
        assert response.status_code == 400 and response.mimetype == PROBLEM, response.get_data()[:200]
    response = api.http.post("/register", data="[" * 100_000, headers={"Content-Type": "application/json",
                                                                     "Authorization": "Bearer x"})
    assert response.status_code in (400, 401)


@pytest.mark.parametrize("method,path,body", [
    ("PATCH", "/accounts/{user}", {"given_name": "SURROGATE"}),
    ("POST", "/accounts", new_person(family_name="SURROGATE")),
    ("POST", "/clients", {"client_name": "SURROGATE", "redirect_uris": ["https://entries.example/cb"]}),
    ("POST", "/clients", {"client_name": "Entries", "redirect_uris": ["https://entries.example/cb"],
                          "scope": "openid SURROGATE"}),
])
def test_a_lone_surrogate_is_a_400_and_changes_nothing(api, method, path, body):
    """\\ud800 in JSON parses to a string no database can store: refused as the body is read."""
    who = "board" if path == "/clients" else "eo"
    before = api(who, "GET", "/accounts" if path != "/clients" else "/clients").get_json()
    raw = json.dumps(body).replace("SURROGATE", "x\\ud800")
    response = api(who, method, path.format(user=api.sub("user")), data=raw,
                   headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "surrogate" in response.get_json()["detail"], response.get_json()
    assert api(who, "GET", "/accounts" if path != "/clients" else "/clients").get_json() == before


@pytest.mark.parametrize("version", [2**31, 2**63, 10**30, 1e300])
def test_a_version_beyond_what_is_stored_is_a_400(api, version):
    """The account's version is a 32-bit INTEGER: a larger one overflowed in the query (a 500)."""
    sub = api.sub("user")
    before = api("board", "GET", f"/accounts/{sub}").get_json()
    for method, path, body in (("PATCH", "", {"given_name": "Changed"}),
                               ("PUT", "/profiles", {"profiles": ["resources"]}),
                               ("PUT", "/role", {"role": "admin"}),
                               ("PUT", "/email", {"email": "moved@home.example", "reason": "Ticket 5"})):
        refused = api("board", method, f"/accounts/{sub}{path}", json_body={**body, "version": version})
        assert refused.status_code == 400, (path, refused.get_json())
        assert refused.get_json()["field"] == "version" and "2147483647" in refused.get_json()["detail"]
    assert api("board", "GET", f"/accounts/{sub}").get_json() == before


def test_a_long_bad_value_is_quoted_only_in_part(api):
    response = api("eo", "PUT", f"/accounts/{api.sub('user')}/profiles", json_body={"profiles": ["p" * 5000]})
    assert response.status_code == 400 and len(response.get_data()) < 800, response.get_data()[:300]


# ------------------------------------------------------------------ the board console's services, for automation
def test_rename_centre(api):
    renamed = api("board", "PATCH", f"/centres/{HOME}", json_body={"name": "  Home School (renamed) "})
    assert renamed.status_code == 200 and renamed.get_json() == {"number": HOME, "name": "Home School (renamed)",
                                                                  "suspended": False}
    assert api("eo", "PATCH", f"/centres/{HOME}", json_body={"name": "Mine now"}).status_code == 403
    for body in ({"name": ""}, {"name": 5}, {}, {"name": "x", "suspended": True}, {"name": "a\x00b"}):
        assert api("board", "PATCH", f"/centres/{HOME}", json_body=body).status_code == 400, body
    assert api("board", "PATCH", "/centres/99999", json_body={"name": "Nowhere"}).status_code == 404
    assert api("board", "GET", "/centres").get_json()[0]["name"] == "Home School (renamed)"


def test_rotate_a_client_secret_with_a_grace_period(api, client):
    import base64
    import time

    import time_machine

    client_id = api.results.client_id

    def token_with(secret):
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        return client.post("/token", data={"grant_type": "refresh_token", "refresh_token": "x"},
                           headers={"Authorization": f"Basic {basic}"}).status_code

    old = api.results.client_secret
    assert token_with(old) == 400  # authenticated (a bad refresh token is the only problem)
    rotated = api("board", "POST", f"/clients/{client_id}/secret", json_body={"grace_seconds": 600})
    assert rotated.status_code == 200
    new = rotated.get_json()["client_secret"]
    assert token_with(new) == 400 and token_with(old) == 400
    with time_machine.travel(time.time() + 601, tick=False):
        assert token_with(old) == 401 and token_with(new) == 400
    for body in ({"grace_seconds": -1}, {"grace_seconds": 2592001}, {"grace_seconds": "60"}, {"grace": 5}):
        assert api("board", "POST", f"/clients/{client_id}/secret", json_body=body).status_code == 400, body
    assert token_with(new) == 400
    assert api("board", "POST", f"/clients/{client_id}/secret").status_code == 200  # no body: no grace
    assert token_with(new) == 401


@pytest.mark.parametrize("who", ["user", "admin", "eo", "board"])
def test_nobody_changes_their_own_address_through_the_api(api, who):
    """Tokens say the address is verified: one's own changes only from My account, where a code sent
    to the new address proves it is theirs. Through the API, at once, it would let anyone take an
    address they do not own (and keep its owner from being invited)."""
    sub = api.sub(who)
    refused = api(who, "PUT", f"/accounts/{sub}/email", json_body={"email": "head@school.example", "reason": "r"})
    assert refused.status_code == 403
    assert refused.get_json()["detail"] == reason(api.app, "may_change_email", party(api.app, sub), party(api.app, sub))
    with api.app.app_context():
        assert people.account_by_sub(sub).email == PEOPLE[who][0]


def test_change_email_with_a_reason(api):
    sub = api.sub("user")
    refused = api("board", "PUT", f"/accounts/{sub}/email", json_body={"email": "moved@home.example"})
    assert refused.status_code == 400 and refused.get_json()["field"] == "reason"
    done = api("board", "PUT", f"/accounts/{sub}/email", json_body={"email": "moved@home.example",
                                                                  "reason": "Ticket 5"})
    assert done.status_code == 200 and done.get_json()["email"] == "moved@home.example"
    assert api("board", "PUT", f"/accounts/{sub}/email", json_body={"email": "x@home.example", "reason": "r",
                                                                    "note": 1}).status_code == 400
    # the body of an action without one must still be JSON if there is one
    assert api("board", "POST", f"/accounts/{sub}/unlock", data="reason=x",
               headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 400


def test_handing_an_account_over_needs_a_recent_second_factor_in_the_tokens_session(api):
    """A token issued in a browser session whose second factor was passed long ago (a console left
    signed in that silently gets a new token) may not change someone's address or remove their
    second factors: 403, until the person confirms it is them again in that session."""
    from idp.accounts.models import SsoSession
    from idp.extensions import db

    api.token("eo")
    with api.app.app_context():
        for entry in db.session.query(SsoSession).filter(SsoSession.ended_at.is_(None)):
            entry.mfa_at = 0
        db.session.commit()
    for method, path, body in (("PUT", f"/accounts/{api.sub('admin')}/email", {"email": "sitter@home.example"}),
                               ("POST", f"/accounts/{api.sub('admin')}/mfa-reset", None)):
        refused = api("eo", method, path, json_body=body)
        assert refused.status_code == 403, refused.get_json()
        assert refused.get_json()["detail"] == "Confirm it is you with a second factor first."
    with api.app.app_context():
        for entry in db.session.query(SsoSession).filter(SsoSession.ended_at.is_(None)):
            entry.mfa_at = int(time.time())
        db.session.commit()
    done = api("eo", "PUT", f"/accounts/{api.sub('admin')}/email", json_body={"email": "sitter@home.example"})
    assert done.status_code == 200, done.get_json()
