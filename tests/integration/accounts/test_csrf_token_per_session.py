"""A browser's CSRF token lasts one session: it is made new at every sign-in and sign-out. A token
read before signing in (a page left open, a script that read the sign-in page) posts nothing once
the person has signed in, and on a shared computer the token of the person before posts nothing
for the person after."""

from __future__ import annotations

from tests.support import PASSWORD, make_account

FIRST, NEXT = "first@centre.example", "next@centre.example"
PROFILE = {"given_name": "Pwned", "family_name": "Person", "language": "en"}


def test_a_token_from_before_the_sign_in_posts_nothing_after_it(app, browser, kit):
    with app.app_context():
        make_account(FIRST, role="user", given_name="First")
    person = browser(app)
    before = person.csrf("/signin")
    assert person.sign_in_fully(FIRST, PASSWORD).location.endswith("/account")
    stale = person.http.post("/account/profile", data={**PROFILE, "csrf_token": before})
    assert stale.status_code == 400
    assert kit.account_row(app, FIRST)["given_name"] == "First"
    fresh = person.submit("/account/profile", {**PROFILE, "given_name": "Firsta"})
    assert fresh.status_code == 303 and kit.account_row(app, FIRST)["given_name"] == "Firsta"


def test_the_person_before_on_a_shared_browser_leaves_no_token_that_works(app, browser, kit):
    with app.app_context():
        make_account(FIRST, role="user", given_name="First")
        make_account(NEXT, role="user", given_name="Next")
    shared = browser(app)
    shared.sign_in_fully(FIRST, PASSWORD)
    theirs = shared.csrf("/account/profile")
    out = shared.submit("/signout", {})
    assert out.status_code == 200 and not shared.signed_in()
    shared.sign_in_fully(NEXT, PASSWORD)
    assert shared.http.post("/account/profile", data={**PROFILE, "csrf_token": theirs}).status_code == 400
    assert kit.account_row(app, NEXT)["given_name"] == "Next"
