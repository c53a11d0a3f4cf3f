"""The answers never tell whether an email is registered (DESIGN.md §1 Passwords, Lockout): a known
and an unknown address are compared response by response — status, Location, the page with the
address replaced, the names of the cookies set and of the headers sent."""

from __future__ import annotations

import re
import threading
from collections import Counter
from urllib.parse import quote

from argon2 import PasswordHasher

from idp.accounts import passwords
from tests.support import PASSWORD, make_account

KNOWN = "known@centre.example"
UNKNOWN = "nobod@centre.example"
INVITED = "fresh@centre.example"
CSRF_VALUE = re.compile(r'(name="csrf_token" type="hidden" value=")[^"]*(")')


def view(response, address: str) -> dict:
    """What an observer sees of a response, with the address (plain, URL- and HTML-encoded) blanked."""
    def blank(text: str) -> str:
        for form in (address, quote(address, safe=""), quote(address), address.replace("@", "&#64;")):
            text = text.replace(form, "EMAIL")
        return text

    page = CSRF_VALUE.sub(r"\1CSRF\2", response.get_data(as_text=True))
    return {
        "status": response.status_code,
        "location": blank(response.location or ""),
        "page": blank(page),
        "cookies": sorted(h.split("=", 1)[0] for h in response.headers.getlist("Set-Cookie")),
        "headers": sorted(k for k in response.headers.keys() if k.lower() != "set-cookie"),
    }


def same(a, a_address, b, b_address, step: str) -> None:
    left, right = view(a, a_address), view(b, b_address)
    for key in left:
        assert left[key] == right[key], f"{step}: {key} differs for a registered and an unknown email:\n" \
                                        f"{left[key]!r}\n!=\n{right[key]!r}"


def test_known_and_unknown_email_get_the_same_answers(mail_app, smtp, browser, kit):
    app = mail_app
    with app.app_context():
        make_account(KNOWN)
        make_account("eo@centre.example")
    kit.invite(app, INVITED, send=False)
    known, unknown = browser(app), browser(app)

    # email step
    same(known.submit("/signin", {"email": KNOWN}), KNOWN, unknown.submit("/signin", {"email": UNKNOWN}), UNKNOWN,
         "email step")
    same(known.get("/signin/password"), KNOWN, unknown.get("/signin/password"), UNKNOWN, "password page")

    # three wrong passwords: the same answers, and the third locks both alike
    for attempt in (1, 2, 3):
        a = known.password(f"wrong-password-{attempt}")
        b = unknown.password(f"wrong-password-{attempt}")
        same(a, KNOWN, b, UNKNOWN, f"wrong password {attempt}")
        expected = kit.LOCKED if attempt == 3 else kit.BAD_CREDENTIALS
        assert kit.messages(a)[0].startswith(expected), (attempt, kit.messages(a))
        assert kit.messages(b)[0].startswith(expected), (attempt, kit.messages(b))
    # the right password while locked: still the same lock message as any password for the unknown one
    same(known.password(PASSWORD), KNOWN, unknown.password(PASSWORD), UNKNOWN, "right password while locked")

    # forgotten password: registered, unknown and invited addresses alike
    invited = browser(app)
    asked = {"known": known.submit("/forgot", {"email": KNOWN}),
             "unknown": unknown.submit("/forgot", {"email": UNKNOWN}),
             "invited": invited.submit("/forgot", {"email": INVITED})}
    same(asked["known"], KNOWN, asked["unknown"], UNKNOWN, "forgot-password request")
    same(asked["invited"], INVITED, asked["unknown"], UNKNOWN, "forgot-password request (invited)")
    same(known.get("/forgot/code"), KNOWN, unknown.get("/forgot/code"), UNKNOWN, "code page")
    same(invited.get("/forgot/code"), INVITED, unknown.get("/forgot/code"), UNKNOWN, "code page (invited)")

    # a wrong code on the code page
    same(known.submit("/forgot/code", {"code": "000000", "password": "Tulip-harbour-93"}), KNOWN,
         unknown.submit("/forgot/code", {"code": "000000", "password": "Tulip-harbour-93"}), UNKNOWN, "wrong code")

    # what differs is only what the owner of the address receives
    smtp.take(KNOWN, kit.LOCKED_SUBJECT)
    smtp.take(KNOWN, kit.RESET_SUBJECT)
    smtp.assert_none(INVITED, wait=0.3)  # an invite is renewed only by someone who may invite
    smtp.assert_none(UNKNOWN, wait=0.3)


