"""Hypothesis over every form a person fills in: whatever text (any code point, control characters,
markup, very long values, unknown extra fields) arrives in whichever field, the answer is a page
with a message, a redirect or a refusal: never a server error."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import PASSWORD, add_totp, make_account

#: input handling, not storage: fuzzed on one backend (PostgreSQL + Redis in CI)
pytestmark = pytest.mark.one_backend

ADA = "ada@centre.example"
TEXT = st.one_of(st.text(max_size=60), st.text(alphabet=st.characters(codec="utf-8"), max_size=3000),
                 st.sampled_from(["", " ", "\x00", "<script>", "ａｄａ@centre.example", ADA, "0" * 6, "9" * 300]))


def fields(*names):
    known = st.fixed_dictionaries({}, optional={name: TEXT for name in names})
    extra = st.dictionaries(st.text(min_size=1, max_size=20), TEXT, max_size=3)
    return st.tuples(known, extra).map(lambda pair: {**pair[1], **pair[0]})


FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture
def mail_app(make_settings, smtp, unlimited_policies_dir):
    """The provider without rate limits (they would answer most of the examples before any form
    is read)."""
    from idp import create_app

    app = create_app(make_settings(mail=smtp.settings(), policies={"dir": str(unlimited_policies_dir)}))
    app.config["TESTING"] = True
    yield app
    app.extensions["idp.db"].dispose()
    app.extensions["idp.store"].close()


def _post(person, path, data, csrf_from=None):
    token = person.csrf(csrf_from or path)
    response = person.http.post(path, data={**data, "csrf_token": token})
    assert response.status_code < 500, (path, response.status_code, data)
    return response


def test_sign_in_and_forgotten_password_forms(mail_app, browser, kit):
    app = mail_app
    with app.app_context():
        make_account(ADA)
    person = browser(app)

    @FUZZ
    @given(data=fields("email", "authreq", "password", "code"))
    def fuzz(data):
        _post(person, "/signin", data)
        person.begin(ADA)
        _post(person, "/signin/password", data)
        _post(person, "/forgot", data)
        person.forgot(ADA)
        _post(person, "/forgot/code", data)
        person.http.post("/signin", data=data)  # without a CSRF token: refused, not a crash

    fuzz()


def test_signed_in_forms(mail_app, browser, kit):
    app = mail_app
    with app.app_context():
        make_account(ADA)
    person = browser(app)
    assert person.sign_in_fully(ADA, PASSWORD).location.endswith("/account")

    @FUZZ
    @given(data=fields("title", "given_name", "family_name", "job_role", "language", "phone", "current",
                       "password", "everywhere"))
    def fuzz(data):
        _post(person, "/account/profile", data)
        _post(person, "/account/password", {k: v for k, v in data.items() if k != "current"})

    fuzz()
    assert person.signed_in()


def test_second_factor_forms(mail_app, browser, kit):
    app = mail_app
    with app.app_context():
        from idp.extensions import db

        secret = add_totp(make_account(ADA, mfa=False))
        db.session.commit()
    assert secret

    @FUZZ
    @given(data=fields("kind", "method_id", "code", "ceremony", "credential", "label", "phone", "action", "method"))
    def fuzz(data):
        person = browser(app)
        person.begin(ADA)
        person.password(PASSWORD)
        _post(person, "/signin/mfa", data)

    fuzz()


def test_oversized_bodies_are_refused_whole(mail_app, browser):
    """Over the request limit (idp.errors.MAX_REQUEST_BYTES): 413 on a page, as an OAuth error at the
    token endpoint, as a problem under /api/v1; nothing is echoed back."""
    person = browser(mail_app)
    huge = "x" * (10 * 1024 * 1024)
    page = person.http.post("/signin", data={"email": huge, "csrf_token": person.csrf("/signin")})
    assert page.status_code == 413 and huge[:1000] not in page.get_data(as_text=True)
    token = person.http.post("/token", data={"grant_type": huge})
    assert token.status_code == 413 and token.get_json()["error"] == "invalid_request"
    assert len(token.get_data()) < 500
    api = person.http.post("/api/v1/accounts", data=huge, content_type="application/json")
    assert api.status_code == 413 and api.mimetype == "application/problem+json"


def test_a_long_unknown_grant_type_is_quoted_only_in_part(mail_app, browser):
    person = browser(mail_app)
    answer = person.http.post("/token", data={"grant_type": "g" * 50_000, "client_id": "x"})
    assert answer.status_code in (400, 401)
    assert len(answer.get_data()) < 1000
