"""My account and every signed-in page's header: the links each person gets (Manage users only for
those the policy lets manage users), sub-pages' back links, a typed /signout, who I am here (centre,
account type, access profiles, in the page's language), where I am signed in (browser, IP, last
active in UK time) with a sign-out for each, and recovery codes downloaded only by the session that
is shown them."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

import pytest
import time_machine
from flask import Blueprint
from sqlalchemy import select

from idp.accounts.models import Account, SsoSession
from idp.audit import AuditEvent
from idp.extensions import db
from tests.support import PASSWORD, _csrf, make_account, pass_passkey_challenge

EO, ADMIN, USER, BOARD = "eo@centre.example", "admin@centre.example", "user@centre.example", "board@board.example"
CHROME_ON_WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                     "Chrome/131.0.0.0 Safari/537.36")
FIREFOX_ON_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI_ON_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                    "Version/17.5 Mobile/15E148 Safari/604.1")


def browser(app, *, user_agent: str = CHROME_ON_WINDOWS, ip: str = "203.0.113.7"):
    http = app.test_client()
    http.environ_base.update(HTTP_USER_AGENT=user_agent, REMOTE_ADDR=ip)
    return http


def sign_in(http, email: str, lang: str = "en"):
    page = http.get(f"/signin?ui_locales={lang}")
    step = http.post("/signin", data={"email": email, "csrf_token": _csrf(page.get_data(as_text=True))})
    page = http.get(step.location)
    step = http.post(step.location, data={"password": PASSWORD, "csrf_token": _csrf(page.get_data(as_text=True))})
    step = pass_passkey_challenge(http, email, step.location)
    assert step.status_code == 303 and step.location.endswith("/account"), step.get_data(as_text=True)
    return http


def header(page: str) -> str:
    return page.split("<header", 1)[1].split("</header>", 1)[0]


def header_links(page: str) -> dict[str, str]:
    """The header's navigation: link text -> href (the sign-out button as "Sign out" -> its form's action)."""
    found = {html.unescape(re.sub(r"<[^>]+>", "", text)).strip(): href
             for href, text in re.findall(r'<a class="govuk-service-navigation__link" href="([^"]+)"[^>]*>(.*?)</a>',
                                          header(page), re.DOTALL)}
    signout = re.search(r'<form class="idp-service-navigation__form" method="post" action="([^"]+)"', header(page))
    if signout:
        found["Sign out"] = signout.group(1)
    return found


def back_link(page: str) -> str | None:
    found = re.search(r'<a href="([^"]+)" class="govuk-back-link">', page)
    return found.group(1) if found else None


# ------------------------------------------------------------------ the header
@pytest.mark.parametrize("email,role,profiles,manages", [
    (EO, "eo", None, True),
    (ADMIN, "admin", None, True),                       # admins hold users.manage by default
    (ADMIN, "admin", ["resources"], False),             # ...and manage nobody without it
    (USER, "user", None, False),
    (BOARD, "board", [], True),
])
def test_the_header_links_by_what_the_policy_lets_the_person_do(app, email, role, profiles, manages):
    with app.app_context():
        make_account(email, role=role, centre=None if role == "board" else "12345", profiles=profiles,
                     given_name="Siân", family_name="O'Brien <b>")
    http = sign_in(browser(app), email)
    for path in ("/account", "/account/profile", "/account/mfa", "/services", "/signout"):
        page = http.get(path).get_data(as_text=True)
        links = header_links(page)
        assert links["My account"] == "/account" and links["All services"] == "/services", (path, links)
        assert links["Sign out"] == "/signout"
        assert ("Manage users" in links) is manages, (path, links)
        # the person's name, escaped
        assert "Siân O&#39;Brien &lt;b&gt;" in header(page) and "<b>" not in header(page)
    if manages:
        assert header_links(http.get("/account").get_data(as_text=True))["Manage users"] == "/users"


def test_no_header_links_without_a_live_session(app):
    with app.app_context():
        make_account(EO)
    http = browser(app)
    assert header_links(http.get("/signin").get_data(as_text=True)) == {}
    sign_in(http, EO)
    page = http.get("/signout").get_data(as_text=True)
    signed_out = http.post("/signout", data={"csrf_token": _csrf(page)})
    assert "You have signed out" in signed_out.get_data(as_text=True)
    assert header_links(signed_out.get_data(as_text=True)) == {}  # ended by this very request
    assert header_links(http.get("/signin").get_data(as_text=True)) == {}


def test_the_sign_in_pages_name_no_one_while_another_session_is_live(app):
    """Signing in again (prompt=login, or someone else on a shared computer) while this browser
    still holds a session: the journey's pages do not show that session's person and links."""
    with app.app_context():
        make_account(EO, given_name="Siân", family_name="Jones")
    http = sign_in(browser(app), EO)
    assert "Siân Jones" in header(http.get("/account").get_data(as_text=True))
    form = http.get("/signin?prompt=login").get_data(as_text=True)
    http.post("/signin", data={"email": "someone.else@centre.example", "csrf_token": _csrf(form)})
    for path in ("/signin", "/forgot", "/signin/password"):
        page = http.get(path)
        assert page.status_code == 200, path
        assert header_links(page.get_data(as_text=True)) == {} and "Siân Jones" not in page.get_data(as_text=True)
    assert "Siân Jones" in header(http.get("/account").get_data(as_text=True))  # still signed in


def test_the_session_is_looked_up_once_per_page(app):
    """The rate limiter's key, the view and the header share one look-up."""
    from idp.accounts import sessions

    with app.app_context():
        make_account(EO)
    http = sign_in(browser(app), EO)
    calls = []
    real = sessions.find

    def counting(cookie):
        calls.append(cookie)
        return real(cookie)

    sessions.find = counting
    try:
        assert http.get("/account/mfa").status_code == 200
        assert http.get("/account").status_code == 200
    finally:
        sessions.find = real
    assert len(calls) == 2


