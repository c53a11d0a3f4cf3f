"""Bad input on every sign-in form: empty, missing, 10 kB, repeated fields, non-UTF-8 bytes, a file
where text belongs, a JSON body, missing / wrong CSRF token, a replayed reset code. Each answer is a
form message or a 400, never a 500, and the account row (and the live sessions) are unchanged.
DESIGN.md §5."""

from __future__ import annotations

import io
import re
import shutil
from dataclasses import dataclass
from urllib.parse import quote_plus

import pytest

from tests.support import PASSWORD, make_account, spoiled

# one backend: how bad input is answered (on PostgreSQL, the stricter about input)
pytestmark = pytest.mark.one_backend

ADA = "ada@centre.example"
NEW = "Tulip-harbour-93"
TEN_KB = "A" * 10_240


@pytest.fixture
def site(make_settings, smtp, tmp_path, kit, test_policies_dir):
    """The provider with generous rate limits (so every payload reaches the form, not a 429) and
    exceptions turned into 500 responses as in production."""
    folder = tmp_path / "policies"
    shutil.copytree(test_policies_dir, folder)  # the tests' policies (cheap argon2)
    security = folder / "security.toml"
    text = security.read_text()
    relaxed = re.sub(r'^(sign_in_per_ip|sign_in_per_email|forgot_password_per_ip) = ".*"$', r'\1 = "1000 per minute"',
                     text, flags=re.M)
    assert relaxed.count('"1000 per minute"') == 3, text
    security.write_text(relaxed)
    app = kit.build_app(make_settings(mail=smtp.settings(), policies={"dir": str(folder)}))
    app.config["PROPAGATE_EXCEPTIONS"] = False
    with app.app_context():
        make_account(ADA)
    yield app
    app.extensions["idp.db"].dispose()
    app.extensions["idp.store"].close()


def _encode(pairs) -> bytes:
    """An urlencoded body; bytes values go in as they are (to send bytes that are not UTF-8)."""
    out = []
    for key, value in pairs:
        out.append(key.encode() + b"=" + (value if isinstance(value, bytes) else quote_plus(value).encode()))
    return b"&".join(out)


BASIC, FILE, UNDECODABLE = "basic", "file", "undecodable"


def variants(fields: dict, csrf: str, kind: str):
    """(name, request kwargs) for one kind of bad input; ``fields`` are well-formed values."""
    def form(**changes):
        data = {**fields, **changes}
        return [(k, v) for k, v in data.items() if v is not None]

    def urlencoded(pairs):
        return {"data": _encode(pairs), "content_type": "application/x-www-form-urlencoded"}

    for name in fields:
        if kind == BASIC:
            yield f"{name} empty", urlencoded([("csrf_token", csrf)] + form(**{name: ""}))
            yield f"{name} missing", urlencoded([("csrf_token", csrf)] + form(**{name: None}))
            yield f"{name} 10 kB", urlencoded([("csrf_token", csrf)] + form(**{name: TEN_KB}))
            yield f"{name} repeated", urlencoded([("csrf_token", csrf), (name, TEN_KB), (name, "")]
                                                 + form(**{name: None}))
            yield f"{name} raw bytes that are not UTF-8", urlencoded([("csrf_token", csrf)]
                                                                     + form(**{name: b"\xff\xfe\xc3\x28" * 3}))
        if kind == UNDECODABLE:
            # Raw bytes that are not UTF-8 in a multipart body: Werkzeug decodes them to U+FFFD, losing
            # what was sent. (A percent-escape that is not UTF-8, like %C3%28, Werkzeug keeps as the
            # literal text "%C3(" - something a person can type, so it is ordinary input.)
            parts = [("csrf_token", csrf.encode())] + [(k, v.encode() if isinstance(v, str) else v)
                                                       for k, v in form(**{name: b"\xc3\x28" * 6})]
            boundary = b"idp-test-boundary"
            body = b"".join(b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"" + k.encode()
                            + b"\"\r\n\r\n" + v + b"\r\n" for k, v in parts) + b"--" + boundary + b"--\r\n"
            yield f"{name} raw bytes that are not UTF-8", {
                "data": body, "content_type": "multipart/form-data; boundary=" + boundary.decode()}
        if kind == FILE:
            yield f"{name} sent as a file", {
                "data": {"csrf_token": csrf, **{k: v for k, v in fields.items() if k != name},
                         name: (io.BytesIO(b"not text"), "x.txt")},
                "content_type": "multipart/form-data"}
    if kind == BASIC:
        yield "JSON body", {"json": {**{k: [v] for k, v in fields.items()}, "csrf_token": csrf}}
        yield "empty body", {"data": b"", "content_type": "application/x-www-form-urlencoded"}
        yield "no CSRF token", urlencoded(form())
        yield "wrong CSRF token", urlencoded([("csrf_token", spoiled(csrf))] + form())
        yield "10 kB CSRF token", urlencoded([("csrf_token", TEN_KB)] + form())
        yield "CSRF token not UTF-8", urlencoded([("csrf_token", b"%ff%fe")] + form())
        yield "CSRF token repeated", urlencoded([("csrf_token", "x"), ("csrf_token", csrf)] + form())
        yield "CSRF token as a file", {"data": {**fields, "csrf_token": (io.BytesIO(csrf.encode()), "t.txt")},
                                       "content_type": "multipart/form-data"}


@dataclass
class Form:
    """A form ready for input: the browser is at the step that shows it."""

    person: object
    path: str
    fields: dict
    email: str
    csrf_from: str | None = None
    still_there: str | None = None