def test_the_same_argon2_work_whatever_the_address(mail_app, browser, kit, monkeypatch):
    """Response time must not tell who exists: every address costs the same argon2 operations at
    each step (services.py: "unknown addresses take the same steps, the same argon2 work").
    Counting the operations is the deterministic stand-in for timing them."""
    app = mail_app
    with app.app_context():
        make_account(KNOWN)
        make_account("eo@centre.example")
        passwords.verify(None, "warm-up")  # the dummy hash for unknown addresses is made once per process
    kit.invite(app, INVITED, send=False)

    counts: Counter = Counter()
    real_hash, real_verify = PasswordHasher.hash, PasswordHasher.verify
    # only the work the request itself does (the test client runs it on this thread): what is
    # done after the response, in the background pool, cannot show in the response time
    request_thread = threading.get_ident()

    def counting_hash(self, *args, **kwargs):
        counts["argon2"] += threading.get_ident() == request_thread
        return real_hash(self, *args, **kwargs)

    def counting_verify(self, *args, **kwargs):
        counts["argon2"] += threading.get_ident() == request_thread
        return real_verify(self, *args, **kwargs)

    monkeypatch.setattr(PasswordHasher, "hash", counting_hash)
    monkeypatch.setattr(PasswordHasher, "verify", counting_verify)

    def work(action) -> int:
        counts.clear()
        action()
        return counts["argon2"]

    seen = {}
    for address in (KNOWN, UNKNOWN, INVITED):
        person = browser(app)
        seen[address] = {
            "email step": work(lambda: person.begin(address)),
            "wrong password": work(lambda: person.password("wrong-password-1")),
            "forgot-password request": work(lambda: person.forgot(address)),
        }
    assert seen[KNOWN] == seen[UNKNOWN], seen
    assert seen[INVITED] == seen[UNKNOWN], (
        f"argon2 operations per step differ for an invited address: {seen}")


def test_the_same_database_and_store_work_whatever_the_address(mail_app, browser, kit, monkeypatch):
    """The structural half of "no enumeration by timing": a wrong password (and a forgotten-password
    request) for a registered, an unknown and an invited address run the same SQL statements, in the
    same order, and the same store operations, on the request's thread. (With the same argon2 work,
    above, nothing is left to take longer for one than for another; tests/perf/bench_enumeration.py
    measures the medians.)"""
    import re as re_module

    from sqlalchemy import event

    from idp.extensions import db, store

    app = mail_app
    with app.app_context():
        make_account(KNOWN)
        make_account("eo@centre.example")
        engine = db.engine
        store_object = store._get_current_object()
    kit.invite(app, INVITED, send=False)
    request_thread = threading.get_ident()
    log: list[str] = []

    def statement(_conn, _cursor, sql, _params, _context, _many):
        if threading.get_ident() == request_thread:
            log.append("sql " + re_module.sub(r"\s+", " ", sql).strip())

    def on_commit(_conn):
        if threading.get_ident() == request_thread:
            log.append("commit")

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", on_commit)
    for name in ("put", "add", "get", "get_many", "take", "swap", "delete", "incr", "enqueue", "ttl"):
        real = getattr(store_object, name)

        def counting(*args, _name=name, _real=real, **kwargs):
            if threading.get_ident() == request_thread:
                log.append(f"store {_name}")
            return _real(*args, **kwargs)

        monkeypatch.setattr(store_object, name, counting)

    def work(action) -> list[str]:
        log.clear()
        action()
        return list(log)

    seen = {}
    try:
        for address in (KNOWN, UNKNOWN, INVITED):
            person = browser(app)
            person.begin(address)
            seen[address] = {"wrong password": work(lambda: person.password("wrong-password-1")),
                             "forgot-password request": work(lambda: person.forgot(address))}
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", on_commit)
    for step in ("wrong password", "forgot-password request"):
        assert seen[KNOWN][step] == seen[UNKNOWN][step], (step, seen[KNOWN][step], seen[UNKNOWN][step])
        assert seen[INVITED][step] == seen[UNKNOWN][step], (step, seen[INVITED][step], seen[UNKNOWN][step])
    assert any("attempt_counters" in line for line in seen[UNKNOWN]["wrong password"])