def test_requests_made_inside_one_app_context_each_look_up_their_own_session(app):
    with app.app_context():
        make_account(EO)
        http = sign_in(browser(app), EO)
        assert http.get("/account").status_code == 200
        page = http.get("/signout").get_data(as_text=True)
        http.post("/signout", data={"csrf_token": _csrf(page)})
        assert http.get("/account").status_code == 302  # not the session an earlier request found


def test_an_error_page_still_draws_when_the_request_fails_after_the_session_was_read(app):
    from idp.web.pages import signed_in

    app.config["PROPAGATE_EXCEPTIONS"] = False
    broken = Blueprint("broken", __name__)

    @broken.get("/account/broken")
    def fails():
        assert signed_in() is not None
        raise RuntimeError("the server dropped mid-request")

    app.register_blueprint(broken)
    with app.app_context():
        make_account(EO)
    http = sign_in(browser(app), EO)
    failed = http.get("/account/broken")
    assert failed.status_code == 500 and "Traceback" not in failed.get_data(as_text=True)
    assert "Sorry, there is a problem with the service" in failed.get_data(as_text=True)
    assert http.get("/account").status_code == 200  # and the next page is whole again


# ------------------------------------------------------------------ back links, and a typed /signout
def test_sub_pages_have_back_links_and_top_pages_none(app):
    with app.app_context():
        make_account(EO)
    http = sign_in(browser(app), EO)
    for path, back in (("/account", None), ("/services", None), ("/account/profile", "/account"),
                       ("/account/password", "/account"), ("/account/email", "/account"),
                       ("/account/mfa", "/account"), ("/account/mfa/add", "/account/mfa")):
        page = http.get(path)
        assert page.status_code == 200, path
        assert back_link(page.get_data(as_text=True)) == back, path


def test_a_typed_signout_asks_first(app):
    with app.app_context():
        make_account(EO)
    http = sign_in(browser(app), EO)
    elsewhere = sign_in(browser(app, user_agent=FIREFOX_ON_LINUX), EO)
    asked = http.get("/signout")
    page = asked.get_data(as_text=True)
    assert asked.status_code == 200 and "Do you want to sign out?" in page
    assert re.search(r'<button type="submit" [^>]*class="govuk-button"[^>]*>\s*Sign out\s*</button>', page)
    assert re.search(r'<button type="submit" value="1" name="everywhere"[^>]*>\s*Sign out everywhere\s*</button>', page)
    assert http.get("/account").status_code == 200  # asking signed nobody out

    # a POST without the page's token (another site's form) signs nobody out
    assert http.post("/signout", data={"everywhere": "1"}).status_code == 400
    assert http.get("/account").status_code == 200 and elsewhere.get("/account").status_code == 200

    done = http.post("/signout", data={"csrf_token": _csrf(page)})
    assert "You have signed out" in done.get_data(as_text=True)
    assert http.get("/account").status_code == 302 and elsewhere.get("/account").status_code == 200
    # typed again once signed out: nothing to ask
    again = http.get("/signout")
    assert again.status_code == 200 and "You have signed out" in again.get_data(as_text=True)


def test_sign_out_everywhere_from_the_confirmation(app):
    with app.app_context():
        make_account(EO)
    http = sign_in(browser(app), EO)
    elsewhere = sign_in(browser(app, user_agent=FIREFOX_ON_LINUX), EO)
    page = http.get("/signout").get_data(as_text=True)
    http.post("/signout", data={"csrf_token": _csrf(page), "everywhere": "1"})
    assert http.get("/account").status_code == 302 and elsewhere.get("/account").status_code == 302