def prepare(site, smtp, browser, kit, path: str) -> Form:
    """The browser at the step showing ``path``, for an account of its own (so that what one form
    does cannot spoil another's set-up)."""
    person = browser(site)
    email = "u" + path.replace("/", "-") + "@centre.example"
    if path == "/signin/new-password":
        kit.invite(site, email, by=ADA)
        temp = kit.temporary_password(smtp.take(email, kit.INVITE_SUBJECT))
        assert person.sign_in(email, temp).location.endswith("/signin/new-password")
        return Form(person, path, {"password": NEW}, email=email, still_there=path)
    with site.app_context():
        make_account(email, role="user")
    if path == "/signin":
        return Form(person, path, {"email": email}, email=email)
    if path == "/signin/password":
        person.begin(email)
        return Form(person, path, {"password": PASSWORD}, email=email, still_there=path)
    if path == "/forgot":
        return Form(person, path, {"email": email}, email=email)
    if path == "/forgot/code":
        person.forgot(email)
        code = kit.reset_code(smtp.take(email, kit.RESET_SUBJECT))
        return Form(person, path, {"code": code, "password": NEW}, email=email, still_there=path)
    assert person.sign_in_fully(email, PASSWORD).location.endswith("/account")
    if path == "/account/password":
        return Form(person, path, {"current": PASSWORD, "password": NEW}, email=email, still_there="/account")
    assert path == "/signout"
    return Form(person, path, {}, csrf_from="/account", email=email, still_there="/account")


def problems_with(site, kit, form: Form, kind: str) -> list[str]:
    """Send every variant of one kind; return what went wrong (empty: all refused cleanly)."""
    csrf = form.person.csrf(form.csrf_from or form.path)
    problems = []
    for name, request in variants(form.fields, csrf, kind):
        before_row, before_sessions = kit.account_row(site, form.email), sorted(kit.live_sessions(site, form.email))
        response = form.person.http.post(form.path, **request)
        after_row, after_sessions = kit.account_row(site, form.email), sorted(kit.live_sessions(site, form.email))
        where = f"{form.path} {name}"
        if response.status_code != 400:
            problems.append(f"{where}: HTTP {response.status_code} {response.location or ''} (expected 400)")
        changed = [k for k in before_row if before_row[k] != after_row[k] and k != "updated_at"]
        if changed:
            problems.append(f"{where}: account row changed: " + ", ".join(
                f"{k} {before_row[k]!r} -> {after_row[k]!r}" for k in changed))
        if before_sessions != after_sessions:
            problems.append(f"{where}: live sessions changed")
        if form.still_there is not None and form.person.get(form.still_there).status_code != 200:
            problems.append(f"{where}: {form.still_there} no longer shows (the journey moved on or was lost)")
            break
    return problems


def refuses(site, smtp, browser, kit, path: str, kind: str = BASIC) -> Form:
    form = prepare(site, smtp, browser, kit, path)
    problems = problems_with(site, kit, form, kind)
    assert not problems, f"bad input to {path}:\n  " + "\n  ".join(problems)
    return form


ALL_FORMS = ["/signin", "/signin/password", "/signin/new-password", "/forgot", "/forgot/code",
             "/account/password", "/signout"]


def test_email_step(site, smtp, browser, kit):
    form = refuses(site, smtp, browser, kit, "/signin")
    assert form.person.get("/signin/password").status_code == 302  # no sign-in was started
    form.person.begin(form.email)  # and the form works with good input


def test_password_step(site, smtp, browser, kit):
    form = refuses(site, smtp, browser, kit, "/signin/password")
    assert kit.audit_events(site, "signin.password") == []
    assert form.person.password(PASSWORD).status_code == 303


def test_first_password_step(site, smtp, browser, kit):
    form = refuses(site, smtp, browser, kit, "/signin/new-password")
    assert kit.account_row(site, form.email)["status"] == "invited"
    assert form.person.new_password(NEW).status_code == 303


def test_forgot_password_request(site, smtp, browser, kit):
    form = refuses(site, smtp, browser, kit, "/forgot")
    smtp.assert_none(form.email, kit.RESET_SUBJECT, wait=0.3)  # no code was sent for any of them
    assert kit.audit_events(site, "password.reset_requested") == []
    assert form.person.forgot(form.email).status_code == 303


def test_reset_code_step_and_replayed_code(site, smtp, browser, kit):
    form = refuses(site, smtp, browser, kit, "/forgot/code")
    person, code = form.person, form.fields["code"]
    before_reset = person.cookie("idp_state")
    done = person.reset(code, NEW)
    assert done.status_code == 303, kit.messages(done)

    # the same code again (the browser state that held it restored): refused, nothing changes
    snapshot = kit.account_row(site, form.email)
    person.set_cookie("idp_state", before_reset)
    replay = person.reset(code, "Quiet-lantern-orbit-7")
    assert replay.status_code == 400 and kit.messages(replay) == [kit.BAD_CODE]
    assert kit.account_row(site, form.email) == snapshot


def test_change_password(site, smtp, browser, kit):
    form = refuses(site, smtp, browser, kit, "/account/password")
    assert form.person.change_password(PASSWORD, NEW).status_code == 303


def test_sign_out(site, smtp, browser, kit):
    form = refuses(site, smtp, browser, kit, "/signout")
    assert form.person.sign_out().status_code == 200
    assert kit.live_sessions(site, form.email) == []


@pytest.mark.parametrize("kind", [FILE, UNDECODABLE])
def test_every_form_refuses(kind, site, smtp, browser, kit):
    """A file where text belongs; bytes that are not UTF-8 (which Werkzeug turns into U+FFFD).
    All forms are made ready first, so one form's outcome cannot spoil another's set-up."""
    forms = [prepare(site, smtp, browser, kit, path) for path in ALL_FORMS]
    problems = [p for form in forms for p in problems_with(site, kit, form, kind)]
    assert not problems, f"{kind} input:\n  " + "\n  ".join(problems)
