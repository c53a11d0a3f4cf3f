"""Hypothesis over every console form and query string: whatever arrives in whichever field (any
code point, control characters, markup, very long values, repeated or unknown fields), the answer
is a page with a message, a redirect or a refusal, never a server error; and a refused change
leaves the person as they were."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idp.admin import people
from tests.integration.console.conftest import EO, USER

#: input handling, not storage: fuzzed on one backend (PostgreSQL + Redis in CI)
pytestmark = pytest.mark.one_backend

TEXT = st.one_of(st.text(max_size=60), st.text(alphabet=st.characters(codec="utf-8"), max_size=2000),
                 st.sampled_from(["", " ", "\x00", "<script>", "admin", "user", "eo", "resources", "1", "-1",
                                  "99999999999999999999", "eo@centre.example", "x@y.example\r\nBcc: z@y"]))
VALUES = st.one_of(TEXT, st.lists(TEXT, max_size=4))
FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


def fields(*names):
    known = st.fixed_dictionaries({}, optional={name: VALUES for name in names})
    extra = st.dictionaries(st.text(min_size=1, max_size=20), TEXT, max_size=3)
    return st.tuples(known, extra).map(lambda pair: {**pair[1], **pair[0]})


def _state(app, email):
    with app.app_context():
        account = people.account_by_email(email)
        return account.email, account.role, account.version, sorted(people.party_of(account).profiles)


def test_console_forms_never_fail(mail_app, signed_in, staff, pages):
    eo = signed_in(EO)
    user = staff.sub[USER]
    token = pages.hidden(eo.get("/users/invite"), "csrf_token")

    @FUZZ
    @given(data=fields("title", "given_name", "family_name", "email", "job_role", "language", "role", "profiles",
                       "version", "confirmed"))
    def fuzz(data):
        before = _state(mail_app, USER)
        for path in ("/users/invite", "/users/invite?change=1", "/users/invite/access", "/users/invite/check",
                     f"/users/{user}/access", f"/users/{user}/type", f"/users/{user}/email"):
            response = eo.http.post(path, data={**data, "csrf_token": token})
            assert response.status_code < 500, (path, response.status_code, data)
            if response.status_code >= 400:
                assert _state(mail_app, USER) == before, path
            else:
                before = _state(mail_app, USER)

    fuzz()


def test_console_queries_never_fail(mail_app, signed_in, staff):
    eo, board = signed_in(EO), signed_in("board@board.example")

    @FUZZ
    @given(query=fields("q", "role", "status", "page", "who", "kind", "person"))
    def fuzz(query):
        encoded = urlencode(query, doseq=True)
        for person, path in ((eo, "/users"), (eo, "/users/activity"), (board, "/users"),
                             (board, "/centres/12345/users"), (board, "/centres/12345/users/activity")):
            response = person.get(f"{path}?{encoded}")
            assert response.status_code < 500, (path, response.status_code, query)

    fuzz()