# ------------------------------------------------------------------ who I am here
@pytest.mark.parametrize("lang,account_type,profile,description", [
    ("en", "Admin", "View entries", "View candidate entries without changing them."),
    ("cy", "Gweinyddwr", "Gweld cofrestriadau", "Gweld cofrestriadau ymgeiswyr heb eu newid."),
])
def test_my_account_says_who_i_am_here(app, lang, account_type, profile, description):
    with app.app_context():
        make_account(ADMIN, role="admin", profiles=["entries.view", "resources"])
    page = sign_in(browser(app), ADMIN, lang).get(f"/account?ui_locales={lang}").get_data(as_text=True)
    assert "12345 Test Centre" in page
    assert f'<dd class="govuk-summary-list__value">\n      {account_type}' in page or \
        re.search(rf">\s*{account_type}\s*<", page)
    assert re.search(rf">\s*{re.escape(profile)}\s*<", page)
    assert html.unescape(description) in html.unescape(page)
    assert "Make entries" not in page and "Gwneud cofrestriadau" not in page  # not held


# ------------------------------------------------------------------ where I am signed in
def _sessions_of(page: str) -> list[str]:
    return [html.unescape(t).strip() for t in re.findall(r'<h3 class="govuk-summary-card__title">(.*?)<', page, re.DOTALL)]


def _last_active(page: str) -> list[str]:
    """The session cards' "Last active" values (the only summary values that end in a time)."""
    return re.findall(r'<dd class="govuk-summary-list__value">([^<]*\d{2}:\d{2})</dd>', page)


def test_sessions_show_browser_ip_and_last_active_in_uk_time(app):
    with app.app_context():
        make_account(EO, language="en")
    # 1 July 2026, 11:30 UTC: 12:30 in London (British Summer Time)
    with time_machine.travel(datetime(2026, 7, 1, 11, 30, tzinfo=UTC), tick=False):
        laptop = sign_in(browser(app, ip="203.0.113.7"), EO)
        sign_in(browser(app, user_agent=SAFARI_ON_IPHONE, ip="198.51.100.23"), EO)
        sign_in(browser(app, user_agent="", ip="2001:db8::1"), EO)
        english = laptop.get("/account").get_data(as_text=True)
        welsh = laptop.get("/account?ui_locales=cy").get_data(as_text=True)
    assert sorted(_sessions_of(english)) == ["An unknown browser", "Chrome on Windows", "Mobile Safari on iOS"]
    for ip in ("203.0.113.7", "198.51.100.23", "2001:db8::1"):
        assert ip in english
    assert _last_active(english) == ["1 July 2026, 12:30"] * 3 and "11:30" not in english
    assert _last_active(welsh) == ["1 Gorffennaf 2026, 12:30"] * 3
    assert english.count("This device") >= 1  # the laptop's own card is marked


def test_each_session_has_its_own_sign_out(app):
    with app.app_context():
        make_account(EO)
    laptop = sign_in(browser(app), EO)
    phone = sign_in(browser(app, user_agent=SAFARI_ON_IPHONE), EO)
    desktop = sign_in(browser(app, user_agent=FIREFOX_ON_LINUX), EO)
    with app.app_context():
        by_browser = {s.user_agent: s.sid for s in db.session.scalars(select(SsoSession))}
    page = laptop.get("/account").get_data(as_text=True)
    assert page.count('action="/account/sessions/end"') == 3
    ended = laptop.post("/account/sessions/end", data={"csrf_token": _csrf(page), "sid": by_browser[SAFARI_ON_IPHONE]})
    assert ended.status_code == 303
    told = laptop.get(ended.location).get_data(as_text=True)
    assert "You have signed out of Mobile Safari on iOS." in told
    assert sorted(_sessions_of(told)) == ["Chrome on Windows", "Firefox on Linux"]
    # only that one ended
    assert phone.get("/account").status_code == 302
    assert laptop.get("/account").status_code == 200 and desktop.get("/account").status_code == 200
    # once ended, it cannot be ended again
    again = laptop.post("/account/sessions/end", data={"csrf_token": _csrf(page), "sid": by_browser[SAFARI_ON_IPHONE]})
    assert again.status_code == 400 and "That sign-in has already ended." in again.get_data(as_text=True)
    # this browser's own card signs this browser out
    own = laptop.post("/account/sessions/end", data={"csrf_token": _csrf(page), "sid": by_browser[CHROME_ON_WINDOWS]})
    assert "You have signed out" in own.get_data(as_text=True)
    assert laptop.get("/account").status_code == 302 and desktop.get("/account").status_code == 200


def test_no_one_ends_someone_elses_session(app):
    with app.app_context():
        make_account(EO)
        make_account(USER, role="user")
    mine = sign_in(browser(app), USER)
    theirs = sign_in(browser(app), EO)
    with app.app_context():
        eo = db.session.scalar(select(Account).where(Account.email == EO))
        their_sid = db.session.scalar(select(SsoSession.sid).where(SsoSession.account_id == eo.id))
    page = mine.get("/account").get_data(as_text=True)
    for sid in (their_sid, "no-such-session", "x" * 5000, ""):
        refused = mine.post("/account/sessions/end", data={"csrf_token": _csrf(page), "sid": sid})
        assert refused.status_code == 400, sid[:20]
    # the same words whoever's it is: nothing tells that the id belongs to someone
    refused = mine.post("/account/sessions/end", data={"csrf_token": _csrf(page), "sid": their_sid})
    assert "That sign-in has already ended." in refused.get_data(as_text=True)
    assert theirs.get("/account").status_code == 200 and mine.get("/account").status_code == 200
    with app.app_context():
        denied = db.session.scalars(select(AuditEvent).where(AuditEvent.event == "session.ended",
                                                             AuditEvent.outcome == "denied")).all()
        assert denied and all(e.details["reason"] == "not_own_session" for e in denied)
    # and without the page's token, nothing at all
    assert mine.post("/account/sessions/end", data={"sid": their_sid}).status_code == 400
    assert theirs.get("/account").status_code == 200


# ------------------------------------------------------------------ recovery codes as a file
def _codes_on(page: str) -> list[str]:
    return [c.split("</code>")[0] for c in page.split("<li><code>")[1:]]


def test_recovery_codes_download_only_to_the_session_shown_them(app):
    with app.app_context():
        make_account(EO)
    shown_them = sign_in(browser(app), EO)
    other = sign_in(browser(app, user_agent=FIREFOX_ON_LINUX), EO)
    manage = shown_them.get("/account/mfa").get_data(as_text=True)
    made = shown_them.post("/account/mfa/recovery-codes", data={"csrf_token": _csrf(manage), "action": "regenerate"})
    page = made.get_data(as_text=True)
    codes = _codes_on(page)
    assert len(codes) >= 8 and 'href="/account/mfa/recovery-codes/recovery-codes.txt"' in page

    file = shown_them.get("/account/mfa/recovery-codes/recovery-codes.txt")
    assert file.status_code == 200 and file.mimetype == "text/plain"
    assert file.headers["Content-Disposition"] == 'attachment; filename="recovery-codes.txt"'
    assert file.headers["Cache-Control"] == "no-store"
    text = file.get_data(as_text=True)
    assert all(f"\n{code}\n" in text for code in codes) and EO in text

    # another session of the same person, and nobody signed in, get no codes
    assert other.get("/account/mfa/recovery-codes/recovery-codes.txt").location.endswith("/account/mfa")
    assert app.test_client().get("/account/mfa/recovery-codes/recovery-codes.txt").location.endswith("/signin")
    # once saved, not even the session that was shown them
    shown_them.post("/account/mfa/recovery-codes", data={"csrf_token": _csrf(page), "action": "done"})
    assert shown_them.get("/account/mfa/recovery-codes/recovery-codes.txt").status_code == 302


def test_first_sign_in_recovery_codes_download_only_in_that_sign_in(app):
    import pyotp

    with app.app_context():
        make_account("new@centre.example", mfa=False)
    http, other = browser(app), browser(app)
    for b in (http, other):
        page = b.get("/signin")
        step = b.post("/signin", data={"email": "new@centre.example", "csrf_token": _csrf(page.get_data(as_text=True))})
        page = b.get(step.location)
        b.post(step.location, data={"password": PASSWORD, "csrf_token": _csrf(page.get_data(as_text=True))})
    page = http.get("/signin/mfa/setup/totp").get_data(as_text=True)
    secret = page.split('<code class="secret">', 1)[1].split("</code>", 1)[0]
    done = http.post("/signin/mfa/setup/totp", data={"code": pyotp.TOTP(secret).now(), "csrf_token": _csrf(page)})
    assert done.location.endswith("/signin/mfa/recovery-codes")
    codes = _codes_on(http.get(done.location).get_data(as_text=True))
    file = http.get("/signin/mfa/recovery-codes/recovery-codes.txt")
    assert file.status_code == 200 and all(code in file.get_data(as_text=True) for code in codes)
    # a second browser half-way through signing in to the same account gets nothing
    assert other.get("/signin/mfa/recovery-codes/recovery-codes.txt").location.endswith("/signin")
